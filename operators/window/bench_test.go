package window

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
)

// benchRecords makes n decoded ~100-byte clickstream records over 1,000
// pages, 50 per event-time millisecond.
func benchRecords(n, shard int) []operators.Record {
	recs := make([]operators.Record, n)
	for i := range recs {
		line := fmt.Appendf(nil, `{"page":"/p/%04d","user":"user-%05d","latency_ms":%d,"ts":%d,"ref":"search","ok":true}`,
			(i*7+shard)%1000, i%77777, i%300, int64(i/50))
		var m map[string]any
		if err := json.Unmarshal(line, &m); err != nil {
			panic(err)
		}
		recs[i] = operators.Record{Value: m, EventTime: int64(i / 50), Origin: "b"}
	}
	return recs
}

// keyedBenchRecords is n benchRecords as the window gets them after the
// per-shard stage: keyed by page, with the latency as ms.
func keyedBenchRecords(n int) []operators.Record {
	recs := benchRecords(n, 0)
	for i := range recs {
		m := recs[i].Value.(map[string]any)
		recs[i].Key = m["page"].(string)
		m["ms"] = m["latency_ms"]
	}
	return recs
}

// stage is the per-shard part of the job: map → filter → key.
type stage interface {
	Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error
}

// goStage is the native-Go version of the JS stages, for the ratio.
type goStage struct{}

func (goStage) Process(_ context.Context, in *operators.Batch, out operators.Emitter) error {
	for _, r := range in.Records {
		m := r.Value.(map[string]any)
		v := map[string]any{"page": m["page"], "user": m["user"], "ms": m["latency_ms"], "ts": m["ts"]}
		if strings.HasPrefix(v["user"].(string), "bot-") {
			continue
		}
		r.Value, r.Key = v, v["page"].(string)
		out.Emit(r)
	}
	return nil
}

// combinedGo runs the Go stage, then a Combiner.
type combinedGo struct{ cb *Combiner }

func (c combinedGo) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	var mid operators.Batch
	goStage{}.Process(ctx, in, operators.EmitterFunc(func(r operators.Record) { mid.Records = append(mid.Records, r) }))
	return c.cb.Process(ctx, &mid, out)
}

type shardMsg struct {
	shard int
	recs  []operators.Record
	maxT  int64
}

// runPipeline runs map → filter → key on 4 shard goroutines, exchanges by
// key hash to 2 window goroutines (tumbling 1s, count + sum), with the
// watermark = min over shards of max event time, and returns records/s.
func runPipeline(b *testing.B, newStage func(*Compiled) stage, perShard int) {
	const shards, windows, batch = 4, 2, 512
	inputs := make([][]operators.Record, shards)
	for s := range inputs {
		inputs[s] = benchRecords(perShard, s)
	}
	comp, err := Compile(Config{Job: "bench", ID: "per-page", Kind: Tumbling, Size: time.Second,
		Aggregates: []aggregate.Spec{{Name: "views", Func: aggregate.Count}, {Name: "total_ms", Func: aggregate.Sum, Field: "ms"}}})
	if err != nil {
		b.Fatal(err)
	}
	var results sync.Map
	b.ResetTimer()
	cpu0 := cpuclock.Process()
	start := time.Now()
	chans := make([]chan shardMsg, windows)
	var wg sync.WaitGroup
	for w := range chans {
		chans[w] = make(chan shardMsg, 8)
		op, err := comp.New()
		if err != nil {
			b.Fatal(err)
		}
		wg.Add(1)
		go func(op *Operator, in chan shardMsg) {
			defer wg.Done()
			maxT := make([]int64, shards)
			for i := range maxT {
				maxT[i] = math.MinInt64
			}
			n := 0
			out := operators.EmitterFunc(func(operators.Record) { n++ })
			for m := range in {
				if err := op.Process(context.Background(), &operators.Batch{Records: m.recs}, out); err != nil {
					panic(err)
				}
				maxT[m.shard] = max(maxT[m.shard], m.maxT)
				wm := maxT[0]
				for _, t := range maxT {
					wm = min(wm, t)
				}
				op.OnWatermark(context.Background(), wm, out)
			}
			op.OnWatermark(context.Background(), math.MaxInt64, out)
			results.Store(op, n)
		}(op, chans[w])
	}
	var sg sync.WaitGroup
	for s := range shards {
		sg.Add(1)
		go func(s int) {
			defer sg.Done()
			st := newStage(comp)
			parts := make([][]operators.Record, windows)
			out := operators.EmitterFunc(func(r operators.Record) {
				h := fnv.New32a()
				h.Write([]byte(r.Key))
				w := h.Sum32() % windows
				parts[w] = append(parts[w], r)
			})
			for i := 0; i < len(inputs[s]); i += batch {
				in := &operators.Batch{Records: inputs[s][i:min(i+batch, len(inputs[s]))]}
				if err := st.Process(context.Background(), in, out); err != nil {
					panic(err)
				}
				maxT := in.Records[len(in.Records)-1].EventTime
				for w := range parts {
					chans[w] <- shardMsg{shard: s, recs: parts[w], maxT: maxT}
					parts[w] = nil
				}
			}
		}(s)
	}
	sg.Wait()
	for _, c := range chans {
		close(c)
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := shards * perShard
	b.ReportMetric(float64(total)/elapsed.Seconds(), "records/s")
	b.ReportMetric(float64(cpuclock.Since(cpu0))/float64(total), "cpu-ns/record")
	fired := 0
	results.Range(func(_, v any) bool { fired += v.(int); return true })
	if want := 1000; fired < want { // every page has a result
		b.Fatalf("%d results fired, want at least %d", fired, want)
	}
}

// BenchmarkPipeline is the job — map → filter → keyed tumbling
// count + sum over ~100-byte JSON records, 1,000 keys, 4 shards — with
// records already decoded (decoding is the source's cost), in JS and in
// native Go. Each iteration runs 4 × 50,000 records.
func BenchmarkPipeline(b *testing.B) {
	perShard := 50_000
	jsStages := []js.Stage{
		{Operator: "parse", Kind: js.Map, Src: `r => ({page: r.page, user: r.user, ms: r.latency_ms, ts: r.ts})`},
		{Operator: "humans", Kind: js.Filter, Src: `r => !r.user.startsWith("bot-")`},
		{Operator: "per-page", Kind: js.Key, Src: `r => r.page`},
	}
	cp, err := js.CompileChain(js.ChainSpec{Job: "bench", Stages: jsStages})
	if err != nil {
		b.Fatal(err)
	}
	newChain := func() *js.Chain {
		c, err := cp.New()
		if err != nil {
			panic(err)
		}
		return c
	}
	b.Run("js", func(b *testing.B) {
		for range b.N {
			runPipeline(b, func(*Compiled) stage { return newChain() }, perShard)
		}
	})
	b.Run("js+combine", func(b *testing.B) {
		for range b.N {
			runPipeline(b, func(comp *Compiled) stage {
				cb, err := comp.NewCombiner(newChain())
				if err != nil {
					panic(err)
				}
				cb.DropLateRecords()
				return cb
			}, perShard)
		}
	})
	b.Run("go", func(b *testing.B) {
		for range b.N {
			runPipeline(b, func(*Compiled) stage { return goStage{} }, perShard)
		}
	})
	b.Run("go+combine", func(b *testing.B) {
		for range b.N {
			runPipeline(b, func(comp *Compiled) stage {
				cb, err := comp.NewCombiner(nil)
				if err != nil {
					panic(err)
				}
				cb.DropLateRecords()
				return combinedGo{cb}
			}, perShard)
		}
	})
}

// BenchmarkWindow is the window alone: keyed tumbling count + sum over
// 1,000 keys, records already keyed.
func BenchmarkWindow(b *testing.B) {
	op, err := New(Config{Job: "bench", ID: "w", Kind: Tumbling, Size: time.Second,
		Aggregates: []aggregate.Spec{{Name: "views", Func: aggregate.Count}, {Name: "total_ms", Func: aggregate.Sum, Field: "ms"}}})
	if err != nil {
		b.Fatal(err)
	}
	recs := keyedBenchRecords(1 << 16)
	out := operators.EmitterFunc(func(operators.Record) {})
	b.ResetTimer()
	cpu0 := cpuclock.Process()
	n := 0
	for n < b.N {
		for i := 0; i < len(recs) && n < b.N; i += 512 {
			batch := &operators.Batch{Records: recs[i:min(i+512, len(recs))]}
			op.Process(context.Background(), batch, out)
			op.OnWatermark(context.Background(), batch.Records[len(batch.Records)-1].EventTime, out)
			n += len(batch.Records)
		}
		op.OnWatermark(context.Background(), math.MaxInt64, out)
		op, _ = New(op.cfg)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
	b.ReportMetric(float64(cpuclock.Since(cpu0))/float64(n), "cpu-ns/record")
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
}
