package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/confine"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/operators/window"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/streams"
)

// Env is what building a job may use: the stream store (nil under
// `runnel run` without --data, where stream sources and sinks are refused)
// and where log sinks print.
type Env struct {
	Store *streams.Store
	Log   io.Writer
	// InterpretedJS runs every JS function in goja, without the native
	// evaluation of simple ones (js.ChainSpec.Interpreted): for
	// benchmarks that show what the evaluator saves.
	InterpretedJS bool
	// Files, when set, confines file sources and sinks beneath it (a
	// server's files root); nil gives them the whole machine (runnel
	// run). Resume says the job restores from a checkpoint or savepoint,
	// so file sinks continue their own files (sinks.FileConfig.Resume).
	Files  *confine.Root
	Resume bool
	// Logger receives what operators log at run time (a function's
	// batches sent to their on-failure destination); nil is slog's
	// default.
	Logger *slog.Logger
	// WindowStore, when set, makes the state store of each instance of
	// window operator id (window.Config.NewStore): `runnel worker` keeps
	// window state in stores that also write a changelog.
	WindowStore func(id string) func(window.Codec) window.Store

	// onSkip, when set, is told of each record an on_error: skip
	// operator dropped (the job's error history lists them).
	onSkip func(js.Skipped)

	// preview, when set, builds the job for a preview (RunPreview): a
	// sample source, captures for sinks, no fusion, every error kept.
	preview *previewRun

	// ctx, when set, bounds the connectors' connects (each by 30 s too):
	// a job's start cancels it when the job is stopped or the manager
	// closes (beginStart).
	ctx context.Context
}

// connectTimeout bounds a connector's connect as the job is built.
const connectTimeout = 30 * time.Second

// connectCtx is the context of a connector's connect: the build's, bounded
// by connectTimeout.
func (b *builder) connectCtx() (context.Context, context.CancelFunc) {
	ctx := b.env.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	return context.WithTimeout(ctx, connectTimeout)
}

// Built is a job ready to start: its runtime graph and the dashboards the
// results API serves.
type Built struct {
	Graph      *engine.Graph
	Dashboards map[string]*sinks.Dashboard
}

// Build maps a validated Spec onto sources, operators and sinks: the
// registry of operator kinds. Consecutive map and filter operators that form
// a simple chain are fused into one JS call per batch.
func Build(spec *Spec, env Env) (*Built, error) {
	b := &builder{spec: spec, env: env, out: &Built{Graph: &engine.Graph{Name: spec.Name}, Dashboards: map[string]*sinks.Dashboard{}},
		preKeyed: map[string]bool{}}
	if err := b.source(); err != nil {
		return nil, err
	}
	if err := b.operators(); err != nil {
		return nil, err
	}
	if err := b.sortNodes(); err != nil {
		return nil, err
	}
	if err := b.sinks(); err != nil {
		b.closeSinks()
		return nil, err
	}
	if err := b.out.Graph.Validate(); err != nil {
		b.closeSinks()
		return nil, fmt.Errorf("job %s: %w", spec.Name, err)
	}
	return b.out, nil
}

type builder struct {
	spec *Spec
	env  Env
	out  *Built
	// alias maps an operator fused into a chain to the chain's node id.
	alias           map[string]string
	deadLetterSinks []deadLetter
	// preKeyed marks windows whose key stage runs in the upstream chain.
	preKeyed map[string]bool
	// columns are the known result columns of window and detect nodes,
	// so sinks keep the file's column order and types.
	columns map[string][]sinks.Column
	// bad is the source's error policy (badRecords).
	bad *sources.BadRecords
	// restoreOnly builds sinks only to commit what a restored checkpoint
	// staged for them (commitRemovedSinks): a stream sink does not
	// create its stream.
	restoreOnly bool
}

func (b *builder) resolve(id string) string {
	if a, ok := b.alias[id]; ok {
		return a
	}
	return id
}

func (b *builder) jsOptions(op *Operator) js.Options {
	o := js.Options{Budget: DefaultTimeout}
	if op != nil && op.Timeout > 0 {
		o.Budget = op.Timeout
	}
	return o
}

// wrapSourceErr says that err is the source's.
func wrapSourceErr(b *builder, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("job %s: source: %w", b.spec.Name, err)
}

func onError(o OnError) js.OnError {
	switch o.Policy {
	case OnErrorSkip:
		return js.OnError{Mode: js.Skip}
	case OnErrorDeadLetter:
		return js.OnError{Mode: js.DeadLetter, Stream: o.DeadLetter}
	}
	return js.OnError{Mode: js.Fail}
}

func (b *builder) source() error {
	s := &b.spec.Source
	node := engine.SourceNode{ID: SourceID, Watermark: s.Watermark}
	k := lookupSource(s.Kind())
	if k == nil {
		return fmt.Errorf("job %s: the source has no kind", b.spec.Name)
	}
	var err error
	build := k.Build
	if b.env.preview != nil {
		build = func(b *builder, s *Source) (sources.Source, error) { return b.previewSource(k, s) }
	}
	if node.Source, err = build(b, s); err != nil {
		return err
	}
	if s.EventTime != "" {
		if node.EventTime, err = b.eventTime(); err != nil {
			return fmt.Errorf("job %s: source.event_time: %w", b.spec.Name, err)
		}
	}
	b.out.Graph.Sources = append(b.out.Graph.Sources, node)
	return nil
}

// rawJSON reports whether the source may hand JSON records on undecoded:
// when every operator and sink reading it is a JS map or filter chain,
// which decodes only the fields its functions read and exports Go values.
// The event_time extractor reads raw records too (eventTimeJS).
func (b *builder) rawJSON() bool {
	if f := b.spec.Source.Format; f != "" && f != string(sources.FormatJSON) {
		return false
	}
	readers := 0
	for i := range b.spec.Operators {
		op := &b.spec.Operators[i]
		for _, f := range op.From {
			if f != SourceID {
				continue
			}
			if k := lookupOperator(op.Kind()); k == nil || k.Stage == nil {
				return false
			}
			readers++
		}
	}
	for _, s := range b.spec.Sinks {
		if s.From == SourceID {
			return false
		}
	}
	return readers > 0
}

// inPlace turns a one-stage key chain into a function that updates records
// where they are. A key stage fails the job on error: it cannot drop a
// record.
func inPlace(prog *js.ChainProgram) func() (func(context.Context, []operators.Record) error, error) {
	return func() (func(context.Context, []operators.Record) error, error) {
		c, err := prog.New()
		if err != nil {
			return nil, err
		}
		var out []operators.Record
		emit := operators.EmitterFunc(func(r operators.Record) { out = append(out, r) })
		return func(ctx context.Context, recs []operators.Record) error {
			out = out[:0]
			if err := c.Process(ctx, &operators.Batch{Records: recs}, emit); err != nil {
				return err
			}
			if len(out) != len(recs) {
				return fmt.Errorf("js stage changed the number of records (%d in, %d out)", len(recs), len(out))
			}
			copy(recs, out)
			return nil
		}, nil
	}
}

func ensureStream(st *streams.Store, name string, shards int) error {
	if _, err := st.DescribeStream(name); err == nil {
		return nil
	}
	_, err := st.CreateStream(name, max(shards, 1), streams.CreateOptions{})
	if err != nil && !isExists(err) {
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	return nil
}

func isExists(err error) bool { return err != nil && errors.Is(err, streams.ErrStreamExists) }

// consumers counts, per node id, the operators and sinks that read it.
func (b *builder) consumers() map[string]int {
	n := map[string]int{}
	for _, op := range b.spec.Operators {
		for _, f := range op.From {
			n[f]++
		}
	}
	for _, s := range b.spec.Sinks {
		n[s.From]++
	}
	return n
}

func (b *builder) operators() error {
	b.alias = map[string]string{}
	cons := b.consumers()
	ops := b.spec.Operators
	for i := 0; i < len(ops); i++ {
		op := &ops[i]
		k := lookupOperator(op.Kind())
		switch {
		case k == nil:
			return fmt.Errorf("job %s: operator %s has no kind", b.spec.Name, op.ID)
		case k.Stage != nil:
			j, err := b.chain(ops, i, cons)
			if err != nil {
				return err
			}
			i = j - 1
		default:
			if err := k.Build(b, op, b.preKeyed[op.ID]); err != nil {
				return err
			}
		}
	}
	return nil
}

// chain builds the JS chain that starts at ops[i]: the chain operators
// that follow and only it feeds fuse into one JS call per batch, and so
// does the key stage of an operator after them that only the chain feeds.
// It returns the index of the first operator not in the chain.
func (b *builder) chain(ops []Operator, i int, cons map[string]int) (int, error) {
	op := &ops[i]
	stages := []js.Stage{b.stage(op)}
	last := op.ID
	j := i + 1
	// A preview fuses nothing, so that every operator's output shows.
	for ; j < len(ops) && b.env.preview == nil; j++ {
		nx := &ops[j]
		k := lookupOperator(nx.Kind())
		if k == nil || k.Stage == nil || len(nx.From) != 1 || nx.From[0] != last || cons[last] != 1 || nx.Timeout != op.Timeout {
			break
		}
		stages = append(stages, b.stage(nx))
		b.alias[nx.ID] = op.ID
		last = nx.ID
	}
	if last != op.ID {
		b.alias[last] = op.ID
	}
	// An operator keyed by JS that only this chain feeds gets its key
	// stage fused in too: one JS call per batch computes the key, and the
	// operator's exchange uses Record.Key as set.
	var project []string
	if j < len(ops) && b.env.preview == nil {
		nx := &ops[j]
		k := lookupOperator(nx.Kind())
		if k != nil && k.KeyStage != nil && len(nx.From) == 1 && nx.From[0] == last && cons[last] == 1 && nx.Timeout == op.Timeout {
			if st, fields, ok := k.KeyStage(b, nx); ok {
				stages = append(stages, st)
				b.preKeyed[nx.ID] = true
				project = fields
			}
		}
	}
	prog, err := js.CompileChain(js.ChainSpec{Job: b.spec.Name, Functions: b.spec.Functions, Stages: stages,
		Options: b.jsOptions(op), Project: project, Interpreted: b.env.InterpretedJS, OnSkip: b.env.onSkip})
	if err != nil {
		return 0, fmt.Errorf("job %s: operator %s: %w", b.spec.Name, op.ID, err)
	}
	b.node(engine.Node{ID: op.ID, Inputs: b.inputs(op.From), New: engine.ChainNode(prog)})
	b.deadLetters(stages)
	return j, nil
}

// sortNodes puts the nodes in the job's topological order (Spec.Graph),
// as the runtime takes them: the file may declare an operator before the
// one it reads. A fused chain sits where its first operator does.
func (b *builder) sortNodes() error {
	g, err := b.spec.Graph()
	if err != nil {
		return fmt.Errorf("job %s: %w", b.spec.Name, err)
	}
	pos := make(map[string]int, len(g.Order))
	for i, id := range g.Order {
		pos[id] = i
	}
	slices.SortStableFunc(b.out.Graph.Nodes, func(x, y engine.Node) int { return pos[x.ID] - pos[y.ID] })
	return nil
}

func (b *builder) inputs(from []string) []string {
	out := make([]string, len(from))
	for i, f := range from {
		out[i] = b.resolve(f)
	}
	return out
}

func (b *builder) node(n engine.Node) { b.out.Graph.Nodes = append(b.out.Graph.Nodes, n) }

// deadLetters adds a stream sink for each dead_letter stage.
func (b *builder) deadLetters(stages []js.Stage) {
	for _, st := range stages {
		if st.OnError.Mode != js.DeadLetter {
			continue
		}
		b.deadLetterSinks = append(b.deadLetterSinks, deadLetter{op: st.Operator, stream: st.OnError.Stream})
	}
}

type deadLetter struct{ op, stream string }

func (b *builder) keyFunc(id, src string, op *Operator) (func() (engine.KeyFunc, error), error) {
	if src == "" {
		// Already keyed upstream (a window's results): keep Record.Key.
		return engine.PresetKey, nil
	}
	prog, err := js.CompileChain(js.ChainSpec{Job: b.spec.Name, Functions: b.spec.Functions,
		Stages: []js.Stage{{Operator: id, Kind: js.Key, Src: src}}, Options: b.jsOptions(op), Interpreted: b.env.InterpretedJS})
	if err != nil {
		return nil, fmt.Errorf("job %s: operator %s key: %w", b.spec.Name, id, err)
	}
	f := inPlace(prog)
	return func() (engine.KeyFunc, error) {
		fn, err := f()
		return engine.KeyFunc(fn), err
	}, nil
}

func (b *builder) setColumns(id string, cols []sinks.Column) {
	if b.columns == nil {
		b.columns = map[string][]sinks.Column{}
	}
	b.columns[id] = cols
}

// stage is op's JS chain stage; in a preview, every failure goes to the
// dead-letter output, which the preview keeps as the operator's errors.
func (b *builder) stage(op *Operator) js.Stage {
	st := lookupOperator(op.Kind()).Stage(op)
	if b.env.preview != nil {
		st.OnError = js.OnError{Mode: js.DeadLetter, Stream: "-"}
	}
	return st
}

func (b *builder) sinks() error {
	if b.env.preview != nil {
		b.previewSinks()
		return nil
	}
	for i := range b.spec.Sinks {
		s := &b.spec.Sinks[i]
		input := b.resolve(s.From)
		cols := b.columns[input]
		if s.Late != "" {
			input, cols = s.Late+":"+operators.LateOutput, nil
		}
		k := lookupSink(s.Kind())
		if k == nil {
			return fmt.Errorf("job %s: sink %s: the sink has no kind", b.spec.Name, s.ID)
		}
		sink, err := k.Build(b, s, cols)
		if err != nil {
			if k.Files != nil {
				// The field's path names the sink already.
				if files := k.Files(s, fmt.Sprintf("sinks[%d]", i)); len(files) > 0 {
					return &fileError{field: files[0].Field, err: err}
				}
			}
			return fmt.Errorf("job %s: sink %s: %w", b.spec.Name, s.ID, err)
		}
		b.out.Graph.Sinks = append(b.out.Graph.Sinks, engine.SinkNode{ID: s.ID, Inputs: []string{input}, Sink: sink})
	}
	for _, dl := range b.deadLetterSinks {
		sink, err := b.streamSink(dl.stream, 1, nil)
		if err != nil {
			return fmt.Errorf("job %s: dead letters of %s: %w", b.spec.Name, dl.op, err)
		}
		b.out.Graph.Sinks = append(b.out.Graph.Sinks, engine.SinkNode{ID: dl.op + "-dead-letters",
			Inputs: []string{b.resolve(dl.op) + ":" + operators.DeadLetterOutput(dl.op)}, Sink: cleanDeadLetters(sink)})
	}
	return nil
}

func (b *builder) closeSinks() {
	for _, s := range b.out.Graph.Sinks {
		s.Sink.Close()
	}
}
