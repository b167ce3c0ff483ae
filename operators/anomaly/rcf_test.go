package anomaly

import (
	"math/rand/v2"
	"testing"
)

// TestForestInvariants streams coarse (duplicate-heavy) and fine values
// through small forests and checks every tree after every update.
func TestForestInvariants(t *testing.T) {
	for _, levels := range []int{2, 5, 1000} {
		for _, dim := range []int{1, 3} {
			rng := rand.New(rand.NewPCG(uint64(levels), uint64(dim)))
			f := newForest(dim, 3, 16)
			p := make([]float64, dim)
			for i := range 500 {
				for d := range p {
					p[d] = float64(rng.IntN(levels))
				}
				if s := f.update(p, rng); s < 0 {
					t.Fatalf("codisp %v < 0", s)
				}
				for k, tr := range f.Trees {
					if err := tr.verify(dim, min(i+1, 16)); err != nil {
						t.Fatalf("levels %d dim %d step %d tree %d: %v", levels, dim, i, k, err)
					}
				}
			}
		}
	}
}

// TestForestHugeValues checks that spans too wide for float64 (the
// difference of ±1e308 overflows) neither hang nor corrupt the trees.
func TestForestHugeValues(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	f := newForest(2, 2, 8)
	for i := range 100 {
		p := []float64{1e308, -1e308}
		if i%2 == 0 {
			p = []float64{-1e308, 1e308}
		}
		p[0] -= float64(i % 3)
		f.update(p, rng)
		for k, tr := range f.Trees {
			if err := tr.verify(2, min(i+1, 8)); err != nil {
				t.Fatalf("step %d tree %d: %v", i, k, err)
			}
		}
	}
}
