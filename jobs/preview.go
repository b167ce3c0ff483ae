package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sinks"
)

// Preview runs a job file on a sample of its input without writing
// anything: a stream source reads the last N records of its stream (over
// all shards, by arrival), any other source its first N records; every
// sink and dead-letter stream is replaced by an in-memory capture; every
// operator's output is captured too, with the errors of its records
// (whatever its on_error says: the record is dropped and the preview goes
// on). Operators are not fused, so each shows its own rows. The source is
// bounded, so windows still open at the end of the sample fire (flushed).
// No state is kept: the run has no state store and no checkpoints.
//
// Bounds: at most MaxPreviewRecords records, PreviewRows rows and
// PreviewErrors errors kept per operator (every row and error is counted),
// and PreviewTimeout of running; a preview cut short by the timeout says
// so (TimedOut) and shows what it had.

// Bounds of a preview.
const (
	DefaultPreviewRecords = 1000
	MaxPreviewRecords     = 100_000
	PreviewRows           = 200
	PreviewErrors         = 100
	PreviewTimeout        = 10 * time.Second
)

// PreviewResult is what a preview found.
type PreviewResult struct {
	RecordsRead int64   `json:"records_read"`
	ElapsedMS   float64 `json:"elapsed_ms"`
	// TimedOut says the run was cut at PreviewTimeout: the rows are those
	// of the records processed until then, and windows were not flushed.
	TimedOut bool `json:"timed_out,omitempty"`
	// Error is why the run failed (an error no on_error policy covers,
	// such as a window key function failing).
	Error     string            `json:"error,omitempty"`
	Warnings  []string          `json:"warnings,omitempty"`
	Operators []PreviewOperator `json:"operators"`
}

// PreviewOperator is one node's output in a preview: the source, each
// operator and each sink, in the file's order.
type PreviewOperator struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
	// Rows are the first PreviewRows rows it emitted (a sink: received).
	Rows     []any `json:"rows"`
	RowCount int64 `json:"row_count"`
	// Flushed marks a window or detector whose open windows fired at the
	// end of the sample rather than by the watermark.
	Flushed    bool           `json:"flushed,omitempty"`
	Errors     []PreviewError `json:"errors"`
	ErrorCount int64          `json:"error_count"`
}

// PreviewError is a record an operator (or the source) failed on.
type PreviewError struct {
	Message string  `json:"message"`
	Record  any     `json:"record"`
	Origin  *Origin `json:"origin,omitempty"`
}

// Origin says where a record came from: its stream (or file), shard and
// sequence number (or line/index).
type Origin struct {
	Stream   string `json:"stream"`
	Shard    string `json:"shard"`
	Sequence string `json:"sequence"`
}

// previewRun is a preview's captures, shared by the builder (which puts a
// capture in place of every sink) and the preview source.
type previewRun struct {
	records int
	mu      sync.Mutex
	nodes   map[string]*previewNode
	stream  string // what origins name as the stream
	// warnings are said in the result (an empty or missing stream).
	warnings []string
}

type previewNode struct {
	rows     []any
	rowCount int64
	errs     []PreviewError
	errCount int64
}

func (p *previewRun) node(id string) *previewNode {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, ok := p.nodes[id]
	if !ok {
		n = &previewNode{}
		p.nodes[id] = n
	}
	return n
}

func (p *previewRun) addRows(id string, rows []sinks.Row) {
	n := p.node(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	n.rowCount += int64(len(rows))
	for _, r := range rows {
		if len(n.rows) >= PreviewRows {
			break
		}
		n.rows = append(n.rows, jsonValue(r.Value))
	}
}

// addError records that node id failed on a record.
func (p *previewRun) addError(id, origin string, record any, cause string) {
	n := p.node(id)
	p.mu.Lock()
	defer p.mu.Unlock()
	n.errCount++
	if len(n.errs) >= PreviewErrors {
		return
	}
	n.errs = append(n.errs, PreviewError{Message: CleanMessage(cause), Record: jsonValue(record), Origin: p.origin(origin)})
}

// origin turns a runtime origin "SOURCE/SHARD@POSITION" into an Origin.
func (p *previewRun) origin(s string) *Origin { return parseOrigin(p.stream, s) }

func parseOrigin(stream, s string) *Origin {
	if s == "" {
		return nil
	}
	_, rest, ok := strings.Cut(s, "/")
	if !ok {
		return &Origin{Stream: stream, Sequence: s}
	}
	i := strings.LastIndexByte(rest, '@')
	if i < 0 {
		return &Origin{Stream: stream, Shard: rest}
	}
	return &Origin{Stream: stream, Shard: rest[:i], Sequence: rest[i+1:]}
}

// jsonValue makes a row or record value JSON-ready: raw JSON stays JSON,
// bytes that are not JSON become a string, and a value that cannot be
// written as JSON (a NaN) its Go text.
func jsonValue(v any) any {
	switch x := v.(type) {
	case json.RawMessage:
		if json.Valid(x) {
			return json.RawMessage(append([]byte(nil), x...))
		}
		return string(x)
	case []byte:
		if json.Valid(x) {
			return json.RawMessage(append([]byte(nil), x...))
		}
		return string(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return json.RawMessage(b)
}

// captureSink is a preview's stand-in for a sink, or a tap on a node's
// output.
type captureSink struct {
	run *previewRun
	id  string
}

func (c *captureSink) Write(_ context.Context, rows []sinks.Row) error {
	c.run.addRows(c.id, rows)
	return nil
}

func (c *captureSink) Close() error { return nil }

// errorSink takes an operator's dead letters in a preview: each is an
// error of that operator.
type errorSink struct {
	run *previewRun
	op  string
}

func (e *errorSink) Write(_ context.Context, rows []sinks.Row) error {
	for _, r := range rows {
		m, _ := r.Value.(map[string]any)
		msg, _ := m["error"].(string)
		origin, _ := m["origin"].(string)
		e.run.addError(e.op, origin, m["record"], msg)
	}
	return nil
}

func (e *errorSink) Close() error { return nil }

// previewSinks puts captures where the job's sinks and dead-letter
// streams would be, and a tap on the source and on every operator.
func (b *builder) previewSinks() {
	p := b.env.preview
	g := b.out.Graph
	add := func(id, input string, s sinks.Sink) {
		g.Sinks = append(g.Sinks, engine.SinkNode{ID: id, Inputs: []string{input}, Sink: s})
	}
	add("preview."+SourceID, SourceID, &captureSink{run: p, id: SourceID})
	for _, op := range b.spec.Operators {
		add("preview."+op.ID, b.resolve(op.ID), &captureSink{run: p, id: op.ID})
	}
	for _, s := range b.spec.Sinks {
		input := b.resolve(s.From)
		if s.Late != "" {
			input = s.Late + ":" + operators.LateOutput
		}
		add(s.ID, input, &captureSink{run: p, id: s.ID})
	}
	for _, dl := range b.deadLetterSinks {
		add(dl.op+deadLetterSuffix, b.resolve(dl.op)+":"+operators.DeadLetterOutput(dl.op), &errorSink{run: p, op: dl.op})
	}
}

// Preview runs src (a job file) on a sample of n records of its input
// (n <= 0: DefaultPreviewRecords; at most MaxPreviewRecords). A file that
// does not parse or validate is a *SpecError, as for Submit.
func (m *Manager) Preview(ctx context.Context, src []byte, n int) (*PreviewResult, error) {
	spec, err := m.parse(src)
	if err != nil {
		return nil, err
	}
	return RunPreview(ctx, spec, Env{Store: m.store, Files: m.files}, n)
}

// RunPreview is Preview of a parsed job file within env.
func RunPreview(ctx context.Context, spec *Spec, env Env, n int) (*PreviewResult, error) {
	if n <= 0 {
		n = DefaultPreviewRecords
	}
	n = min(n, MaxPreviewRecords)
	begin := time.Now()
	p := &previewRun{records: n, nodes: map[string]*previewNode{}, stream: spec.Source.stream()}
	if p.stream == "" && len(spec.Source.File) > 0 {
		p.stream = spec.Source.File[0]
	}
	env.preview = p
	env.Resume = false
	res := &PreviewResult{}
	built, err := Build(spec, env)
	if err != nil {
		return nil, spec.asSpecError(err)
	}
	res.Warnings = p.warnings
	ctx, cancel := context.WithTimeout(ctx, PreviewTimeout)
	defer cancel()
	_, err = engine.Run(ctx, built.Graph, engine.Options{})
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		res.TimedOut = true
	case err != nil:
		res.Error = CleanMessage(err.Error())
	}
	res.ElapsedMS = ms(time.Since(begin))
	res.RecordsRead = p.node(SourceID).rowCount
	for _, gn := range spec.GraphNodes() {
		if gn.Kind == DeadLetterKind {
			continue
		}
		pn := p.node(gn.ID)
		op := PreviewOperator{ID: gn.ID, Kind: gn.Kind, Rows: pn.rows, RowCount: pn.rowCount, Errors: pn.errs, ErrorCount: pn.errCount}
		if gn.ID != SourceID && !isSink(spec, gn.ID) && stateful(gn.Kind) && !res.TimedOut && res.Error == "" {
			op.Flushed = true
		}
		if gn.ID == SourceID {
			op.Kind = "source"
		} else if isSink(spec, gn.ID) {
			op.Kind = "sink"
		}
		if op.Rows == nil {
			op.Rows = []any{}
		}
		if op.Errors == nil {
			op.Errors = []PreviewError{}
		}
		res.Operators = append(res.Operators, op)
	}
	return res, nil
}

func isSink(spec *Spec, id string) bool {
	for _, s := range spec.Sinks {
		if s.ID == id {
			return true
		}
	}
	return false
}
