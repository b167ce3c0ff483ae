package anomaly

import (
	"math"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
)

// BenchmarkScore measures points scored per second, per method, on one
// core, for a noisy daily-seasonal series with occasional spikes.
func BenchmarkScore(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	series := make([]float64, 20000)
	for i := range series {
		series[i] = 50 + 20*math.Sin(2*math.Pi*float64(i)/288) + rng.NormFloat64()
		if i%997 == 0 {
			series[i] += 40
		}
	}
	t0 := time.Unix(0, 0)
	for _, m := range ConcreteMethods {
		b.Run(m, func(b *testing.B) {
			d, err := New(Config{Method: m, Seed: 1})
			if err != nil {
				b.Fatal(err)
			}
			// Fill the models' windows first so the steady state is timed.
			for i := range 3000 {
				d.Score(t0, series[i:i+1])
			}
			cpu0 := cpuclock.Process()
			n := 0
			for b.Loop() {
				j := 3000 + n%(len(series)-3000)
				d.Score(t0, series[j:j+1])
				n++
			}
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "points/s")
			// On a shared machine wall time understates a core's rate; the
			// process's CPU time (this loop plus the GC) gives points per
			// CPU-second.
			if cpu := cpuclock.Since(cpu0); cpu > 0 {
				b.ReportMetric(float64(n)/cpu.Seconds(), "points/cpu-s")
			}
		})
	}
}

// BenchmarkMemoryPerKey reports the heap a detector holds once its windows
// are full (3000 points of the benchmark series), per method: the memory
// one key of a detect operator costs.
func BenchmarkMemoryPerKey(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	series := make([]float64, 3000)
	for i := range series {
		series[i] = 50 + 20*math.Sin(2*math.Pi*float64(i)/288) + rng.NormFloat64()
	}
	for _, m := range []string{MethodEnsemble, MethodNovelty, MethodKNN, MethodARTime} {
		b.Run(m, func(b *testing.B) {
			const keys = 50
			for b.Loop() {
				runtime.GC()
				var before, after runtime.MemStats
				runtime.ReadMemStats(&before)
				ds := make([]Detector, keys)
				for k := range ds {
					ds[k], _ = New(Config{Method: m})
					for i := range series {
						ds[k].Score(time.Time{}, series[i:i+1])
					}
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/keys, "bytes/key")
				runtime.KeepAlive(ds)
			}
		})
	}
}
