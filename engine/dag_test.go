package engine

import (
	"context"
	"fmt"
	"reflect"
	"sort"
	"testing"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sources"
)

// Two sources feed one keyed window (a union across sources), and the
// window's results feed a second keyed window with another key: a second
// exchange, whose watermark comes from the first window's tasks.
func TestTwoSourcesAndChainedKeyedWindows(t *testing.T) {
	a := testShards(2, 1000, 9, 5000, 11)
	b := testShards(3, 700, 9, 5000, 12)
	for i := range b {
		b[i].ID = "b" + b[i].ID
	}
	perKey, perWindow := &collect{}, &collect{}
	all := func() (KeyFunc, error) {
		return func(ctx context.Context, recs []operators.Record) error {
			for i := range recs {
				recs[i].Key = "all"
			}
			return nil
		}, nil
	}
	g := &Graph{
		Sources: []SourceNode{
			{ID: "a", Source: sources.NewMemory(sources.FormatJSON, a...), EventTime: FieldEventTime("ts")},
			{ID: "b", Source: sources.NewMemory(sources.FormatJSON, b...), EventTime: FieldEventTime("ts")},
		},
		Nodes: []Node{
			{ID: "w1", Inputs: []string{"a", "b"}, New: newTumbling(1000, "v"), Key: FieldKey("k")},
			// counts the keys that had a result per window, summing their counts
			{ID: "w2", Inputs: []string{"w1"}, New: newTumbling(1000, "count"), Key: all},
		},
		Sinks: []SinkNode{
			{ID: "per-key", Inputs: []string{"w1"}, Sink: perKey},
			{ID: "per-window", Inputs: []string{"w2"}, Sink: perWindow},
		},
	}
	st, err := Run(context.Background(), g, Options{Parallelism: 3, BatchSize: 50})
	if err != nil || st.State != Finished {
		t.Fatalf("state %s: %v", st.State, err)
	}
	want := expectWindows(append(append([]sources.MemoryShard{}, a...), b...), 1000, func(map[string]any) bool { return true })
	if got := windowRows(perKey.snapshot()); !reflect.DeepEqual(got, want) {
		t.Fatalf("per-key windows differ: got %d rows, want %d", len(got), len(want))
	}
	keys, records := map[int64]int64{}, map[int64]float64{}
	for _, r := range perKey.snapshot() {
		m := r.Value.(map[string]any)
		keys[m["window_start"].(int64)]++
		records[m["window_start"].(int64)] += float64(m["count"].(int64))
	}
	var wantAll []string
	for start, n := range keys {
		wantAll = append(wantAll, fmt.Sprintf("%d all %d %g", start, n, records[start]))
	}
	if got := windowRows(perWindow.snapshot()); fmt.Sprint(got) != fmt.Sprint(sortStrings(wantAll)) {
		t.Fatalf("second-level windows:\n got %v\nwant %v", got, sortStrings(wantAll))
	}
}

func sortStrings(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// An operator with timers that is not keyed runs in the shard tasks and
// sees its own shard's watermark, ending at EndOfTime with the shard.
func TestUnkeyedTimersRunOnTheShardWatermark(t *testing.T) {
	data := testShards(1, 500, 3, 3000, 4)
	sink := &collect{}
	g := &Graph{
		Sources: []SourceNode{{ID: "src", Source: sources.NewMemory(sources.FormatJSON, data...), EventTime: FieldEventTime("ts"), Watermark: 100}},
		Nodes:   []Node{{ID: "w", Inputs: []string{"src"}, New: newTumbling(1000, "v")}},
		Sinks:   []SinkNode{{ID: "out", Inputs: []string{"w"}, Sink: sink}},
	}
	if _, err := Run(context.Background(), g, Options{BatchSize: 16}); err != nil {
		t.Fatal(err)
	}
	// Unkeyed: one result per window over all keys.
	var total int64
	for _, r := range sink.snapshot() {
		total += r.Value.(map[string]any)["count"].(int64)
	}
	windows := map[int64]bool{}
	for _, v := range data[0].Values {
		windows[int64(v.(map[string]any)["ts"].(float64))/1000] = true
	}
	if len(sink.snapshot()) != len(windows) || total != 500 {
		t.Fatalf("%d windows counting %d records, want %d windows and all 500", len(sink.snapshot()), total, len(windows))
	}
}
