package js

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/operators"
)

// benchLine is a ~100-byte clickstream record.
func benchLine(i int) []byte {
	return fmt.Appendf(nil, `{"page":"/p/%04d","user":"user-%05d","latency_ms":%d,"ts":%d,"ref":"search","ok":true}`,
		i%1000, i%77777, i%300, 1700000000000+int64(i))
}

func benchBatch(n int, raw bool) *operators.Batch {
	b := &operators.Batch{Records: make([]operators.Record, n)}
	for i := range b.Records {
		line := benchLine(i)
		var v any = line
		if !raw {
			var m map[string]any
			if err := json.Unmarshal(line, &m); err != nil {
				panic(err)
			}
			v = m
		}
		b.Records[i] = operators.Record{Value: v, Origin: fmt.Sprintf("shard-0/%d", i)}
	}
	return b
}

type discard struct{ n int }

func (d *discard) Emit(operators.Record) { d.n++ }

func benchStages() []Stage {
	return []Stage{
		{Operator: "parse", Kind: Map, Src: `r => ({page: r.page, user: r.user, ms: r.latency_ms, ts: r.ts})`},
		{Operator: "humans", Kind: Filter, Src: `r => !r.user.startsWith("bot-")`},
		{Operator: "per-page", Kind: Key, Src: `r => r.page`},
	}
}

func runChainBench(b *testing.B, stages []Stage, raw bool) {
	runBatchBench(b, ChainSpec{Job: "bench", Stages: stages}, benchBatch(512, raw))
}

func runBatchBench(b *testing.B, spec ChainSpec, in *operators.Batch) *Chain {
	c := newChainSpec(b, spec)
	b.ReportAllocs()
	batch := len(in.Records)
	var out discard
	b.ResetTimer()
	cpu0 := cpuclock.Process()
	recs := 0
	for recs < b.N {
		if err := c.Process(context.Background(), in, &out); err != nil {
			b.Fatal(err)
		}
		recs += batch
	}
	b.ReportMetric(float64(cpuclock.Since(cpu0))/float64(recs), "cpu-ns/record")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(recs), "ns/record")
	b.ReportMetric(float64(recs)/b.Elapsed().Seconds(), "records/s")
	return c
}

// BenchmarkChain reports ns/record for each stage alone and the fused
// map → filter → key chain, over decoded (map[string]any) and raw JSON
// records. b.N counts records.
func BenchmarkChain(b *testing.B) {
	st := benchStages()
	b.Run("map", func(b *testing.B) { runChainBench(b, st[:1], false) })
	b.Run("filter", func(b *testing.B) {
		runChainBench(b, []Stage{{Operator: "f", Kind: Filter, Src: `r => !r.user.startsWith("bot-")`}}, false)
	})
	b.Run("key", func(b *testing.B) { runChainBench(b, []Stage{{Operator: "k", Kind: Key, Src: `r => r.page`}}, false) })
	b.Run("event_time", func(b *testing.B) {
		runChainBench(b, []Stage{{Operator: "t", Kind: EventTime, Src: `r => r.ts`}}, false)
	})
	b.Run("map+filter+key", func(b *testing.B) { runChainBench(b, st, false) })
	b.Run("map+filter+key/raw-json", func(b *testing.B) { runChainBench(b, st, true) })
}

// BenchmarkBenchJobChain is the chain of `runnel bench job` (map →
// filter → key) over its records, decoded (map[string]any, the decode not
// counted) and raw (json.RawMessage, as a RawJSON stream source hands
// them on).
func BenchmarkBenchJobChain(b *testing.B) {
	st := []Stage{
		{Operator: "parse", Kind: Map, Src: `r => ({page: r.page, ms: r.ms, status: r.status})`},
		{Operator: "ok", Kind: Filter, Src: `r => r.status === 200`},
		{Operator: "per-page", Kind: Key, Src: `r => r.page`},
	}
	line := func(i int) []byte {
		status := 200
		if i%10 == 0 {
			status = 500
		}
		return fmt.Appendf(nil, `{"page":"/p/%d","user":"u-%06d","ms":%d,"status":%d,"ts":%d,"pad":"xxxxxxxxxxxxxxxxxxxxxxx"}`,
			i%1000, i%100000, i%300, status, 1767225600000+int64(i/10))
	}
	for _, raw := range []bool{false, true} {
		name := "decoded"
		if raw {
			name = "raw"
		}
		for _, project := range []bool{false, true} {
			if project {
				name += "+project"
			}
			b.Run(name, func(b *testing.B) {
				in := &operators.Batch{Records: make([]operators.Record, 512)}
				for i := range in.Records {
					var v any = json.RawMessage(line(i))
					if !raw {
						var m map[string]any
						if err := json.Unmarshal(line(i), &m); err != nil {
							b.Fatal(err)
						}
						v = m
					}
					in.Records[i] = operators.Record{Value: v}
				}
				spec := ChainSpec{Job: "bench", Stages: st}
				if project {
					spec.Project = []string{"ms"}
				}
				runBatchBench(b, spec, in)
			})
		}
	}
}

// BenchmarkNativeSubset measures each part of the native evaluator's
// subset (operators/js/native) against goja on the same chain: native
// runs the chain in Go, goja with ChainSpec.Interpreted. A part whose
// native run is not clearly faster does not earn its place in the subset.
// Records are raw JSON, as a RawJSON stream source hands them on.
func BenchmarkNativeSubset(b *testing.B) {
	parts := []struct {
		name, functions string
		stages          []Stage
	}{
		{name: "fields", stages: []Stage{{Kind: Map, Src: `r => ({page: r.page, ms: r.latency_ms, ts: r.ts})`}}},
		{name: "compare", stages: []Stage{{Kind: Filter, Src: `r => r.ok === true && r.latency_ms >= 10 && r.ref != "ads"`}}},
		{name: "arithmetic", stages: []Stage{{Kind: Map, Src: `r => ({s: r.latency_ms / 1000, d: r.latency_ms * 2 + 1, m: r.latency_ms % 7, n: -r.latency_ms})`}}},
		{name: "logic", stages: []Stage{{Kind: Map, Src: `r => ({v: r.missing ?? (r.latency_ms > 100 ? "slow" : "fast"), t: typeof r.page, b: !r.ok || r.ref})`}}},
		{name: "spread", stages: []Stage{{Kind: Map, Src: `r => ({...r, slow: r.latency_ms > 100})`}}},
		{name: "template", stages: []Stage{{Kind: Key, Src: "r => `${r.page}:${r.latency_ms}`"}}},
		{name: "math", stages: []Stage{{Kind: Map, Src: `r => ({b: Math.floor(r.latency_ms / 100) * 100, m: Math.max(r.latency_ms, 10), s: Math.round(Math.sqrt(r.latency_ms))})`}}},
		{name: "strings", stages: []Stage{{Kind: Filter, Src: `r => !r.user.startsWith("bot-") && r.page.toUpperCase().length > 3`}}},
		{name: "convert", stages: []Stage{{Kind: Map, Src: `r => ({n: Number(r.ts), s: String(r.latency_ms)})`}}},
		{name: "functions", functions: `function bucket(ms) { return Math.floor(ms / 100) }`,
			stages: []Stage{{Kind: Map, Src: `r => ({b: bucket(r.latency_ms)})`}}},
		{name: "block", stages: []Stage{{Kind: Map, Src: `r => { const ms = r.latency_ms; if (ms < 0) return null; const s = ms > 100 ? "slow" : "fast"; { const b = ms / 100; if (b > 2) return {ms, s, b} } return {ms, s} }`}}},
		{name: "event_time", stages: []Stage{{Kind: EventTime, Src: `r => r.ts`}}},
	}
	in := benchBatch(512, true)
	for _, p := range parts {
		for i := range p.stages {
			p.stages[i].Operator = fmt.Sprintf("op%d", i)
		}
		for _, interpreted := range []bool{false, true} {
			mode := "native"
			if interpreted {
				mode = "goja"
			}
			b.Run(p.name+"/"+mode, func(b *testing.B) {
				spec := ChainSpec{Job: "bench", Functions: p.functions, Stages: p.stages, Interpreted: interpreted}
				c := runBatchBench(b, spec, in)
				if nb, _ := c.Batches(); !interpreted && nb == 0 {
					b.Fatalf("%s did not run natively", p.name)
				}
			})
		}
	}
}
