package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	goruntime "runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
)

// testRecords makes n records per shard over keys, event times spread over
// [0, span) with some disorder.
func testShards(shards, n, keys int, span int64, seed uint64) []sources.MemoryShard {
	rng := rand.New(rand.NewPCG(seed, 7))
	out := make([]sources.MemoryShard, shards)
	for s := range out {
		out[s].ID = "s" + strconv.Itoa(s)
		for i := 0; i < n; i++ {
			ts := int64(i)*span/int64(n) + rng.Int64N(50)
			out[s].Values = append(out[s].Values, map[string]any{
				"k": "key-" + strconv.Itoa(rng.IntN(keys)), "v": float64(rng.IntN(10)), "ts": float64(ts),
			})
		}
	}
	return out
}

// expectWindows computes the windowed count/sum of records that pass keep.
func expectWindows(shards []sources.MemoryShard, size int64, keep func(map[string]any) bool) []string {
	type k struct {
		start int64
		key   string
	}
	accs := map[k]*acc{}
	for _, s := range shards {
		for _, v := range s.Values {
			m := v.(map[string]any)
			if !keep(m) {
				continue
			}
			ts := int64(m["ts"].(float64))
			kk := k{floorDiv(ts, size) * size, m["k"].(string)}
			if accs[kk] == nil {
				accs[kk] = &acc{}
			}
			accs[kk].count++
			accs[kk].sum += m["v"].(float64)
		}
	}
	var rows []sinks.Row
	for kk, a := range accs {
		rows = append(rows, sinks.Row{Value: map[string]any{"window_start": kk.start, "key": kk.key, "count": a.count, "sum": a.sum}})
	}
	return windowRows(rows)
}

func keepEven(m map[string]any) bool { return int(m["v"].(float64))%2 == 0 }

// windowGraph is source → map → filter → keyed tumbling window → sink.
func windowGraph(src sources.Source, sink sinks.Sink, size int64) *Graph {
	return &Graph{
		Name:    "test",
		Sources: []SourceNode{{ID: "src", Source: src, EventTime: FieldEventTime("ts"), Watermark: 100 * time.Millisecond, IdleTimeout: -1}},
		Nodes: []Node{
			{ID: "parse", Inputs: []string{"src"}, New: newMap(func(r operators.Record) (operators.Record, bool) {
				m := r.Value.(map[string]any)
				r.Value = map[string]any{"k": m["k"], "v": m["v"]}
				return r, true
			})},
			{ID: "even", Inputs: []string{"parse"}, New: newMap(func(r operators.Record) (operators.Record, bool) {
				return r, keepEven(r.Value.(map[string]any))
			})},
			{ID: "win", Inputs: []string{"even"}, New: newTumbling(size, "v"), Key: FieldKey("k")},
		},
		Sinks: []SinkNode{{ID: "out", Inputs: []string{"win"}, Sink: sink}},
	}
}

func TestBoundedJobRunsToCompletionWithOneResultPerKeyAndWindow(t *testing.T) {
	for _, tc := range []struct{ shards, par, batch int }{{1, 1, 512}, {4, 2, 64}, {3, 3, 7}} {
		t.Run(fmt.Sprintf("shards=%d,par=%d,batch=%d", tc.shards, tc.par, tc.batch), func(t *testing.T) {
			base := goruntime.NumGoroutine()
			shards := testShards(tc.shards, 2000, 17, 10_000, uint64(tc.shards))
			sink := &collect{}
			st, err := Run(context.Background(), windowGraph(sources.NewMemory(sources.FormatJSON, shards...), sink, 1000),
				Options{Parallelism: tc.par, BatchSize: tc.batch})
			if err != nil {
				t.Fatal(err)
			}
			if st.State != Finished || st.Watermark != EndOfTime {
				t.Fatalf("state %s watermark %d, want finished at EndOfTime", st.State, st.Watermark)
			}
			got, want := windowRows(sink.snapshot()), expectWindows(shards, 1000, keepEven)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got %d rows, want %d\n got %v\nwant %v", len(got), len(want), head(got), head(want))
			}
			if !sink.closed {
				t.Error("sink not closed")
			}
			ops := opsByID(st)
			if ops["src"].Out != int64(tc.shards*2000) || ops["parse"].In != int64(tc.shards*2000) || ops["out"].In != int64(len(want)) {
				t.Errorf("counters %+v", st.Operators)
			}
			for _, sh := range st.Shards {
				if sh.State != ShardEnded || sh.Position != "1999" {
					t.Errorf("shard %+v, want ended at position 1999", sh)
				}
			}
			testutil.WaitGoroutines(t, base)
		})
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

func opsByID(st Status) map[string]OperatorStatus {
	m := map[string]OperatorStatus{}
	for _, o := range st.Operators {
		m[o.ID] = o
	}
	return m
}

func TestFanOutAndUnion(t *testing.T) {
	shards := testShards(2, 500, 5, 1000, 1)
	all, evens := &collect{}, &collect{}
	tag := func(name string) func() (operators.Operator, error) {
		return newMap(func(r operators.Record) (operators.Record, bool) {
			m := r.Value.(map[string]any)
			r.Value = map[string]any{"via": name, "v": m["v"]}
			return r, true
		})
	}
	g := &Graph{
		Sources: []SourceNode{{ID: "src", Source: sources.NewMemory(sources.FormatJSON, shards...)}},
		Nodes: []Node{
			{ID: "a", Inputs: []string{"src"}, New: tag("a")},
			{ID: "b", Inputs: []string{"src"}, New: newMap(func(r operators.Record) (operators.Record, bool) {
				return r, keepEven(r.Value.(map[string]any))
			})},
			{ID: "b2", Inputs: []string{"b"}, New: tag("b")},
			{ID: "u", Inputs: []string{"a", "b2"}, New: passThrough()},
		},
		Sinks: []SinkNode{
			{ID: "all", Inputs: []string{"u"}, Sink: all},
			{ID: "evens", Inputs: []string{"b"}, Sink: evens},
		},
	}
	if _, err := Run(context.Background(), g, Options{}); err != nil {
		t.Fatal(err)
	}
	nEven := 0
	for _, s := range shards {
		for _, v := range s.Values {
			if keepEven(v.(map[string]any)) {
				nEven++
			}
		}
	}
	via := map[string]int{}
	for _, r := range all.snapshot() {
		via[r.Value.(map[string]any)["via"].(string)]++
	}
	if via["a"] != 1000 || via["b"] != nEven || len(evens.snapshot()) != nEven {
		t.Fatalf("union got %v and the fan-out sink %d rows; want a=1000 b=%d and %d", via, len(evens.snapshot()), nEven, nEven)
	}
}

func TestChildShardsReadAfterParentsKeepPerKeyOrder(t *testing.T) {
	seq := func(from, to int) []any {
		var out []any
		for i := from; i < to; i++ {
			out = append(out, map[string]any{"k": "a", "n": float64(i)})
		}
		return out
	}
	src := sources.NewMemory(sources.FormatJSON,
		sources.MemoryShard{ID: "c", Parents: []string{"p1", "p2"}, Values: seq(2000, 3000)},
		sources.MemoryShard{ID: "p1", Values: seq(0, 1000)},
		sources.MemoryShard{ID: "p2", Parents: []string{"p1"}, Values: seq(1000, 2000)},
	)
	sink := &collect{}
	g := &Graph{
		Sources: []SourceNode{{ID: "src", Source: src}},
		Nodes:   []Node{{ID: "k", Inputs: []string{"src"}, New: passThrough(), Key: FieldKey("k")}},
		Sinks:   []SinkNode{{ID: "out", Inputs: []string{"k"}, Sink: sink}},
	}
	if _, err := Run(context.Background(), g, Options{Parallelism: 2, BatchSize: 10}); err != nil {
		t.Fatal(err)
	}
	rows := sink.snapshot()
	if len(rows) != 3000 {
		t.Fatalf("%d rows, want 3000", len(rows))
	}
	for i, r := range rows {
		if n := r.Value.(map[string]any)["n"].(float64); n != float64(i) {
			t.Fatalf("row %d is record %v: a child shard was read before its parent ended", i, n)
		}
	}
}

func TestGraphValidation(t *testing.T) {
	src := sources.NewMemory(sources.FormatJSON)
	op := passThrough()
	cases := map[string]*Graph{
		"no source":                   {Nodes: []Node{{ID: "a", Inputs: []string{"x"}, New: op}}},
		"used by a source and a node": {Sources: []SourceNode{{ID: "a", Source: src}}, Nodes: []Node{{ID: "a", Inputs: []string{"a"}, New: op}}},
		"does not exist": {Sources: []SourceNode{{ID: "s", Source: src}},
			Sinks: []SinkNode{{ID: "o", Inputs: []string{"nope"}, Sink: &collect{}}}},
		"cycle": {Sources: []SourceNode{{ID: "s", Source: src}}, Nodes: []Node{
			{ID: "a", Inputs: []string{"s", "b"}, New: op}, {ID: "b", Inputs: []string{"a"}, New: op}}},
		"no input": {Sources: []SourceNode{{ID: "s", Source: src}}, Nodes: []Node{{ID: "a", New: op}}},
		"partitioned differently": {Sources: []SourceNode{{ID: "s", Source: src}}, Nodes: []Node{
			{ID: "w", Inputs: []string{"s"}, New: op, Key: FieldKey("k")},
			{ID: "u", Inputs: []string{"s", "w"}, New: op}}},
		"is a sink": {Sources: []SourceNode{{ID: "s", Source: src}}, Nodes: []Node{{ID: "a", Inputs: []string{"o"}, New: op}},
			Sinks: []SinkNode{{ID: "o", Inputs: []string{"s"}, Sink: &collect{}}}},
	}
	for want, g := range cases {
		err := g.Validate()
		if !errors.Is(err, ErrGraph) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v", want, err)
		}
	}
}
