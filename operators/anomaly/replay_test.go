package anomaly

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// replaySeries is n points of seasonal noise with random spikes, a level
// shift after point 3000 and one missing value.
func replaySeries(n int, rng *rand.Rand) ([]time.Time, []float64) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ts, vals := make([]time.Time, n), make([]float64, n)
	for i := range n {
		ts[i] = t0.Add(time.Duration(i) * time.Minute)
		vals[i] = 100 + seasonal(i) + rng.NormFloat64()
		if rng.IntN(300) == 0 {
			vals[i] += 20 + 20*rng.Float64()
		}
		if i > 3000 {
			vals[i] += 15
		}
	}
	vals[777] = math.NaN()
	return ts, vals
}

// TestSettleReplaysScore checks that Severities then Settle give the
// scores Score gives, bit for bit, for settings that differ from the
// measured one only in suppression and the per-series level: the
// evaluation scores such settings this way instead of running the models
// again. The series is replaySeries from a fresh seed.
func TestSettleReplaysScore(t *testing.T) {
	n := 4000
	ts, vals := replaySeries(n, testutil.Rand(t, 1))
	d := DefaultTuning
	for _, base := range []Config{
		{Method: MethodEnsemble},
		{Method: MethodEnsemble, Tuning: Tuning{NoiseGate: d.NoiseGate / 2, WhiteZAlarm: d.WhiteZAlarm * 1.4}},
		{Method: MethodNovelty},
		{Method: MethodARTime},
	} {
		sev, err := Severities(base, ts, vals)
		if err != nil {
			t.Fatal(err)
		}
		for _, post := range []struct {
			suppress     int
			level, quant float64
		}{{0, 0, 0}, {100, d.Level * 2, 0.9}, {-1, d.Level / 2, 0.98}, {400, 0, 0.93}} {
			cfg := base
			cfg.Suppress = post.suppress
			cfg.Tuning.Level, cfg.Tuning.LevelQuantile = post.level, post.quant
			name := fmt.Sprintf("%s gate=%g suppress=%d level=%g quantile=%g", base.Method, base.Tuning.NoiseGate, post.suppress, post.level, post.quant)
			det, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float64, n)
			for i := range n {
				want[i] = det.Score(ts[i], vals[i:i+1]).Score
			}
			got, err := Settle(cfg, sev)
			if err != nil {
				t.Fatal(err)
			}
			if diff := testutil.Diff(want, got); diff != "" {
				t.Errorf("%s: Settle differs from Score:\n%s", name, diff)
			}
		}
	}
}
