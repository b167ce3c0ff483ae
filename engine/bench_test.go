package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/operators/window"
	"github.com/runnel-dev/runnel/sources"
)

// benchLines makes shards × n JSON records of about 100 bytes over keys
// pages, event times 1 ms apart per shard.
func benchLines(shards, n, keys int) []sources.MemoryShard {
	out := make([]sources.MemoryShard, shards)
	rng := rand.New(rand.NewPCG(1, 2))
	countries := []string{"de", "us", "fr", "jp"}
	for s := range out {
		out[s].ID = fmt.Sprintf("shardId-%012d", s)
		out[s].Data = make([][]byte, n)
		for i := range n {
			status := 200
			if rng.IntN(20) == 0 {
				status = 500
			}
			out[s].Data[i] = fmt.Appendf(nil, `{"page":"/p/%d","user":"u-%d","latency_ms":%.1f,"status":%d,"country":"%s","ts":%d}`,
				rng.IntN(keys), rng.IntN(100000), rng.Float64()*200, status, countries[rng.IntN(4)], 1767225600000+int64(i))
		}
	}
	return out
}

// The benchmark job: map → filter → keyed tumbling (10 s) count + sum, in
// native Go and in JS, both ending in the real window operator.
var benchStages = []js.Stage{
	{Operator: "parse", Kind: js.Map, Src: `r => ({page: r.page, ms: r.latency_ms, status: r.status})`},
	{Operator: "ok", Kind: js.Filter, Src: `r => r.status == 200`},
	{Operator: "per-page", Kind: js.Key, Src: `r => r.page`},
}

func benchWindow(b *testing.B) *window.Compiled {
	w, err := window.Compile(window.Config{Job: "bench", ID: "per-page", Kind: window.Tumbling, Size: 10 * time.Second,
		Aggregates: []aggregate.Spec{{Name: "views", Func: aggregate.Count}, {Name: "total_ms", Func: aggregate.Sum, Field: "ms"}}})
	if err != nil {
		b.Fatal(err)
	}
	return w
}

func windowNode(w *window.Compiled) func() (operators.Operator, error) {
	return func() (operators.Operator, error) { return w.New() }
}

// nativeGraph: Go map, Go filter, Go key, window operator.
func nativeGraph(b *testing.B, src sources.Source, sink *countSink) *Graph {
	return &Graph{
		Name: "bench-native",
		Sources: []SourceNode{{ID: "src", Source: src, EventTime: FieldEventTime("ts"),
			Watermark: time.Second, IdleTimeout: -1}},
		Nodes: []Node{
			{ID: "parse", Inputs: []string{"src"}, New: newMap(func(r operators.Record) (operators.Record, bool) {
				m := r.Value.(map[string]any)
				r.Value = map[string]any{"page": m["page"], "ms": m["latency_ms"], "status": m["status"]}
				return r, true
			})},
			{ID: "ok", Inputs: []string{"parse"}, New: newMap(func(r operators.Record) (operators.Record, bool) {
				return r, r.Value.(map[string]any)["status"] == 200.0
			})},
			{ID: "per-page", Inputs: []string{"ok"}, New: windowNode(benchWindow(b)), Key: FieldKey("page")},
		},
		Sinks: []SinkNode{{ID: "out", Inputs: []string{"per-page"}, Sink: sink}},
	}
}

// jsGraph: map, filter and key in JS (one fused chain per task), window
// operator; combine puts a
// window Combiner after the chain in the shard tasks, so partial
// aggregates cross the exchange instead of records.
func jsGraph(b *testing.B, src sources.Source, sink *countSink, combine bool) *Graph {
	// event_time "r => r.ts" takes the Go fast path jobs.Build gives it.
	et := FieldEventTime("ts")
	// Without a combiner, the chain exports only the field the window
	// reads, as jobs.Build has it do.
	spec := js.ChainSpec{Job: "bench", Stages: benchStages, Project: []string{"ms"}}
	if combine {
		spec.Project = nil
	}
	chain, err := js.CompileChain(spec)
	if err != nil {
		b.Fatal(err)
	}
	w := benchWindow(b)
	perShard := ChainNode(chain)
	if combine {
		perShard = func() (operators.Operator, error) {
			c, err := chain.New()
			if err != nil {
				return nil, err
			}
			cb, err := w.NewCombiner(c)
			if err != nil {
				return nil, err
			}
			cb.DropLateRecords()
			return cb, nil
		}
	}
	return &Graph{
		Name:    "bench-js",
		Sources: []SourceNode{{ID: "src", Source: src, EventTime: et, Watermark: time.Second, IdleTimeout: -1}},
		Nodes: []Node{
			{ID: "chain", Inputs: []string{"src"}, New: perShard},
			{ID: "per-page", Inputs: []string{"chain"}, New: windowNode(w), Key: PresetKey},
		},
		Sinks: []SinkNode{{ID: "out", Inputs: []string{"per-page"}, Sink: sink}},
	}
}

// benchRun is one variant's totals.
type benchRun struct {
	records float64
	wall    time.Duration
	cpu     time.Duration
}

func (r *benchRun) report(b *testing.B, name string) {
	b.ReportMetric(r.records/r.wall.Seconds(), name+"-records/s")
	b.ReportMetric(float64(r.cpu.Nanoseconds())/r.records, name+"-cpu-ns/record")
}

// runBench runs one job over the data and adds to the variant's totals.
func runBench(b *testing.B, tot *benchRun, data []sources.MemoryShard, g func(sources.Source, *countSink) *Graph) {
	sink := &countSink{}
	n := 0
	for _, s := range data {
		n += len(s.Data)
	}
	cpu0 := cpuclock.Process()
	start := time.Now()
	st, err := Run(context.Background(), g(sources.NewMemory(sources.FormatJSON, data...), sink), Options{})
	if err != nil {
		b.Fatal(err)
	}
	tot.wall += time.Since(start)
	tot.cpu += cpuclock.Since(cpu0)
	tot.records += float64(n)
	if st.State != Finished || sink.n.Load() < 1000 {
		b.Fatalf("state %s, %d results; want every one of 1,000 pages", st.State, sink.n.Load())
	}
}

// BenchmarkWindowJob is the job — map → filter → keyed tumbling
// count + sum over ~100-byte JSON records, 1,000 keys, 4 shards, records
// already in memory as bytes (decoded by the source as from the log) —
// end to end through the runtime, in native Go and in JS in the same run.
// It reports records/s of each and the JS/native ratio.
func BenchmarkWindowJob(b *testing.B) {
	const shards = 4
	perShard := 100_000
	if testing.Short() {
		perShard = 20_000
	}
	data := benchLines(shards, perShard, 1000)
	b.ResetTimer()
	var native, jsr, comb benchRun
	for b.Loop() {
		runBench(b, &native, data, func(s sources.Source, k *countSink) *Graph { return nativeGraph(b, s, k) })
		runBench(b, &jsr, data, func(s sources.Source, k *countSink) *Graph { return jsGraph(b, s, k, false) })
		runBench(b, &comb, data, func(s sources.Source, k *countSink) *Graph { return jsGraph(b, s, k, true) })
	}
	native.report(b, "native")
	jsr.report(b, "js")
	comb.report(b, "js+combine")
	b.ReportMetric(float64(jsr.cpu)/float64(native.cpu), "js/native-cpu")
	b.ReportMetric(float64(comb.cpu)/float64(native.cpu), "js+combine/native-cpu")
}
