package jobs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/runnel-dev/runnel/internal/confine"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/anomaly"
	"github.com/runnel-dev/runnel/operators/detect"
	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/operators/window"
	"github.com/runnel-dev/runnel/runtime"
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
}

// Built is a job ready to start: its runtime graph and the dashboards the
// results API serves.
type Built struct {
	Graph      *runtime.Graph
	Dashboards map[string]*sinks.Dashboard
}

// Build maps a validated Spec onto sources, operators and sinks: the
// registry of operator kinds. Consecutive map and filter operators that form
// a simple chain are fused into one JS call per batch.
func Build(spec *Spec, env Env) (*Built, error) {
	b := &builder{spec: spec, env: env, out: &Built{Graph: &runtime.Graph{Name: spec.Name}, Dashboards: map[string]*sinks.Dashboard{}}}
	if err := b.source(); err != nil {
		return nil, err
	}
	if err := b.operators(); err != nil {
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
	node := runtime.SourceNode{ID: SourceID, Watermark: s.Watermark}
	var err error
	switch s.Kind() {
	case SourceStream:
		if b.env.Store == nil {
			return fmt.Errorf("job %s: source.stream needs a server (or runnel run --data DIR)", b.spec.Name)
		}
		if err := ensureStream(b.env.Store, s.Stream, s.Shards); err != nil {
			return err
		}
		if dl := s.OnError.DeadLetter; s.OnError.Policy == OnErrorDeadLetter {
			if err := ensureStream(b.env.Store, dl, 1); err != nil {
				return fmt.Errorf("job %s: source dead letters: %w", b.spec.Name, err)
			}
		}
		node.Source, err = sources.NewStream(sources.StreamConfig{Store: b.env.Store, Stream: s.Stream,
			Start: s.Start.Position, Timestamp: s.Start.AtTimestamp, Format: sources.Format(s.Format),
			RawJSON: b.rawJSON(), MaxDepth: sources.MaxJSONDepth, OnError: b.badRecords()})
	case SourceFile:
		node.Source, err = sources.NewFile(sources.FileConfig{Paths: s.File, Format: s.Format, Root: b.env.Files})
	case SourceGenerator:
		g := s.Generator
		rate := g.Rate
		if rate == RateMax {
			rate = 0
		}
		node.Source, err = sources.NewGenerator(sources.GeneratorConfig{Shards: max(s.Shards, 1), Rate: rate, Keys: g.Keys,
			Users: g.Users, Seed: g.Seed, Count: g.Count})
	case SourceKafka:
		node.Source, err = b.kafkaSource(s)
	default:
		return fmt.Errorf("job %s: the source has no kind", b.spec.Name)
	}
	if err != nil {
		return fmt.Errorf("job %s: source: %w", b.spec.Name, err)
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
// The event_time extractor reads raw records too (runtime.EventTimeJS).
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
			if k := op.Kind(); k != KindMap && k != KindFilter {
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
	b.preKeyed = map[string]bool{}
	cons := b.consumers()
	ops := b.spec.Operators
	for i := 0; i < len(ops); i++ {
		op := &ops[i]
		switch op.Kind() {
		case KindMap, KindFilter:
			// Fuse following map/filter operators that only this chain feeds.
			stages := []js.Stage{stage(op)}
			last := op.ID
			j := i + 1
			for ; j < len(ops); j++ {
				nx := &ops[j]
				if (nx.Kind() != KindMap && nx.Kind() != KindFilter) || len(nx.From) != 1 || nx.From[0] != last || cons[last] != 1 || nx.Timeout != op.Timeout {
					break
				}
				stages = append(stages, stage(nx))
				b.alias[nx.ID] = op.ID
				last = nx.ID
			}
			if last != op.ID {
				b.alias[last] = op.ID
			}
			// A window keyed by JS that only this chain feeds gets its key
			// stage fused in too: one JS call per batch computes the key,
			// and the window's exchange uses Record.Key as set.
			var project []string
			if j < len(ops) {
				if w := &ops[j]; w.Kind() == KindWindow && w.Window.Key != "" && len(w.From) == 1 && w.From[0] == last && cons[last] == 1 && w.Timeout == op.Timeout {
					stages = append(stages, js.Stage{Operator: w.ID, Kind: js.Key, Src: w.Window.Key, OnError: onError(w.OnError)})
					b.preKeyed[w.ID] = true
					project = b.windowFields(w)
				}
			}
			prog, err := js.CompileChain(js.ChainSpec{Job: b.spec.Name, Functions: b.spec.Functions, Stages: stages,
				Options: b.jsOptions(op), Project: project, Interpreted: b.env.InterpretedJS})
			if err != nil {
				return fmt.Errorf("job %s: operator %s: %w", b.spec.Name, op.ID, err)
			}
			b.node(runtime.Node{ID: op.ID, Inputs: b.inputs(op.From), New: runtime.ChainNode(prog)})
			b.deadLetters(stages)
			i = j - 1
		case KindWindow:
			if err := b.window(op); err != nil {
				return err
			}
		case KindDetect:
			if err := b.detect(op); err != nil {
				return err
			}
		default:
			return fmt.Errorf("job %s: operator %s has no kind", b.spec.Name, op.ID)
		}
	}
	return nil
}

// windowFields returns the top-level record fields window w reads, when
// they are all it reads: its aggregates are builtins, no sink takes its
// late records and its errors are not dead-lettered (late records and
// dead letters carry the whole record). Otherwise nil.
func (b *builder) windowFields(w *Operator) []string {
	if w.OnError.Policy == OnErrorDeadLetter {
		return nil
	}
	for _, s := range b.spec.Sinks {
		if s.Late == w.ID {
			return nil
		}
	}
	fields := []string{}
	for _, a := range w.Window.Aggregate {
		if a.Func == AggCustom {
			return nil
		}
		if a.Field == "" {
			continue
		}
		top, _, _ := strings.Cut(a.Field, ".")
		if !slices.Contains(fields, top) {
			fields = append(fields, top)
		}
	}
	return fields
}

func stage(op *Operator) js.Stage {
	st := js.Stage{Operator: op.ID, Kind: js.Map, Src: op.Map, OnError: onError(op.OnError)}
	if op.Kind() == KindFilter {
		st.Kind, st.Src = js.Filter, op.Filter
	}
	return st
}

func (b *builder) inputs(from []string) []string {
	out := make([]string, len(from))
	for i, f := range from {
		out[i] = b.resolve(f)
	}
	return out
}

func (b *builder) node(n runtime.Node) { b.out.Graph.Nodes = append(b.out.Graph.Nodes, n) }

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

func (b *builder) keyFunc(id, src string, op *Operator) (func() (runtime.KeyFunc, error), error) {
	if src == "" {
		// Already keyed upstream (a window's results): keep Record.Key.
		return runtime.PresetKey, nil
	}
	prog, err := js.CompileChain(js.ChainSpec{Job: b.spec.Name, Functions: b.spec.Functions,
		Stages: []js.Stage{{Operator: id, Kind: js.Key, Src: src}}, Options: b.jsOptions(op), Interpreted: b.env.InterpretedJS})
	if err != nil {
		return nil, fmt.Errorf("job %s: operator %s key: %w", b.spec.Name, id, err)
	}
	f := inPlace(prog)
	return func() (runtime.KeyFunc, error) {
		fn, err := f()
		return runtime.KeyFunc(fn), err
	}, nil
}

func (b *builder) window(op *Operator) error {
	w := op.Window
	cfg := window.Config{Job: b.spec.Name, ID: op.ID, Size: w.Tumbling, AllowedLateness: w.AllowedLateness,
		Functions: b.spec.Functions, OnError: onError(op.OnError), JSOptions: b.jsOptions(op)}
	if w.StateCache > 0 {
		// A smaller cache holds fewer unwritten changes too.
		cfg.StateCacheEntries = w.StateCache
		cfg.StateDirtyEntries = min(window.DefaultStateDirtyEntries, max(w.StateCache/4, 256))
	}
	switch w.Kind() {
	case WindowTumbling:
		cfg.Kind = window.Tumbling
	case WindowSliding:
		cfg.Kind, cfg.Size, cfg.Every = window.Sliding, w.Sliding.Size, w.Sliding.Every
	case WindowSession:
		cfg.Kind, cfg.Gap = window.Session, w.Session.Gap
	}
	for _, a := range w.Aggregate {
		cfg.Aggregates = append(cfg.Aggregates, aggregate.Spec{Name: a.Name, Func: a.Func, Field: a.Field, Object: a.Object,
			Init: a.Init, Add: a.Add, Merge: a.Merge, Result: a.Result, Type: aggregate.ColumnType(a.Type)})
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("job %s: operator %s: %w", b.spec.Name, op.ID, err)
	}
	keySrc := w.Key
	if b.preKeyed[op.ID] {
		keySrc = "" // computed by the upstream chain
	}
	key, err := b.keyFunc(op.ID, keySrc, op)
	if err != nil {
		return err
	}
	b.node(runtime.Node{ID: op.ID, Inputs: b.inputs(op.From), Key: key,
		New: func() (operators.Operator, error) { return window.New(cfg) }})
	var aggs []sinks.Column
	for _, a := range cfg.Aggregates {
		aggs = append(aggs, sinks.Column{Name: a.Name, Type: sinks.ColumnType(a.ColumnType())})
	}
	b.setColumns(op.ID, sinks.WindowColumns(aggs...))
	return nil
}

func (b *builder) setColumns(id string, cols []sinks.Column) {
	if b.columns == nil {
		b.columns = map[string][]sinks.Column{}
	}
	b.columns[id] = cols
}

func (b *builder) detect(op *Operator) error {
	d := op.Detect
	cfg := detect.Config{ID: op.ID, Fields: d.Value, Anomaly: anomaly.Config{Method: d.Method, Threshold: d.Threshold, Seed: d.Seed}}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("job %s: operator %s: %w", b.spec.Name, op.ID, err)
	}
	key, err := b.keyFunc(op.ID, d.Key, op)
	if err != nil {
		return err
	}
	b.node(runtime.Node{ID: op.ID, Inputs: b.inputs(op.From), Key: key,
		New: func() (operators.Operator, error) { return detect.New(cfg) }})
	if in := b.columns[b.resolve(op.From[0])]; len(op.From) == 1 && in != nil {
		exp := sinks.Float64
		if len(d.Value) > 1 {
			exp = sinks.JSON
		}
		cols := append(append([]sinks.Column{}, in...),
			sinks.Column{Name: detect.FieldScore, Type: sinks.Float64}, sinks.Column{Name: detect.FieldIsAnomaly, Type: sinks.Bool},
			sinks.Column{Name: detect.FieldExpected, Type: exp}, sinks.Column{Name: detect.FieldLow, Type: exp},
			sinks.Column{Name: detect.FieldHigh, Type: exp}, sinks.Column{Name: detect.FieldExplanation, Type: sinks.JSON})
		b.setColumns(op.ID, cols)
	}
	return nil
}

func (b *builder) sinks() error {
	for i := range b.spec.Sinks {
		s := &b.spec.Sinks[i]
		input := b.resolve(s.From)
		cols := b.columns[input]
		if s.Late != "" {
			input, cols = s.Late+":"+operators.LateOutput, nil
		}
		var sink sinks.Sink
		var err error
		switch s.Kind() {
		case SinkDashboard:
			title := s.Dashboard.Title
			if title == "" {
				title = s.ID
			}
			var d *sinks.Dashboard
			d, err = sinks.NewDashboard(sinks.DashboardConfig{Title: title, MaxRows: s.Dashboard.Rows, Columns: cols})
			if err == nil {
				b.out.Dashboards[s.ID] = d
				sink = d
			}
		case SinkStream:
			sink, err = b.streamSink(s.Stream.Name, s.Stream.Shards, cols)
		case SinkFile:
			sink, err = sinks.NewFile(sinks.FileConfig{Path: s.File.Path, Format: s.File.Format, Columns: cols,
				Root: b.env.Files, Resume: b.env.Resume})
		case SinkLog:
			w := b.env.Log
			if w == nil {
				w = os.Stdout
			}
			sink = sinks.NewLog(w, s.ID+": ", cols)
		case SinkKafka, SinkPostgres:
			sink, err = b.connectorSink(s, cols)
		default:
			err = fmt.Errorf("the sink has no kind")
		}
		if err != nil {
			err = fmt.Errorf("job %s: sink %s: %w", b.spec.Name, s.ID, err)
			if s.File != nil {
				err = &fileError{field: fmt.Sprintf("sinks[%d].file.path", i), err: err}
			}
			return err
		}
		b.out.Graph.Sinks = append(b.out.Graph.Sinks, runtime.SinkNode{ID: s.ID, Inputs: []string{input}, Sink: sink})
	}
	for _, dl := range b.deadLetterSinks {
		sink, err := b.streamSink(dl.stream, 1, nil)
		if err != nil {
			return fmt.Errorf("job %s: dead letters of %s: %w", b.spec.Name, dl.op, err)
		}
		b.out.Graph.Sinks = append(b.out.Graph.Sinks, runtime.SinkNode{ID: dl.op + "-dead-letters",
			Inputs: []string{b.resolve(dl.op) + ":" + operators.DeadLetterOutput(dl.op)}, Sink: sink})
	}
	return nil
}

func (b *builder) streamSink(name string, shards int, cols []sinks.Column) (sinks.Sink, error) {
	if b.env.Store == nil {
		return nil, fmt.Errorf("a stream sink needs a server (or runnel run --data DIR)")
	}
	if err := ensureStream(b.env.Store, name, shards); err != nil {
		return nil, err
	}
	return sinks.NewStream(sinks.StreamConfig{Store: b.env.Store, Stream: name, Columns: cols})
}

func (b *builder) closeSinks() {
	for _, s := range b.out.Graph.Sinks {
		s.Sink.Close()
	}
}
