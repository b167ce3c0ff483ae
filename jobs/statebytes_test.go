package jobs

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

// TestStateBytesReported: a running job's status and metrics history give
// each stateful operator's state size (a window's, here) and null for a
// stateless one.
func TestStateBytesReported(t *testing.T) {
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log, MetricsInterval: 100 * time.Millisecond})
	src := `name: sb
source: {stream: in, shards: 1, event_time: "r => r.ts"}
operators:
  - id: parse
    map: "r => ({page: r.page, ts: r.ts})"
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 1h
      aggregate:
        views: count
sinks:
  - {id: board, dashboard: {title: V}}
checkpoint: {every: 100ms}
`
	if _, err := m.Submit([]byte(src)); err != nil {
		t.Fatal(err)
	}
	var recs []streams.PutRecord
	for i := range 50 {
		recs = append(recs, streams.PutRecord{PartitionKey: "k", Data: []byte(fmt.Sprintf(`{"page":"/p/%d","ts":%d}`, i, 1700000000000+i))})
	}
	if _, err := st.Put(context.Background(), "in", recs); err != nil {
		t.Fatal(err)
	}
	var in Info
	testutil.Within(30*time.Second, func() bool {
		in, _ = m.Get("sb")
		for _, o := range in.Operators {
			if o.ID == "per-page" && o.StateBytes != nil && *o.StateBytes > 0 {
				return true
			}
		}
		return false
	})
	for _, o := range in.Operators {
		switch {
		case o.ID == "per-page" && (o.StateBytes == nil || *o.StateBytes <= 0):
			t.Fatalf("window operator's state_bytes %v", o.StateBytes)
		case o.ID == "parse" && o.StateBytes != nil:
			t.Fatalf("stateless map has state_bytes %d", *o.StateBytes)
		}
	}
	testutil.Eventually(t, 30*time.Second, func() bool {
		h, err := m.Metrics("sb", false)
		if err != nil || len(h.Points) == 0 {
			return false
		}
		sb := h.Points[len(h.Points)-1].Operators["per-page"].StateBytes
		return sb != nil && *sb > 0
	}, "the metrics history has no state_bytes for the window")
}

// TestStateBytesMeasuredAtMostEverySecond: reading a job's status often
// does not read its whole state each time: a measure is reused until
// stateSizesEvery (or stateSizesCost times what it took) has passed, and
// a new store (a new run) is measured at once.
func TestStateBytesMeasuredAtMostEverySecond(t *testing.T) {
	open := func() *state.DB {
		db, err := state.Open(t.TempDir(), state.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	set := func(db *state.DB, n int) {
		sp, _ := db.Namespace("win", "0")
		for k := range n {
			if err := sp.Set(fmt.Appendf(nil, "k%d", k), []byte("v")); err != nil {
				t.Fatal(err)
			}
		}
	}
	db := open()
	set(db, 1)
	j := &Job{ID: "sb"}
	j.mu.ckpt = newCkptState(db, nil)
	first := j.stateBytes()["win"]
	if first <= 0 {
		t.Fatalf("state of win measured as %d bytes", first)
	}
	set(db, 100)
	if got := j.stateBytes()["win"]; got != first {
		t.Fatalf("measured again at once: %d bytes, then %d", first, got)
	}
	j.sizes.next = time.Now() // as if stateSizesEvery had passed
	if got := j.stateBytes()["win"]; got <= first {
		t.Fatalf("not measured again after its interval: %d bytes, then %d", first, got)
	}
	other := open()
	set(other, 1)
	j.mu.ckpt = newCkptState(other, nil)
	if got := j.stateBytes()["win"]; got != first {
		t.Fatalf("a new run's store reported %d bytes, want its own %d", got, first)
	}
}
