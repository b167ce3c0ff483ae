package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// The synthetic series are 3000 points of a seasonal (period 96) or plain
// signal with unit noise; anomalous ones change at onset.
const (
	synthLen   = 3000
	onset      = 2000
	detectBy   = 48  // an anomaly must be flagged within this many points of onset
	quietAfter = 300 // no flags allowed from here to onset (models are warm)
)

func seasonal(i int) float64 { return 10 * math.Sin(2*math.Pi*float64(i)/96) }

var synthetic = []struct {
	name      string
	anomalous bool
	gen       func(i int, rng *rand.Rand) float64
}{
	{"flat", false, func(i int, _ *rand.Rand) float64 { return 42 }},
	{"noise", false, func(i int, rng *rand.Rand) float64 { return 100 + rng.NormFloat64() }},
	{"seasonal", false, func(i int, rng *rand.Rand) float64 { return 100 + seasonal(i) + rng.NormFloat64() }},
	{"spike", true, func(i int, rng *rand.Rand) float64 {
		v := 100 + seasonal(i) + rng.NormFloat64()
		if i == onset {
			v += 25
		}
		return v
	}},
	{"level shift", true, func(i int, rng *rand.Rand) float64 {
		v := 100 + seasonal(i) + rng.NormFloat64()
		if i >= onset {
			v += 30
		}
		return v
	}},
	{"variance up", true, func(i int, rng *rand.Rand) float64 {
		sd := 1.0
		if i >= onset {
			sd = 6
		}
		return 100 + seasonal(i) + sd*rng.NormFloat64()
	}},
	{"broken seasonality", true, func(i int, rng *rand.Rand) float64 {
		if i >= onset && i < onset+96 {
			return 100 + rng.NormFloat64() // a missing cycle
		}
		return 100 + seasonal(i) + rng.NormFloat64()
	}},
	{"flat then step", true, func(i int, _ *rand.Rand) float64 {
		if i >= onset {
			return 43
		}
		return 42
	}},
}

// catches lists, per method, the synthetic anomalies it must flag; quiet
// lists the normal series on which it must not raise a single alarm (and a
// method quiet on "seasonal" must also be quiet before each anomaly's
// onset). The ensemble (the default) must do both for every series; the
// single models have known blind spots, documented in docs/anomaly.md.
var (
	catches = map[string][]string{
		MethodEnsemble: {"spike", "level shift", "variance up", "broken seasonality", "flat then step"},
		MethodNovelty:  {"spike", "level shift", "variance up", "flat then step"},
		MethodKNN:      {"level shift", "broken seasonality", "flat then step"},
		MethodRCF:      {"spike", "level shift", "variance up", "flat then step"},
		MethodARTime:   {"spike", "level shift", "variance up", "flat then step"},
	}
	quiet = map[string][]string{
		MethodEnsemble: {"flat", "noise", "seasonal"},
		MethodNovelty:  {"flat", "noise", "seasonal"},
		MethodKNN:      {"flat", "noise", "seasonal"},
		MethodRCF:      {"flat"},
		MethodARTime:   {"flat", "seasonal"},
	}
)

// TestSyntheticSeries runs every method over every synthetic series with
// three seeds and checks the catches and quiet tables.
func TestSyntheticSeries(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, m := range ConcreteMethods {
		for _, s := range synthetic {
			mustCatch, mustBeQuiet := slices.Contains(catches[m], s.name), slices.Contains(quiet[m], s.name)
			if !mustCatch && !mustBeQuiet {
				continue
			}
			t.Run(m+"/"+s.name, func(t *testing.T) {
				for seed := range uint64(3) {
					rng := rand.New(rand.NewPCG(seed, 7))
					d, err := New(Config{Method: m, Seed: int64(seed)})
					if err != nil {
						t.Fatal(err)
					}
					firstFlag, falseFlags := -1, 0
					for i := range synthLen {
						r := d.Score(t0.Add(time.Duration(i)*time.Minute), []float64{s.gen(i, rng)})
						if r.Score < 0 || r.Score > 1 || math.IsNaN(r.Score) {
							t.Fatalf("seed %d point %d: score %v outside [0, 1]", seed, i, r.Score)
						}
						if !r.IsAnomaly {
							continue
						}
						if i >= quietAfter && i < onset {
							falseFlags++
						}
						if i >= onset && firstFlag < 0 {
							firstFlag = i
						}
					}
					if falseFlags > 0 && slices.Contains(quiet[m], "seasonal") {
						t.Errorf("seed %d: %d false alarms between point %d and the onset", seed, falseFlags, quietAfter)
					}
					if mustCatch && (firstFlag < 0 || firstFlag > onset+detectBy) {
						t.Errorf("seed %d: anomaly at %d not flagged by %d (first flag %d)", seed, onset, onset+detectBy, firstFlag)
					}
					if mustBeQuiet && firstFlag >= 0 {
						t.Errorf("seed %d: normal series flagged at %d", seed, firstFlag)
					}
				}
			})
		}
	}
}

// TestExtremeValuesStayInRange feeds values near the float64 limits and
// non-finite values: scores must stay in [0, 1].
func TestExtremeValuesStayInRange(t *testing.T) {
	vals := []float64{1e308, -1e308, math.NaN(), math.Inf(1), 0, 5e-324, -1e308}
	for _, m := range ConcreteMethods {
		d, err := New(Config{Method: m, SampleSize: 16, Trees: 4})
		if err != nil {
			t.Fatal(err)
		}
		for i := range 400 {
			r := d.Score(time.Time{}, []float64{vals[i%len(vals)]})
			if !(r.Score >= 0 && r.Score <= 1) {
				t.Fatalf("%s point %d: score %v", m, i, r.Score)
			}
			if i%50 == 49 {
				// The state taken in the middle of extreme values must
				// restore: a checkpoint a job cannot reopen loses the job.
				b, err := d.MarshalBinary()
				if err != nil {
					t.Fatalf("%s point %d: marshal: %v", m, i, err)
				}
				if _, err := Restore(Config{Method: m, SampleSize: 16, Trees: 4}, b); err != nil {
					t.Fatalf("%s point %d: the state does not restore: %v", m, i, err)
				}
			}
		}
	}
}
