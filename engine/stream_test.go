package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/streams"
)

func putN(t *testing.T, store *streams.Store, name string, from, to int) {
	t.Helper()
	var recs []streams.PutRecord
	for i := from; i < to; i++ {
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprintf("k%d", i%7),
			Data: fmt.Appendf(nil, `{"k":"k%d","n":%d,"ts":%d}`, i%7, i, 1000*i)})
	}
	if _, err := store.Put(context.Background(), name, recs); err != nil {
		t.Fatal(err)
	}
}

// A job reading a stream keeps per-key order while the stream is split and
// merged under it, and its window results go to a stream sink.
func TestStreamJobFollowsReshardingLive(t *testing.T) {
	store, err := streams.Open(t.TempDir(), streams.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, s := range []struct {
		name   string
		shards int
	}{{"clicks", 2}, {"counts", 1}} {
		if _, err := store.CreateStream(s.name, s.shards, streams.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	src, _ := sources.NewStream(sources.StreamConfig{Store: store, Stream: "clicks"})
	out, _ := sinks.NewStream(sinks.StreamConfig{Store: store, Stream: "counts"})
	rows := &collect{}
	g := &Graph{
		Sources: []SourceNode{{ID: "clicks", Source: src, EventTime: FieldEventTime("ts"), IdleTimeout: -1}},
		Nodes: []Node{
			{ID: "by-key", Inputs: []string{"clicks"}, New: passThrough(), Key: FieldKey("k")},
			{ID: "win", Inputs: []string{"clicks"}, New: newTumbling(100_000, "n"), Key: FieldKey("k")},
		},
		Sinks: []SinkNode{
			{ID: "rows", Inputs: []string{"by-key"}, Sink: rows},
			{ID: "counts", Inputs: []string{"win"}, Sink: out},
		},
	}
	j, err := Start(context.Background(), g, Options{Parallelism: 2, BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	putN(t, store, "clicks", 0, 100)
	eventually(t, "first 100 records", func() bool { return len(rows.snapshot()) == 100 })
	if err := store.UpdateShardCount("clicks", 3); err != nil {
		t.Fatal(err)
	}
	putN(t, store, "clicks", 100, 200)
	if err := store.UpdateShardCount("clicks", 1); err != nil {
		t.Fatal(err)
	}
	putN(t, store, "clicks", 200, 300)
	eventually(t, "all 300 records", func() bool { return len(rows.snapshot()) == 300 })
	last := map[string]float64{}
	for _, r := range rows.snapshot() {
		m := r.Value.(map[string]any)
		k, n := m["k"].(string), m["n"].(float64)
		if prev, ok := last[k]; ok && n <= prev {
			t.Fatalf("key %s: record %v after %v — order lost across the reshard", k, n, prev)
		}
		last[k] = n
	}
	// Windows [0,100s) and [100s,200s) fired once the merged shard passed them.
	eventually(t, "window results in the stream", func() bool {
		res, err := store.Read("counts", streams.ShardID(0), 0, 100, 0)
		return err == nil && len(res.Records) == 14
	})
	st := j.Status()
	ended, reading := 0, 0
	for _, sh := range st.Shards {
		switch sh.State {
		case ShardEnded:
			ended++
		case ShardReading:
			reading++
		}
	}
	if reading != 1 || ended < 3 {
		t.Errorf("shards %+v: want the parents ended and one merged shard reading", st.Shards)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := j.Stop(ctx); err != nil {
		t.Fatal(err)
	}
}
