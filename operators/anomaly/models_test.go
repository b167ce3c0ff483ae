package anomaly

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestBaselineMatchesSorting checks the incremental baseline against
// statistics computed by sorting the window from scratch.
func TestBaselineMatchesSorting(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	b := newBaseline(1, 9)
	var window []float64
	for i := range 200 {
		v := float64(rng.IntN(6)) // many ties
		if i%3 == 0 {
			v = rng.NormFloat64()
		}
		b.add([]float64{v})
		window = append(window, v)
		if len(window) > 9 {
			window = window[1:]
		}
		s := slices.Sorted(slices.Values(window))
		med := median(s)
		dev := make([]float64, len(s))
		for k, x := range s {
			dev[k] = math.Abs(x - med)
		}
		slices.Sort(dev)
		var diffs []float64
		for k := 1; k < len(window); k++ {
			diffs = append(diffs, math.Abs(window[k]-window[k-1]))
		}
		slices.Sort(diffs)
		gotMed, gotScale := b.stats(0)
		if gotMed != med || math.Abs(gotScale-1.4826*median(dev)) > 1e-12 {
			t.Fatalf("step %d: stats %v, %v; want %v, %v", i, gotMed, gotScale, med, 1.4826*median(dev))
		}
		if len(diffs) >= 2 && math.Abs(b.noise(0)-median(diffs)/(0.6745*math.Sqrt2)) > 1e-12 {
			t.Fatalf("step %d: noise %v, want %v", i, b.noise(0), median(diffs)/(0.6745*math.Sqrt2))
		}
	}
}

// TestKNNSortedMatchesScan checks the sorted one-field path of knn against
// the general scan.
func TestKNNSortedMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(8, 9))
	fast, scan := newKNN(1, 1, 50, 1), newKNN(1, 1, 50, 1)
	for i := range 500 {
		v := math.Round(rng.NormFloat64()*4) / 2
		a := fast.update([]float64{v}, []float64{0.5})
		// Force the scan path by asking with two identical coordinates.
		scan.Dim, scan.K = 1, 1
		b := scan.scanUpdate([]float64{v}, []float64{0.5})
		if a != b {
			t.Fatalf("step %d: sorted %v, scan %v", i, a, b)
		}
	}
}
