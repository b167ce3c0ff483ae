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
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	r := NewWatermarks([]string{"a", "b", "c"})
	if err := r.Restore(b); err != nil {
		t.Fatal(err)
	}
	if got := r.Current(); got != 100 {
		// c is expected but was never heard from: it holds back the
		// minimum, yet the watermark does not go below the committed one
		// (a at 100; b idle, left out).
		t.Fatalf("restored watermark %d, want 100", got)
	}
	r.Update("c", 150)
	r.Update("a", 400)
	if got := r.Current(); got != 150 {
		t.Fatalf("after updates %d, want 150 (c holds it)", got)
	}
	r.Update("c", 500)
	if got := r.Current(); got != 400 {
		t.Fatalf("after c advanced %d, want 400 (b idle, left out)", got)
	}
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
	if got := w.Current(); got != 100 {
		t.Fatalf("b and c idle: %d, want 100 (a)", got)
	}
	w.Update("a", 1000)
	if got := w.Current(); got != 1000 {
		t.Fatalf("a alone active: %d, want 1000", got)
	}
	b, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}

	// Restored in a later generation: b's mark no longer counts.
	r := NewWatermarks([]string{"a", "b", "c"})
	if err := r.Restore(b); err != nil {
		t.Fatal(err)
	}
	if !r.Generation(5) {
		t.Fatal("generation 5 woke no producer; b's idle mark is of generation 4")
	}
	r.Update("a", 5000)
	if got := r.Current(); got != 1000 {
		t.Fatalf("after generation 5, a at 5000: %d, want 1000 (b holds at 200 but it never goes backwards; c finished)", got)
	}
	r.Idle("b", 5)
	if got := r.Current(); got != 5000 {
		t.Fatalf("b idle again in generation 5: %d, want 5000", got)
	}
	// A mark of a newer generation outdates the others at once, and a
	// mark of an older one read late does not count.
	r.Idle("a", 6)
	r.Update("a", 6000)
	if got := r.Current(); got != 5000 {
		t.Fatalf("generation 6 from a's mark: %d, want 5000 (b woken, holds at 200; never backwards)", got)
	}
	r.Idle("b", 5)
	r.Update("b", 5500)
	r.Idle("b", 5)
	if got := r.Current(); got != 5500 {
		t.Fatalf("b's late idle mark of generation 5: %d, want 5500 (b holds)", got)
	}
	r.Idle("b", 6)
	if got := r.Current(); got != 6000 {
		t.Fatalf("b idle in generation 6: %d, want 6000", got)
	}

	// Restored in the same generation: b stays idle.
	s := NewWatermarks([]string{"a", "b", "c"})
	if err := s.Restore(b); err != nil {
		t.Fatal(err)
	}
	if s.Generation(4) {
		t.Fatal("generation 4 woke a producer; every mark is of generation 4 or final")
	}
	s.Update("a", 3000)
	if got := s.Current(); got != 3000 {
		t.Fatalf("same generation: %d, want 3000 (b idle, c finished)", got)
	}

	// Marks saved without generations count as of generation 0.
	old := NewWatermarks([]string{"a", "b"})
	if err := old.Restore([]byte(`{"producers":{"a":{"wm":100},"b":{"wm":200,"idle":true}},"last":100}`)); err != nil {
		t.Fatal(err)
	}
	old.Generation(1)
	old.Update("a", 800)
	if got := old.Current(); got != 200 {
		t.Fatalf("old marks after generation 1: %d, want 200 (b holds)", got)
	}
}
