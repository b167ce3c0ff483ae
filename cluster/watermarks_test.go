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
					w.Idle(s.producer)
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
	w.Idle("b")
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
