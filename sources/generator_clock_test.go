package sources

import (
	"context"
	"strconv"
	"testing"
	"time"
)

// TestGeneratorEventTimeFollowsClockAcrossRestart runs a paced generator
// on a simulated clock for 17 minutes, "restarts" it (a new Generator,
// the shard reopened after the last position read, as a job resuming from
// a checkpoint does) a minute later, and checks that event time stays
// within a second of the clock, before and after, while elapsed_ms goes on
// from where it was.
func TestGeneratorEventTimeFollowsClockAcrossRestart(t *testing.T) {
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	mk := func() *Generator {
		g, err := NewGenerator(GeneratorConfig{Shards: 2, Rate: 400, Keys: 12})
		if err != nil {
			t.Fatal(err)
		}
		g.now = func() time.Time { return clock }
		g.sleep = func(_ context.Context, d time.Duration) error { clock = clock.Add(d); return nil }
		return g
	}
	shard := Shard{ID: "shard-1"}
	read := func(r Reader, until time.Time) (last map[string]any, pos string) {
		buf := make([]Record, 256)
		for clock.Before(until) {
			n, err := r.Read(context.Background(), buf)
			if err != nil {
				t.Fatal(err)
			}
			for _, rec := range buf[:n] {
				m := rec.Value.(map[string]any)
				if lag := clock.UnixMilli() - int64(m["ts"].(float64)); lag < -1000 || lag > 1000 {
					t.Fatalf("at %v a record has event time %v: %d ms from the clock", clock, time.UnixMilli(int64(m["ts"].(float64))).UTC(), -lag)
				}
				last, pos = m, rec.Position
			}
		}
		return last, pos
	}
	r, err := mk().Open(context.Background(), shard, "")
	if err != nil {
		t.Fatal(err)
	}
	last, pos := read(r, clock.Add(17*time.Minute))
	elapsed := last["elapsed_ms"].(float64)
	if elapsed < 16*60*1000 {
		t.Fatalf("after 17 minutes elapsed_ms is %v", elapsed)
	}

	clock = clock.Add(time.Minute) // down for a minute
	r2, err := mk().Open(context.Background(), shard, pos)
	if err != nil {
		t.Fatal(err)
	}
	first, _ := read(r2, clock.Add(time.Second))
	if ts := int64(first["ts"].(float64)); ts < clock.Add(-2*time.Second).UnixMilli() {
		t.Errorf("after the restart event time %v lags the clock %v", time.UnixMilli(ts).UTC(), clock)
	}
	n, _ := strconv.ParseInt(pos, 10, 64)
	if e := first["elapsed_ms"].(float64); e <= elapsed || e > elapsed+2000 {
		t.Errorf("after the restart at position %d elapsed_ms is %v, want just past %v", n, e, elapsed)
	}
}
