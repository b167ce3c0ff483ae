package jobs

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
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
