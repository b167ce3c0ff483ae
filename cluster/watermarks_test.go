package cluster

import (
	"encoding/json"
	"testing"
)

func TestWatermarksMinimumOverProducers(t *testing.T) {
	type step struct {
		op       string // "wm" or "idle"
		producer string
		wm       int64
		want     int64
	}
	for _, tc := range []struct {
		name      string
		producers []string
		steps     []step
	}{
		{"a producer not heard from holds it back", []string{"a", "b"}, []step{
			{"wm", "a", 100, NoWatermark},
			{"wm", "a", 200, NoWatermark},
			{"wm", "b", 150, 150},
			{"wm", "b", 300, 200},
		}},
		{"it never goes backwards", []string{"a"}, []step{
			{"wm", "a", 100, 100},
			{"wm", "a", 50, 100},
		}},
		{"an idle producer is left out until it sends again", []string{"a", "b"}, []step{
			{"wm", "a", 100, NoWatermark},
			{"idle", "b", 0, 100},
			{"wm", "a", 500, 500},
			{"wm", "b", 300, 500},
			{"wm", "a", 900, 500},
			{"wm", "b", 700, 700},
		}},
		{"all idle: the largest of their watermarks", []string{"a", "b"}, []step{
			{"wm", "a", 100, NoWatermark},
			{"wm", "b", 400, 100},
			{"idle", "a", 0, 400},
			{"idle", "b", 0, 400},
		}},
		{"an unexpected producer joins the minimum", []string{"a"}, []step{
			{"wm", "a", 100, 100},
			{"wm", "c", 150, 100},
			{"wm", "a", 300, 150},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWatermarks(tc.producers)
			for i, s := range tc.steps {
				if s.op == "idle" {
					w.Idle(s.producer, 1)
				} else {
					w.Update(s.producer, s.wm)
				}
				if got := w.Current(); got != s.want {
					t.Fatalf("step %d (%s %s %d): watermark %d, want %d", i, s.op, s.producer, s.wm, got, s.want)
				}
			}
		})
	}
}

// A task restored from its changelog continues with the committed
// producers' marks: it neither fires early nor goes backwards.
func TestWatermarksRestore(t *testing.T) {
	w := NewWatermarks([]string{"a", "b"})
	w.Update("a", 100)
	w.Update("b", 200)
	w.Idle("b", 1)
	w.Current()
	r := restored(t, marshal(t, w), "a", "b", "c")
	// c is expected but was never heard from: it holds back the minimum,
	// yet the watermark does not go below the committed one (a at 100; b
	// idle, left out).
	wantMark(t, r, 100, "restored watermark")
	r.Update("c", 150)
	r.Update("a", 400)
	wantMark(t, r, 150, "after updates (c holds it)")
	r.Update("c", 500)
	wantMark(t, r, 400, "after c advanced (b idle, left out)")
}

// An idle mark counts only in the group generation it was written in: a
// rebalance or a restart of the job makes an idle producer hold the
// watermark back at its last watermark until its owner in the new
// generation announces it idle again or it sends a watermark. A finished
// producer's mark counts in every generation.
func TestWatermarksIdleMarksOfEarlierGenerations(t *testing.T) {
	w := NewWatermarks([]string{"a", "b", "c"})
	w.Update("a", 100)
	w.Update("b", 200)
	w.Update("c", 300)
	w.Idle("b", 4)
	w.Idle("c", FinalGeneration)
	wantMark(t, w, 100, "b and c idle (a)")
	w.Update("a", 1000)
	wantMark(t, w, 1000, "a alone active")
	b := marshal(t, w)

	// Restored in a later generation: b's mark no longer counts.
	r := restored(t, b, "a", "b", "c")
	if !r.Generation(5) {
		t.Fatal("generation 5 woke no producer; b's idle mark is of generation 4")
	}
	r.Update("a", 5000)
	wantMark(t, r, 1000, "after generation 5, a at 5000 (b holds at 200 but it never goes backwards; c finished)")
	r.Idle("b", 5)
	wantMark(t, r, 5000, "b idle again in generation 5")
	// A mark of a newer generation outdates the others at once, and a
	// mark of an older one read late does not count.
	r.Idle("a", 6)
	r.Update("a", 6000)
	wantMark(t, r, 5000, "generation 6 from a's mark (b woken, holds at 200; never backwards)")
	r.Idle("b", 5)
	r.Update("b", 5500)
	r.Idle("b", 5)
	wantMark(t, r, 5500, "b's late idle mark of generation 5 (b holds)")
	r.Idle("b", 6)
	wantMark(t, r, 6000, "b idle in generation 6")

	// Restored in the same generation: b stays idle.
	s := restored(t, b, "a", "b", "c")
	if s.Generation(4) {
		t.Fatal("generation 4 woke a producer; every mark is of generation 4 or final")
	}
	s.Update("a", 3000)
	wantMark(t, s, 3000, "same generation (b idle, c finished)")

	// Marks saved without generations count as of generation 0.
	old := restored(t, []byte(`{"producers":{"a":{"wm":100},"b":{"wm":200,"idle":true}},"last":100}`), "a", "b")
	old.Generation(1)
	old.Update("a", 800)
	wantMark(t, old, 200, "old marks after generation 1 (b holds)")
}

// wantMark fails the test unless w's watermark is want.
func wantMark(t *testing.T, w *Watermarks, want int64, what string) {
	t.Helper()
	if got := w.Current(); got != want {
		t.Fatalf("%s: watermark %d, want %d", what, got, want)
	}
}

func marshal(t *testing.T, w *Watermarks) []byte {
	t.Helper()
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// restored is a Watermarks expecting producers, restored from b.
func restored(t *testing.T, b []byte, producers ...string) *Watermarks {
	t.Helper()
	w := NewWatermarks(producers)
	if err := w.Restore(b); err != nil {
		t.Fatal(err)
	}
	return w
}
