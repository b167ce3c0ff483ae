package jobs

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/functions"
	"github.com/runnel-dev/runnel/operators"
)

// KindFunction is the operator kind of a Lambda-style function: a JS
// function called with batches of each shard's records, with Lambda's
// event-source-mapping settings (package functions).
const KindFunction = "function"

// Function is a function operator's settings, kept in the operator's ext
// map.
type Function struct {
	// Handler is the JS function `(batch, ctx) => result`.
	Handler         string        `yaml:"handler"`
	BatchSize       int           `yaml:"batch_size"`
	BatchingWindow  time.Duration `yaml:"batching_window"`
	Parallelization int           `yaml:"parallelization_factor"`
	// MaxRetries is -1 (unlimited) or a count.
	MaxRetries         int           `yaml:"maximum_retry_attempts"`
	MaxRecordAge       time.Duration `yaml:"maximum_record_age"`
	Bisect             bool          `yaml:"bisect_batch_on_error"`
	ReportItemFailures bool          `yaml:"report_batch_item_failures"`
	// OnFailure is the stream that receives an on-failure record per
	// batch given up on.
	OnFailure string `yaml:"on_failure"`
	// Filters are the filter criteria, each a pattern's JSON.
	Filters  []string      `yaml:"filter_criteria"`
	Tumbling time.Duration `yaml:"tumbling_window"`
	// retriesSet says maximum_retry_attempts was written; timeoutSet,
	// that the operator's timeout was (else the function's default
	// applies).
	retriesSet, timeoutSet bool
}

// Defaults of a function's settings.
const (
	// DefaultFunctionTimeout is the time budget of one invocation unless
	// the operator sets timeout (Lambda's default timeout).
	DefaultFunctionTimeout = 3 * time.Second
	// DefaultFunctionRetries is maximum_retry_attempts' default.
	DefaultFunctionRetries = 3
	maxFunctionBatch       = 10_000
	maxBatchingWindow      = 5 * time.Minute
	maxRecordAge           = 7 * 24 * time.Hour
	maxFunctionRetries     = 10_000
	maxTumbling            = 15 * time.Minute
)

var functionKind = &operatorKind{
	Name: KindFunction,
	Rank: 60,
	Fields: []Field{
		{"", "mapping", "—", "a Lambda-style function over batches of each shard's records; reads the source directly"},
		{"handler", "JS function", "required", "`(batch, ctx) => result`; result: nothing or `{records, batchItemFailures, state}`"},
		{"batch_size", "int", "100", "1–10000 records per invocation"},
		{"batching_window", "duration", "0", "up to 5m: how long a batch waits to fill"},
		{"parallelization_factor", "int", "1", "1–10 concurrent batches per shard, per-partition-key order kept"},
		{"maximum_retry_attempts", "int", "3", "-1 (until the records are too old) or 0–10000"},
		{"maximum_record_age", "duration", "none", "up to 7 days: older records are given up on"},
		{"bisect_batch_on_error", "bool", "false", "split a failed batch in two and retry each half (a partial failure with report_batch_item_failures: at the first failed record, the rest retried as one batch)"},
		{"report_batch_item_failures", "bool", "false", "honour `batchItemFailures` in the result"},
		{"on_failure", "string", "none (the job fails)", "stream receiving an on-failure record per batch given up on"},
		{"filter_criteria", "list of patterns", "none", "Lambda's filter patterns (JSON or YAML mappings); records matching none are skipped"},
		{"tumbling_window", "duration", "none", "up to 15m: `ctx.state` carried through a window, `isFinalInvokeForWindow` at its end"},
	},
	Has: func(op *Operator) bool { return extConfig[Function](&op.ext, KindFunction, false) != nil },
	Parse: func(p *parser, f fieldMap, op *Operator) {
		m, ok := p.sub(f, KindFunction)
		if !ok {
			return
		}
		fn := extConfig[Function](&op.ext, KindFunction, true)
		*fn = Function{Handler: p.str(m, "handler"), BatchSize: int(p.integer(m, "batch_size", true)),
			BatchingWindow: p.duration(m, "batching_window", false), Parallelization: int(p.integer(m, "parallelization_factor", true)),
			MaxRecordAge: p.duration(m, "maximum_record_age", true), Bisect: p.flag(m, "bisect_batch_on_error"),
			ReportItemFailures: p.flag(m, "report_batch_item_failures"), OnFailure: p.str(m, "on_failure"),
			Tumbling: p.duration(m, "tumbling_window", true), timeoutSet: f.has("timeout")}
		fn.MaxRetries, fn.retriesSet = p.retries(m, "maximum_retry_attempts")
		fn.Filters = p.filterCriteria(m, "filter_criteria")
	},
	Snippets: func(op *Operator) []snippetRef {
		return []snippetRef{{Field: "function.handler", Src: &extConfig[Function](&op.ext, KindFunction, false).Handler}}
	},
	Validate: func(v *validator, op *Operator, p string) {
		fn := extConfig[Function](&op.ext, KindFunction, false)
		v.function(fn, op, p)
	},
	Stateful: true,
	Build: func(b *builder, op *Operator, _ bool) error {
		return b.function(op, extConfig[Function](&op.ext, KindFunction, false))
	},
}

func init() { registerOperator(functionKind) }

// retries parses maximum_retry_attempts, which may be -1.
func (p *parser) retries(f fieldMap, key string) (int, bool) {
	n, path := p.scalar(f, key)
	if n == nil {
		return 0, false
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil || v < -1 || v > maxFunctionRetries {
		p.problem(n, path, CodeInvalid, fmt.Sprintf("%q is not -1 or an integer from 0 to %d", n.Value, maxFunctionRetries), "-1 retries until the records are older than maximum_record_age")
		return 0, false
	}
	return v, true
}

// filterCriteria parses a list of filter patterns: each a mapping, or a
// string of JSON as Lambda's FilterCriteria holds them. Each is compiled
// here, so a bad one is reported at its line.
func (p *parser) filterCriteria(f fieldMap, key string) []string {
	if !f.has(key) {
		return nil
	}
	path := join(f.path, key)
	var out []string
	for i, n := range p.sequence(f.m[key], path) {
		at := fmt.Sprintf("%s[%d]", path, i)
		n = resolve(n)
		if n == nil {
			continue
		}
		p.record(n, at)
		var src string
		switch {
		case n.Kind == yaml.ScalarNode && n.Tag == "!!str":
			src = n.Value
		case n.Kind == yaml.MappingNode:
			var x any
			if err := n.Decode(&x); err != nil {
				p.problem(n, at, CodeInvalid, err.Error(), "")
				continue
			}
			b, err := json.Marshal(x)
			if err != nil {
				p.problem(n, at, CodeInvalid, err.Error(), "")
				continue
			}
			src = string(b)
		default:
			p.problem(n, at, CodeType, "must be a pattern (a mapping, or its JSON as a string), not "+kindName(n), `e.g. {data: {level: ["error"]}}`)
			continue
		}
		if _, err := functions.ParseFilter(src); err != nil {
			p.problem(n, at, CodeInvalid, strings.TrimPrefix(err.Error(), functions.ErrFilter.Error()+": "), "see Lambda's filter rule syntax in docs/clients.md")
			continue
		}
		out = append(out, src)
	}
	return out
}

// function checks a function operator's settings and fills defaults.
func (v *validator) function(fn *Function, op *Operator, p string) {
	at := p + ".function"
	if fn.Handler == "" {
		v.required(at+".handler", `handler: "(batch, ctx) => ({records: batch.map(r => ({partitionKey: r.partitionKey, data: r.data}))})"`)
	}
	switch {
	case fn.BatchSize == 0:
		fn.BatchSize = functions.DefaultBatchSize
	case fn.BatchSize > maxFunctionBatch:
		v.add(at+".batch_size", CodeInvalid, fmt.Sprintf("%d is out of range", fn.BatchSize), "1–10000")
	}
	if fn.BatchingWindow > maxBatchingWindow {
		v.add(at+".batching_window", CodeInvalid, fmt.Sprintf("%s is out of range", fn.BatchingWindow), "0–5m")
	}
	switch {
	case fn.Parallelization == 0:
		fn.Parallelization = 1
	case fn.Parallelization > functions.MaxParallel:
		v.add(at+".parallelization_factor", CodeInvalid, fmt.Sprintf("%d is out of range", fn.Parallelization), "1–10")
	}
	if !fn.retriesSet {
		fn.MaxRetries, fn.retriesSet = DefaultFunctionRetries, true
	}
	if fn.MaxRecordAge > maxRecordAge {
		v.add(at+".maximum_record_age", CodeInvalid, fmt.Sprintf("%s is out of range", fn.MaxRecordAge), "up to 168h (7 days)")
	}
	if fn.Tumbling > maxTumbling {
		v.add(at+".tumbling_window", CodeInvalid, fmt.Sprintf("%s is out of range", fn.Tumbling), "up to 15m")
	}
	if fn.Tumbling > 0 && fn.Parallelization > 1 {
		v.add(at+".tumbling_window", CodeConflict, "tumbling windows keep one state per shard; they need parallelization_factor 1", "remove parallelization_factor")
	}
	if fn.OnFailure != "" {
		switch src := v.s.Source.stream(); {
		case !validStream(fn.OnFailure):
			v.add(at+".on_failure", CodeInvalid, fmt.Sprintf("%q is not a valid stream name", fn.OnFailure), "1–128 of A-Z, a-z, 0-9, _ . - (not . or ..)")
		case fn.OnFailure == src:
			v.add(at+".on_failure", CodeInvalid, fmt.Sprintf("%q is the job's source stream; failed batches would be read back", src), "use another stream, e.g. "+src+"-failures")
		}
	}
	if op.OnError.Policy != OnErrorFail {
		v.add(p+".on_error", CodeConflict, "a function handles its failures with retries and on_failure", "remove on_error")
	}
	// The function reads the source's records as batches: it must be the
	// source's only reader, and the records keep their arrival times.
	idx := -1
	for i := range v.s.Operators {
		if &v.s.Operators[i] == op {
			idx = i
		}
	}
	switch {
	case op.Inputs != nil || op.Input != "" && op.Input != SourceID || op.Input == "" && idx > 0:
		v.add(p, CodeInvalid, "a function reads the source directly", "make it the first operator, or set input: source")
	case v.s.Source.EventTime != "":
		v.add("source.event_time", CodeConflict, "a function's records keep their arrival times", "remove event_time")
	}
	for i := range v.s.Operators {
		o := &v.s.Operators[i]
		if o != op && (o.Input == SourceID || slices.Contains(o.Inputs, SourceID) || i == 0 && o.Input == "" && o.Inputs == nil) {
			v.add(fmt.Sprintf("operators[%d]", i), CodeConflict, fmt.Sprintf("the source feeds function %s, which must be its only reader", op.ID), "read the function's output instead")
		}
	}
	for i, s := range v.s.Sinks {
		if s.Input == SourceID {
			v.add(fmt.Sprintf("sinks[%d].input", i), CodeConflict, fmt.Sprintf("the source feeds function %s, which must be its only reader", op.ID), "read the function's output instead")
		}
	}
}

// function builds a function operator: the source becomes a batching
// source, the operator runs one instance per shard, and on_failure gets
// a stream sink on the operator's on-failure side output.
func (b *builder) function(op *Operator, fn *Function) error {
	opts := b.jsOptions(op)
	if !fn.timeoutSet {
		opts.Budget = DefaultFunctionTimeout
	}
	newInvoker, err := functions.JS(op.ID+".function.handler", b.spec.Functions, fn.Handler, opts)
	if err != nil {
		return fmt.Errorf("job %s: operator %s: %w", b.spec.Name, op.ID, err)
	}
	var filter *functions.Filter
	if len(fn.Filters) > 0 {
		if filter, err = functions.ParseFilter(fn.Filters...); err != nil {
			return fmt.Errorf("job %s: operator %s: %w", b.spec.Name, op.ID, err)
		}
	}
	src := &b.out.Graph.Sources[0]
	src.Source = functions.Batched(src.Source, functions.Batching{Size: fn.BatchSize, Window: fn.BatchingWindow,
		Parallel: fn.Parallelization, Filter: filter, Tumbling: fn.Tumbling})
	cfg := &functions.Config{Job: b.spec.Name, Operator: op.ID, NewInvoker: newInvoker, Size: fn.BatchSize,
		Parallel: fn.Parallelization, MaxRetries: fn.MaxRetries, MaxRecordAge: fn.MaxRecordAge, Bisect: fn.Bisect,
		ReportItemFailures: fn.ReportItemFailures, Tumbling: fn.Tumbling, OnFailure: fn.OnFailure != "", Log: b.env.Logger}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("job %s: operator %s: %w", b.spec.Name, op.ID, err)
	}
	if fn.OnFailure != "" {
		b.deadLetterSinks = append(b.deadLetterSinks, deadLetter{op: op.ID, stream: fn.OnFailure})
	}
	b.node(engine.Node{ID: op.ID, Inputs: b.inputs(op.From), New: func() (operators.Operator, error) { return functions.New(cfg) }})
	return nil
}
