package anomaly

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
)

// ErrBadState is wrapped by Restore errors about the data itself.
var ErrBadState = errors.New("anomaly: bad detector state")

// MarshalBinary serialises everything the detector has learned (models,
// calibration, suppression and the random generator), so that Restore
// continues exactly where it stopped.
func (d *detector) MarshalBinary() ([]byte, error) {
	pcg, err := d.st.pcg.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("anomaly: marshal random state: %w", err)
	}
	d.st.PCG = pcg
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(d.st); err != nil {
		return nil, fmt.Errorf("anomaly: marshal detector: %w", err)
	}
	return buf.Bytes(), nil
}

// Restore brings back a detector from MarshalBinary's output. cfg must be
// the Config the detector was made with (method and fields are checked;
// the threshold may differ).
func Restore(cfg Config, data []byte) (Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	st := new(state)
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(st); err != nil {
		return nil, fmt.Errorf("%w: decode: %v", ErrBadState, err)
	}
	switch {
	case st.Version != stateVersion:
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadState, st.Version, stateVersion)
	case st.Method != c.Method:
		return nil, fmt.Errorf("%w: saved by method %q, config says %q", ErrBadState, st.Method, c.Method)
	case st.Fields != len(c.Fields):
		return nil, fmt.Errorf("%w: saved with %d fields, config has %d", ErrBadState, st.Fields, len(c.Fields))
	}
	if !finite(st.Last) || !finite(st.Lo) || !finite(st.Hi) || !finite(st.Window) || !finite(st.Shingle) {
		return nil, fmt.Errorf("%w: non-finite value", ErrBadState)
	}
	if st.Method == MethodEnsemble && st.Level == nil {
		// Saved before the ensemble kept a per-series level: it starts
		// learning one now.
		st.Level = newLevel(levelHistory)
	}
	if err := st.check(c); err != nil {
		return nil, err
	}
	st.pcg = new(rand.PCG)
	if err := st.pcg.UnmarshalBinary(st.PCG); err != nil {
		return nil, fmt.Errorf("%w: random state: %v", ErrBadState, err)
	}
	return &detector{cfg: c, st: st, rng: rand.New(st.pcg)}, nil
}

// check rejects decoded state whose shapes would make Score panic.
func (st *state) check(c Config) error {
	bad := func(what string) error { return fmt.Errorf("%w: %s", ErrBadState, what) }
	nf := st.Fields
	dim := nf * c.ShingleSize
	if len(st.Last) != nf || len(st.Lo) != nf || len(st.Hi) != nf || len(st.Shingle) != dim ||
		len(st.Window) != dim*c.Segment ||
		st.Base == nil || st.Sup == nil {
		return bad("shape does not match the config")
	}
	if st.Base.Fields != nf || st.Base.Size <= 0 || len(st.Base.Buf) != nf*st.Base.Size || st.Base.Count < 0 ||
		st.Seen < 0 || st.Sup.Count < 0 {
		return bad("baseline shape")
	}
	if len(st.Base.Values) != nf || len(st.Base.Diffs) != nf || !finite(st.Base.Buf) || !finite(st.Sup.Peak) {
		return bad("baseline shape")
	}
	for f := range nf {
		n := int(min(st.Base.Count, int64(st.Base.Size)))
		if len(st.Base.Values[f]) != n || len(st.Base.Diffs[f]) != max(n-1, 0) ||
			!finite(st.Base.Values[f]) || !finite(st.Base.Diffs[f]) ||
			!slices.IsSorted(st.Base.Values[f]) || !slices.IsSorted(st.Base.Diffs[f]) {
			return bad("baseline shape")
		}
	}
	u := models(st.Method)
	if u.novelty && (st.Novelty == nil || st.Novelty.Dim != nf || !st.Novelty.ok()) {
		return bad("novelty shape")
	}
	if u.knn {
		if st.KNN == nil || st.KNN.Dim != dim || !st.KNN.ok() {
			return bad("knn shape")
		}
		if !st.KCal.ok() {
			return bad("calibrator shape")
		}
	}
	if u.rcf {
		f := st.Forest
		if f == nil || f.Dim != dim || f.Size <= 0 || len(f.Trees) == 0 {
			return bad("forest shape")
		}
		if f.Count < 0 {
			return bad("forest count")
		}
		for _, t := range f.Trees {
			if err := t.check(f.Dim, f.Size, int(min(f.Count, int64(f.Size)))); err != nil {
				return err
			}
		}
		if !st.Cal.ok() {
			return bad("calibrator shape")
		}
	}
	if u.artime && !artOK(st.ART, nf) {
		return bad("artime shape")
	}
	if len(st.Sup.At) != len(st.Sup.Peak) {
		return bad("suppressor shape")
	}
	if (st.Method == MethodEnsemble) != (st.Level != nil) || (st.Level != nil && !st.Level.ok()) {
		return bad("level shape")
	}
	return nil
}

func (k *knn) ok() bool {
	if k.K <= 0 || k.Skip < 0 || k.Size <= k.Skip || len(k.Buf) != k.Size*k.Dim || k.Count < 0 ||
		k.Nearest < 0 || k.Nearest >= k.Size || len(k.Sums) != k.Size || !finite(k.Sums) ||
		!finite(k.Buf) || !finite(k.Sorted) {
		return false
	}
	if k.Dim == 1 && k.K == 1 {
		return len(k.Sorted) == max(0, int(min(k.Count, int64(k.Size)))-k.Skip) && slices.IsSorted(k.Sorted)
	}
	return true
}

func (c *calibrator) ok() bool {
	return c != nil && c.Size > 0 && len(c.Hist) == c.Size && c.Count >= 0 && finite(c.Hist) &&
		!math.IsNaN(c.Sum) && !math.IsInf(c.Sum, 0) && !math.IsNaN(c.SumSq) && !math.IsInf(c.SumSq, 0)
}

// check verifies a decoded tree's arrays agree and its links stay in range.
func (t *rcTree) check(dim, size int, live int) error {
	n := len(t.Mass)
	if len(t.Left) != n || len(t.Right) != n || len(t.Parent) != n || len(t.CutDim) != n ||
		len(t.CutVal) != n || len(t.Min) != n*dim || len(t.Max) != n*dim || len(t.LeafOf) != size {
		return fmt.Errorf("%w: tree arrays differ in length", ErrBadState)
	}
	in := func(i int32) bool { return i >= -1 && int(i) < n }
	if !in(t.Root) {
		return fmt.Errorf("%w: tree root out of range", ErrBadState)
	}
	for i := range n {
		if !in(t.Left[i]) || !in(t.Right[i]) || !in(t.Parent[i]) || t.CutDim[i] < -1 || int(t.CutDim[i]) >= dim {
			return fmt.Errorf("%w: tree node %d out of range", ErrBadState, i)
		}
	}
	if !finite(t.Min) || !finite(t.Max) || !finite(t.CutVal) {
		return fmt.Errorf("%w: tree holds a non-finite number", ErrBadState)
	}
	if err := t.verify(dim, live); err != nil {
		return fmt.Errorf("%w: %v", ErrBadState, err)
	}
	for _, l := range t.LeafOf[:live] {
		if l < 0 || int(l) >= n || t.CutDim[l] >= 0 {
			return fmt.Errorf("%w: sample slot does not point at a leaf", ErrBadState)
		}
	}
	for _, f := range t.Free {
		if f < 0 || int(f) >= n {
			return fmt.Errorf("%w: free node out of range", ErrBadState)
		}
	}
	return nil
}

// verify checks a tree's structure: every node reachable from the root
// once, links that agree both ways, each branch's mass the sum of its
// children's and its box the union of theirs, and leaf masses that add up
// to the number of stored samples.
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
	seen := make([]bool, len(t.Mass))
	var walk func(n int32, depth int) (int32, error)
	walk = func(n int32, depth int) (int32, error) {
		if seen[n] || depth > len(t.Mass) {
			return 0, fmt.Errorf("node %d reached twice", n)
		}
		seen[n] = true
		if t.CutDim[n] < 0 {
			if t.Mass[n] <= 0 {
				return 0, fmt.Errorf("leaf %d has mass %d", n, t.Mass[n])
			}
			return t.Mass[n], nil
		}
		l, r := t.Left[n], t.Right[n]
		if l < 0 || r < 0 || t.Parent[l] != n || t.Parent[r] != n {
			return 0, fmt.Errorf("node %d: bad child links %d, %d", n, l, r)
		}
		ml, err := walk(l, depth+1)
		if err != nil {
			return 0, err
		}
		mr, err := walk(r, depth+1)
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
	m, err := walk(t.Root, 0)
	if err != nil {
		return err
	}
	if int(m) != samples {
		return fmt.Errorf("tree holds %d samples, want %d", m, samples)
	}
	return nil
}

func finite(xs []float64) bool {
	for _, x := range xs {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return false
		}
	}
	return true
}
