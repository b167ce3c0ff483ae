package runtime

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/operators"
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

// nativeGraph is the benchmark job in Go: map → filter → keyed tumbling
// count + sum.
func nativeGraph(src sources.Source, sink *countSink) *Graph {
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
			{ID: "per-page", Inputs: []string{"ok"}, New: newTumbling(10_000, "ms"), Key: FieldKey("page")},
		},
		Sinks: []SinkNode{{ID: "out", Inputs: []string{"per-page"}, Sink: sink}},
	}
}

// BenchmarkNativeWindowJob: 100-byte JSON records, 1,000 keys, 4 shards,
// records already in memory (decoded by the source, as from the log).
func BenchmarkNativeWindowJob(b *testing.B) {
	const shards, perShard = 4, 100_000
	data := benchLines(shards, perShard, 1000)
	b.ResetTimer()
	var total int64
	for b.Loop() {
		sink := &countSink{}
		st, err := Run(context.Background(), nativeGraph(sources.NewMemory(sources.FormatJSON, data...), sink), Options{})
		if err != nil {
			b.Fatal(err)
		}
		if st.State != Finished || sink.n.Load() == 0 {
			b.Fatalf("state %s, %d results", st.State, sink.n.Load())
		}
		total += shards * perShard
	}
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "records/s")
}
