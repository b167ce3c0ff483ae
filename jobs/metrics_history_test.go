package jobs

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestMetricsHistoryRates: each point's rates are the counters' growth
// over the interval, the history keeps the last MetricsPoints points, and
// the shard breakdown is there only when asked for.
func TestMetricsHistoryRates(t *testing.T) {
	spec, err := Parse([]byte(genJob))
	if err != nil {
		t.Fatal(err)
	}
	var l metricsLog
	start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	st := engine.Status{State: engine.Running, Started: start, Watermark: start.UnixMilli() - 2000}
	for i := 1; i <= MetricsPoints+3; i++ {
		n := int64(i) * 100
		st.Operators = []engine.OperatorStatus{{ID: SourceID, Kind: "source", Out: n}, {ID: "per-page", Kind: "operator", In: n, Out: n / 10}, {ID: "board", Kind: "sink", In: n / 10}}
		st.Shards = []engine.ShardStatus{{Source: SourceID, Shard: "0", State: engine.ShardReading, Records: n, Watermark: st.Watermark}}
		now := start.Add(time.Duration(i) * 5 * time.Second)
		var cps []CheckpointInfo
		if i == 2 {
			cps = []CheckpointInfo{{Epoch: 1, Time: now.Add(-time.Second), DurationMS: 12.5, Size: 4096, Status: "complete"}}
		}
		l.sample(spec, nil, st, cps, nil, now)
	}
	pts := l.read(false)
	if len(pts) != MetricsPoints {
		t.Fatalf("%d points kept, want %d", len(pts), MetricsPoints)
	}
	first, last := time.Time(pts[0].Time), time.Time(pts[len(pts)-1].Time)
	if !last.After(first) || last.Sub(first) != time.Duration(MetricsPoints-1)*5*time.Second {
		t.Fatalf("points from %v to %v: want the last %d, oldest first", first, last, MetricsPoints)
	}
	p := pts[len(pts)-1]
	if op := p.Operators["per-page"]; op.InPerS != 20 || op.OutPerS != 2 || op.StateBytes != nil {
		t.Fatalf("per-page %+v: want 20/s in, 2/s out", op)
	}
	if p.Shards != nil || p.WatermarkLagMs == nil || p.CheckpointMs != nil {
		t.Fatalf("last point %+v", p)
	}
	if in, out := l.rates(); in != 20 || out != 2 {
		t.Fatalf("job rates %v in %v out, want 20 and 2", in, out)
	}
	withShards := l.read(true)
	if sh := withShards[len(withShards)-1].Shards["0"]; sh.InPerS != 20 || sh.WatermarkLagMs == nil {
		t.Fatalf("shard 0: %+v", sh)
	}
	// The checkpoint of point 2 left the ring; write one point's JSON to
	// check the contract's shape.
	var l2 metricsLog
	now := start.Add(5 * time.Second)
	l2.sample(spec, nil, st, []CheckpointInfo{{Epoch: 1, Time: now, DurationMS: 12.5, Size: 4096, Status: "complete"}}, nil, now)
	b, _ := json.Marshal(l2.read(false)[0])
	for _, want := range []string{`"time":"2026-12-06T10:00:05.000Z"`, `"checkpoint_ms":12.5`, `"checkpoint_bytes":4096`, `"backpressure":0`, `"state_bytes":null`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("point %s: missing %s", b, want)
		}
	}
}

// TestMetricsHistoryOfARunningJob: the manager samples a running job, and
// its list row shows rates, uptime and parallelism.
func TestMetricsHistoryOfARunningJob(t *testing.T) {
	st, dir, log := managerStore(t)
	m := startManager(t, ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log, MetricsInterval: 50 * time.Millisecond})
	if _, err := m.Submit([]byte(genJob)); err != nil {
		t.Fatal(err)
	}
	var h MetricsHistory
	testutil.Within(30*time.Second, func() bool {
		h, _ = m.Metrics("gen", true)
		return len(h.Points) > 0 && h.Points[len(h.Points)-1].Operators[SourceID].OutPerS > 0
	})
	if h.IntervalMs != 50 || len(h.Points[len(h.Points)-1].Shards) != 1 {
		t.Fatalf("history %+v", h)
	}
	in := m.List()[0]
	if in.Parallelism != 1 || in.UptimeS <= 0 || in.InPerS <= 0 {
		t.Fatalf("list row: parallelism %d uptime %v in %v", in.Parallelism, in.UptimeS, in.InPerS)
	}
	if err := m.Stop("gen"); err != nil {
		t.Fatal(err)
	}
	if in := m.List()[0]; in.InPerS != 0 || in.UptimeS != 0 {
		t.Fatalf("a stopped job shows rates: %+v", in)
	}
}
