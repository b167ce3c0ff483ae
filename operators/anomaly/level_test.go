package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestLevelRaisesTheBarOnlyForBusySeries checks the per-series alarm
// level against a quantile computed by sorting the window from scratch: a
// series whose recent severities often come near the alarm has a new
// severity divided by its 95th percentile over the reference, a quiet one
// keeps it unchanged, and no severity is ever raised.
func TestLevelRaisesTheBarOnlyForBusySeries(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const q, ref = 0.95, 0.3
	for _, busy := range []bool{false, true} {
		l := newLevel(200)
		var window []float64
		for i := range 1500 {
			sev := rng.Float64() * 0.1 // quiet: far below the reference
			if busy && i > 600 {
				sev = rng.Float64() * 1.5 // busy from point 600 on
			}
			got := l.apply(sev, q, ref)
			want := sev
			if len(window) >= levelWarmup {
				s := slices.Sorted(slices.Values(window))
				want = sev / max(1, s[int(q*float64(len(s)-1))]/ref)
			}
			if got != want {
				t.Fatalf("busy=%v point %d: %v, want %v", busy, i, got, want)
			}
			if got > sev {
				t.Fatalf("busy=%v point %d: severity raised from %v to %v", busy, i, sev, got)
			}
			if !busy && got != sev {
				t.Fatalf("quiet series, point %d: severity %v changed to %v", i, sev, got)
			}
			if busy && i > 900 && got > sev/3 {
				t.Fatalf("busy series, point %d: severity %v only divided to %v", i, sev, got)
			}
			window = append(window, sev)
			if len(window) > 200 {
				window = window[1:]
			}
		}
		if !l.ok() {
			t.Fatalf("busy=%v: level state fails its own check", busy)
		}
	}
}

// TestRestoreStateWithoutLevel restores an ensemble checkpoint written
// before the ensemble kept a per-series level: it restores, and scores on
// with a level that starts learning at the restore.
func TestRestoreStateWithoutLevel(t *testing.T) {
	d, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	t0 := time.Unix(1700000000, 0)
	for range 300 {
		d.Score(t0, []float64{rng.NormFloat64()})
	}
	st := d.(*detector).st
	kept := st.Level
	st.Level = nil // as a checkpoint of that time has it
	data, err := d.MarshalBinary()
	st.Level = kept
	if err != nil {
		t.Fatal(err)
	}
	r, err := Restore(Config{}, data)
	if err != nil {
		t.Fatalf("restore of a state without a level: %v", err)
	}
	if l := r.(*detector).st.Level; l == nil || l.Count != 0 {
		t.Fatalf("restored level %+v, want a fresh one", l)
	}
	for range 200 {
		if s := r.Score(t0, []float64{rng.NormFloat64()}).Score; math.IsNaN(s) || s < 0 || s > 1 {
			t.Fatalf("score %v after restore", s)
		}
	}
}
