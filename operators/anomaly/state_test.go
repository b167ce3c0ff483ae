package anomaly

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// TestRestoreContinuesIdentically checkpoints a detector halfway through a
// series, restores it, and checks that the restored detector scores the
// rest of the series exactly as the original does, for every method and
// for two fields.
func TestRestoreContinuesIdentically(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	series := make([][2]float64, 1500)
	for i := range series {
		series[i] = [2]float64{100 + 10*math.Sin(float64(i)/15) + rng.NormFloat64(), float64(rng.IntN(5))}
		if i == 1200 {
			series[i][0] += 40
		}
	}
	t0 := time.Unix(1700000000, 0)
	for _, m := range ConcreteMethods {
		t.Run(m, func(t *testing.T) {
			cfg := Config{Method: m, Seed: 9, Fields: []string{"latency", "errors"}, SampleSize: 64, Trees: 10}
			orig, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			for i := range 700 {
				orig.Score(t0, series[i][:])
			}
			data, err := orig.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			restored, err := Restore(cfg, data)
			if err != nil {
				t.Fatal(err)
			}
			for i := 700; i < len(series); i++ {
				a, b := orig.Score(t0, series[i][:]), restored.Score(t0, series[i][:])
				if a.Score != b.Score || a.IsAnomaly != b.IsAnomaly || a.Explanation.Name != b.Explanation.Name ||
					a.Expected[0] != b.Expected[0] || a.Expected[1] != b.Expected[1] {
					t.Fatalf("point %d: original %+v, restored %+v", i, a, b)
				}
			}
		})
	}
}

func TestRestoreRejectsMismatchedConfig(t *testing.T) {
	d, err := New(Config{Method: MethodKNN})
	if err != nil {
		t.Fatal(err)
	}
	d.Score(time.Time{}, []float64{1})
	data, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, cfg := range []Config{
		{Method: MethodNovelty},
		{Method: MethodKNN, Fields: []string{"a", "b"}},
		{Method: MethodKNN, ShingleSize: 3},
	} {
		if _, err := Restore(cfg, data); !errors.Is(err, ErrBadState) {
			t.Errorf("Restore(%+v) error %v, want ErrBadState", cfg, err)
		}
	}
	if _, err := Restore(Config{Method: MethodKNN}, data[:len(data)/2]); !errors.Is(err, ErrBadState) {
		t.Errorf("Restore(truncated) error %v, want ErrBadState", err)
	}
	if _, err := Restore(Config{Method: MethodKNN, Threshold: 0.9}, data); err != nil {
		t.Errorf("Restore with another threshold: %v", err)
	}
}

// FuzzRestore feeds arbitrary bytes to Restore: it may fail, but must not
// panic, and a detector it returns must score without panicking.
func FuzzRestore(f *testing.F) {
	for _, m := range ConcreteMethods {
		d, _ := New(Config{Method: m, SampleSize: 8, Trees: 2, History: 20})
		for i := range 30 {
			d.Score(time.Time{}, []float64{float64(i % 7)})
		}
		data, _ := d.MarshalBinary()
		f.Add(m, data)
	}
	f.Fuzz(func(t *testing.T, method string, data []byte) {
		if !slices.Contains(Methods, method) {
			return
		}
		d, err := Restore(Config{Method: method, SampleSize: 8, Trees: 2, History: 20}, data)
		if err != nil {
			return
		}
		for i := range 40 {
			d.Score(time.Time{}, []float64{float64(i % 5)})
		}
	})
}
