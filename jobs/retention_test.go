package jobs

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

// TestRetentionInvalidatesCheckpoint: a checkpoint whose position stream
// retention has since deleted records after is reported with the shard,
// the position and the number of records skipped.
func TestRetentionInvalidatesCheckpoint(t *testing.T) {
	var mu sync.Mutex
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := streamstest.Open(t, streams.Options{Logger: log, Now: clock, SegmentAge: time.Hour, RetentionCheck: time.Hour}, "in", 1)
	var seqs []uint64
	seqTag, _ := st.SeqTag("in")
	for range 60 {
		res, err := st.Put(context.Background(), "in", []streams.PutRecord{{PartitionKey: "k", Data: []byte(`{"a":1}`)}})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, res[0].Seq)
		mu.Lock()
		now = now.Add(30 * time.Minute)
		mu.Unlock()
	}
	spec, err := Parse([]byte("name: r\nsource: {stream: in}\nsinks:\n  - {id: out, log: {}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	m := &Manager{store: st, log: log}
	j := &Job{ID: "r", Spec: spec}
	shard := streams.ShardID(0)
	snap := &engine.Snapshot{Epoch: 7, Positions: map[string]string{"source/" + shard: streams.FormatSeq(seqTag, 0, seqs[2])}}
	if w := m.retentionWarnings(j, snap); len(w) != 0 {
		t.Fatalf("nothing expired yet, but: %v", w)
	}
	mu.Lock()
	now = now.Add(10 * time.Hour) // the first 10 hours of records are older than 24 h
	mu.Unlock()
	st.EnforceRetention()
	w := m.retentionWarnings(j, snap)
	if len(w) != 1 || !strings.Contains(w[0], "checkpoint 7") || !strings.Contains(w[0], shard) || !strings.Contains(w[0], "records after it") {
		t.Fatalf("warnings %v", w)
	}
	t.Log(w[0])
	// A position at or after the trim horizon is fine.
	in, _ := st.DescribeStream("in")
	snap.Positions["source/"+shard] = streams.FormatSeq(seqTag, 0, in.Shards[0].TrimSeq-1)
	if w := m.retentionWarnings(j, snap); len(w) != 0 {
		t.Fatalf("a position right before the trim horizon: %v", w)
	}
}
