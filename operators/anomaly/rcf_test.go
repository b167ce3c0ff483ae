package anomaly

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// verify checks a tree's invariants: links agree both ways, each branch's
// mass is the sum of its children's and its box the union of theirs, and
// the leaf masses add up to the number of stored samples.
func (t *rcTree) verify(dim, samples int) error {
	if t.Root < 0 {
		if samples != 0 {
			return fmt.Errorf("empty tree holds %d samples", samples)
		}
		return nil
	}
	if t.Parent[t.Root] != -1 {
		return fmt.Errorf("root %d has parent %d", t.Root, t.Parent[t.Root])
	}
	var walk func(n int32) (int32, error)
	walk = func(n int32) (int32, error) {
		if t.CutDim[n] < 0 {
			return t.Mass[n], nil
		}
		l, r := t.Left[n], t.Right[n]
		if l < 0 || r < 0 || t.Parent[l] != n || t.Parent[r] != n {
			return 0, fmt.Errorf("node %d: bad child links %d, %d", n, l, r)
		}
		ml, err := walk(l)
		if err != nil {
			return 0, err
		}
		mr, err := walk(r)
		if err != nil {
			return 0, err
		}
		if t.Mass[n] != ml+mr {
			return 0, fmt.Errorf("node %d: mass %d, children %d+%d", n, t.Mass[n], ml, mr)
		}
		for d := range dim {
			lo := min(t.Min[int(l)*dim+d], t.Min[int(r)*dim+d])
			hi := max(t.Max[int(l)*dim+d], t.Max[int(r)*dim+d])
			if t.Min[int(n)*dim+d] != lo || t.Max[int(n)*dim+d] != hi {
				return 0, fmt.Errorf("node %d: box is not the union of its children's", n)
			}
		}
		return t.Mass[n], nil
	}
	m, err := walk(t.Root)
	if err != nil {
		return err
	}
	if int(m) != samples {
		return fmt.Errorf("tree holds %d samples, want %d", m, samples)
	}
	return nil
}

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
