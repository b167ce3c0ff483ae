package jobs

import (
	"fmt"
	"slices"
	"strings"
)

// Field documents one key of the job-file format. Path uses [] for list
// elements and <name> for user-chosen keys (aggregate names), e.g.
// operators[].window.aggregate.<name>.init.
type Field struct {
	Path    string
	Type    string
	Default string
	Allowed string
}

// fields is the job-file format, key by key: the common fields below with
// each registered kind's fields in their place. It is the single list the
// parser accepts keys from (anything else is an unknown field), the
// reference table in docs/jobs.md is generated from it (TestDocsReference),
// and a test checks it against the yaml tags of the Spec structs. It is
// made on first use, once every kind has registered.
func fields() []Field { return kinds.get().fields }

// reference assembles the fields of the common keys and of r's kinds.
func (r *registry) reference() []Field {
	var out []Field
	add := func(fs ...Field) { out = append(out, fs...) }
	add(Field{"name", "string", "required", "`[a-z0-9][a-z0-9-]{0,63}`"},
		Field{"source", "mapping", "required", "exactly one of `" + strings.Join(kindNames(r.source, func(k *sourceKind) string { return k.Name }, func(k *sourceKind) bool { return !k.Connector }), "`, `") + "`"})
	for _, k := range r.source {
		add(kindFields("source."+k.Name, k.Fields)...)
	}
	add(sourceFields...)
	add(Field{"functions", "JS statements", "none", "function and const declarations shared by all snippets"},
		Field{"operators", "list", "empty", "operators, a chain unless `input`/`inputs` say otherwise"},
		Field{"operators[].id", "string", "required", "`[a-z0-9][a-z0-9_-]*`, unique among operators and sinks, not `source`"},
		Field{"operators[].input", "string", "the previous operator (the first: `source`)", "an operator id or `source`"},
		Field{"operators[].inputs", "list of strings", "—", "several operator ids (or `source`): a union; not with `input`"})
	for _, k := range r.op {
		add(kindFields("operators[]."+k.Name, k.Fields)...)
	}
	add(Field{"operators[].on_error", "string or mapping", "fail", "`fail`, `skip` or `{dead_letter: STREAM}`"},
		Field{"operators[].on_error.dead_letter", "string", "—", "stream name"},
		Field{"operators[].timeout", "duration", "100ms", "1ms–1m; time budget of one JS call"},
		Field{"sinks", "list", "required", "at least one sink"},
		Field{"sinks[].id", "string", "required", "`[a-z0-9][a-z0-9_-]*`, unique among operators and sinks"},
		Field{"sinks[].input", "string", "the job's only end operator (the last one of a chain)", "an operator id or `source`"},
		Field{"sinks[].late", "string", "—", "a window operator id: take its late records; not with `input`"})
	for _, k := range r.sink {
		add(kindFields("sinks[]."+k.Name, k.Fields)...)
	}
	add(Field{"checkpoint", "mapping", "—", "periodic checkpoints"},
		Field{"checkpoint.every", "duration", "10s", "≥ 100ms"},
		Field{"checkpoint.retain", "integer", "3", "1–100 complete checkpoints kept"},
		Field{"restart", "mapping", "—", "what happens when a run fails: resumed from its latest checkpoint after a delay"},
		Field{"restart.strategy", "string", "none", "`none` (stays failed), `fixed-delay` or `exponential-delay`"},
		Field{"restart.delay", "duration", "10s", "> 0; fixed-delay: the wait before each attempt"},
		Field{"restart.initial_backoff", "duration", "1s", "> 0; exponential-delay: the first wait"},
		Field{"restart.max_backoff", "duration", "5m", "≥ initial_backoff; exponential-delay: the longest wait"},
		Field{"restart.backoff_multiplier", "number", "2", "1–100; exponential-delay: each wait is the last times this"},
		Field{"restart.jitter", "number", "0.1", "0–1; exponential-delay: each wait is spread by this fraction either way"},
		Field{"restart.attempts", "integer", "fixed-delay: 3; exponential-delay: 10", "1–1000 consecutive failures restarted; then the job stays failed"},
		Field{"restart.reset_after", "duration", "10m", "> 0; a run this long makes its failure the first again"})
	return out
}

// sourceFields are the source: keys every kind shares (some apply to some
// kinds only; the kinds say which).
var sourceFields = []Field{
	{"source.shards", "int", "1", "1–1024; stream: shard count if created; generator: shards produced; not for `file`"},
	{"source.start", "string or mapping", "trim_horizon", "`trim_horizon`, `latest` or `{at_timestamp: TIME}`; stream only"},
	{"source.start.at_timestamp", "RFC 3339 time", "—", "e.g. `2026-01-02T15:04:05Z`"},
	{"source.format", "string", "stream: json; file: csv if the path ends in .csv, else jsonl", "stream: `json`, `text`, `bytes`; file: `jsonl`, `csv`; not for `generator`"},
	{"source.event_time", "JS function", "arrival time", "`r => ...` returning epoch ms or an RFC 3339 string"},
	{"source.watermark", "duration", "0s", "≥ 0; bounded out-of-orderness"},
	{"source.on_error", "string or mapping", "fail", "`fail`, `skip` or `{dead_letter: STREAM}`: records that do not decode (or nest deeper than 64) and event times that cannot be read; stream only"},
	{"source.on_error.dead_letter", "string", "—", "stream name"},
	{"source.event_time_fallback", "string", "none", "`arrival`: a record whose `event_time` cannot be read takes its arrival time; needs `event_time`"},
}

// Fields returns the job-file reference: every key with its type, default
// and allowed values.
func Fields() []Field { return slices.Clone(fields()) }

// childKeys returns the keys allowed directly under a schema path ("" for
// the top level), in reference order.
func childKeys(schemaPath string) []string { return kinds.get().children[schemaPath] }

// childIndex indexes fields by parent schema path.
func childIndex(fields []Field) map[string][]string {
	m := map[string][]string{}
	for _, f := range fields {
		parent, key := "", f.Path
		if i := strings.LastIndexByte(f.Path, '.'); i >= 0 {
			parent, key = f.Path[:i], f.Path[i+1:]
		}
		if strings.HasPrefix(key, "<") {
			continue
		}
		m[parent] = append(m[parent], key)
	}
	return m
}

// ReferenceTable renders Fields as the Markdown table in docs/jobs.md.
func ReferenceTable() string {
	var b strings.Builder
	b.WriteString("| field | type | default | allowed |\n|---|---|---|---|\n")
	for _, f := range fields() {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Path, f.Type, f.Default, strings.ReplaceAll(f.Allowed, "|", "\\|"))
	}
	return b.String()
}
