package jobs

import (
	"fmt"
	"strings"

	"github.com/runnel-dev/runnel/operators/anomaly"
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

// fields is the job-file format, key by key. It is the single list the
// parser accepts keys from (anything else is an unknown field), the
// reference table in docs/jobs.md is generated from it (TestDocsReference),
// and a test checks it against the yaml tags of the Spec structs.
var fields = append(coreFields, connectorFields...)

var coreFields = []Field{
	{"name", "string", "required", "`[a-z0-9][a-z0-9-]{0,63}`"},
	{"source", "mapping", "required", "exactly one of `stream`, `file`, `generator`"},
	{"source.stream", "string", "—", "stream name: 1–128 of `A-Za-z0-9_.-`; created with `shards` shards if missing"},
	{"source.file", "string or list of strings", "—", "path(s) of bounded JSON-lines or CSV files, one shard each (`runnel run`)"},
	{"source.generator", "mapping", "—", "the built-in synthetic source"},
	{"source.generator.rate", "number or `max`", "1000", "records/s over all shards, > 0, or `max` (as fast as the job consumes)"},
	{"source.generator.keys", "int", "100", "number of distinct pages, ≥ 1"},
	{"source.generator.users", "int", "1000", "number of distinct users (about 5% are bots, `bot-N`), ≥ 1"},
	{"source.generator.shape", "string", "clickstream", "`clickstream`: `{page, user, latency_ms, status, country, ts, elapsed_ms}`; `ts` follows the wall clock, also after a restart; `elapsed_ms` is the generator's own clock (record index × interval), continuing across restarts"},
	{"source.generator.count", "int", "0", "records in total before the source ends; 0 = unbounded"},
	{"source.generator.seed", "int", "0", "any integer ≥ 0; same seed, same records"},
	{"source.shards", "int", "1", "1–1024; stream: shard count if created; generator: shards produced; not for `file`"},
	{"source.start", "string or mapping", "trim_horizon", "`trim_horizon`, `latest` or `{at_timestamp: TIME}`; stream only"},
	{"source.start.at_timestamp", "RFC 3339 time", "—", "e.g. `2026-01-02T15:04:05Z`"},
	{"source.format", "string", "stream: json; file: csv if the path ends in .csv, else jsonl", "stream: `json`, `text`, `bytes`; file: `jsonl`, `csv`; not for `generator`"},
	{"source.event_time", "JS function", "arrival time", "`r => ...` returning epoch ms or an RFC 3339 string"},
	{"source.watermark", "duration", "0s", "≥ 0; bounded out-of-orderness"},
	{"source.on_error", "string or mapping", "fail", "`fail`, `skip` or `{dead_letter: STREAM}`: records that do not decode (or nest deeper than 64) and event times that cannot be read; stream only"},
	{"source.on_error.dead_letter", "string", "—", "stream name"},
	{"source.event_time_fallback", "string", "none", "`arrival`: a record whose `event_time` cannot be read takes its arrival time; needs `event_time`"},
	{"functions", "JS statements", "none", "function and const declarations shared by all snippets"},
	{"operators", "list", "empty", "operators, a chain unless `input`/`inputs` say otherwise"},
	{"operators[].id", "string", "required", "`[a-z0-9][a-z0-9_-]*`, unique among operators and sinks, not `source`"},
	{"operators[].input", "string", "the previous operator (the first: `source`)", "an operator id or `source`"},
	{"operators[].inputs", "list of strings", "—", "several operator ids (or `source`): a union; not with `input`"},
	{"operators[].map", "JS function", "—", "`r => record | null | [records]`"},
	{"operators[].filter", "JS function", "—", "`r => boolean`"},
	{"operators[].window", "mapping", "—", "a keyed event-time window"},
	{"operators[].window.key", "JS function", "required", "`r => key` (converted to a string)"},
	{"operators[].window.tumbling", "duration", "—", "> 0; one of `tumbling`, `sliding`, `session`"},
	{"operators[].window.sliding", "mapping", "—", "`{size, every}`"},
	{"operators[].window.sliding.size", "duration", "required", "> 0"},
	{"operators[].window.sliding.every", "duration", "required", "> 0 and ≤ `size`"},
	{"operators[].window.session", "mapping", "—", "`{gap}`"},
	{"operators[].window.session.gap", "duration", "required", "> 0"},
	{"operators[].window.allowed_lateness", "duration", "0s", "≥ 0"},
	{"operators[].window.state_cache", "int", "262144", "window states (open windows, plus one per key) each task keeps in memory, 1024–16777216; the rest stay in the job's Pebble state"},
	{"operators[].window.aggregate", "mapping", "required", "result column name → aggregate; at least one"},
	{"operators[].window.aggregate.<name>", "string or mapping", "—", "`count`, `sum(f)`, `avg(f)`, `min(f)`, `max(f)`, `p50(f)`, `p95(f)`, `p99(f)`, `distinct(f)`, a JS object expression `({init, add, merge, result})`, or a mapping (a custom aggregate); name `[A-Za-z_][A-Za-z0-9_]*`, not `window_start`, `window_end`, `key`"},
	{"operators[].window.aggregate.<name>.init", "JS function", "required", "`() => acc`"},
	{"operators[].window.aggregate.<name>.add", "JS function", "required", "`(acc, r) => acc`"},
	{"operators[].window.aggregate.<name>.merge", "JS function", "required", "`(a, b) => acc`"},
	{"operators[].window.aggregate.<name>.result", "JS function", "identity", "`acc => value`"},
	{"operators[].window.aggregate.<name>.object", "JS object", "—", "`({init, add, merge, result})` instead of the four fields"},
	{"operators[].window.aggregate.<name>.type", "string", "float64", "`float64`, `int64`, `string`: the result column's type"},
	{"operators[].detect", "mapping", "—", "streaming anomaly detection, one model per key"},
	{"operators[].detect.value", "string or list of strings", "required", "numeric field(s) scored together"},
	{"operators[].detect.key", "JS function", "the record's key from the upstream window", "`r => key`"},
	{"operators[].detect.method", "string", "auto", "`" + strings.Join(anomaly.Methods, "`, `") + "` (see docs/anomaly.md)"},
	{"operators[].detect.threshold", "number", "0 (the method's default)", "0 < t ≤ 1: `is_anomaly` when `anomaly_score` ≥ t"},
	{"operators[].detect.seed", "int", "0", "any integer"},
	{"operators[].on_error", "string or mapping", "fail", "`fail`, `skip` or `{dead_letter: STREAM}`"},
	{"operators[].on_error.dead_letter", "string", "—", "stream name"},
	{"operators[].timeout", "duration", "100ms", "1ms–1m; time budget of one JS call"},
	{"sinks", "list", "required", "at least one sink"},
	{"sinks[].id", "string", "required", "`[a-z0-9][a-z0-9_-]*`, unique among operators and sinks"},
	{"sinks[].input", "string", "the job's only end operator (the last one of a chain)", "an operator id or `source`"},
	{"sinks[].late", "string", "—", "a window operator id: take its late records; not with `input`"},
	{"sinks[].dashboard", "mapping", "—", "live results in the web UI and results API"},
	{"sinks[].dashboard.title", "string", "the sink id", "any text"},
	{"sinks[].dashboard.rows", "int", "10000", "1–1000000 recent rows kept"},
	{"sinks[].stream", "mapping", "—", "one JSON record per result; partition key = the window key"},
	{"sinks[].stream.name", "string", "required", "stream name"},
	{"sinks[].stream.shards", "int", "1", "1–1024; shard count if the stream is created"},
	{"sinks[].file", "mapping", "—", "results written to a file"},
	{"sinks[].file.path", "string", "required", "file path"},
	{"sinks[].file.format", "string", "from the extension: .arrow/.ipc/.feather → arrow, .parquet → parquet, else jsonl", "`jsonl`, `arrow`, `parquet`"},
	{"sinks[].log", "empty mapping", "—", "`{}`: print results as JSON lines"},
	{"checkpoint", "mapping", "—", "periodic checkpoints"},
	{"checkpoint.every", "duration", "10s", "≥ 100ms"},
	{"checkpoint.retain", "integer", "3", "1–100 complete checkpoints kept"},
}

// Fields returns the job-file reference: every key with its type, default
// and allowed values.
func Fields() []Field { return append([]Field(nil), fields...) }

// childKeys returns the keys allowed directly under a schema path ("" for
// the top level), in reference order.
func childKeys(schemaPath string) []string { return children[schemaPath] }

// children indexes fields by parent schema path.
var children = func() map[string][]string {
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
}()

// ReferenceTable renders Fields as the Markdown table in docs/jobs.md.
func ReferenceTable() string {
	var b strings.Builder
	b.WriteString("| field | type | default | allowed |\n|---|---|---|---|\n")
	for _, f := range fields {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", f.Path, f.Type, f.Default, strings.ReplaceAll(f.Allowed, "|", "\\|"))
	}
	return b.String()
}
