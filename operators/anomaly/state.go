package anomaly

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
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
	if len(st.Base.Values) != nf || len(st.Base.Diffs) != nf {
		return bad("baseline shape")
	}
	for f := range nf {
		n := int(min(st.Base.Count, int64(st.Base.Size)))
		if len(st.Base.Values[f]) != n || len(st.Base.Diffs[f]) != max(n-1, 0) ||
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
			if err := t.check(f.Dim, f.Size); err != nil {
				return err
			}
		}
		if !st.Cal.ok() {
			return bad("calibrator shape")
		}
	}
	if len(st.Sup.At) != len(st.Sup.Peak) {
		return bad("suppressor shape")
	}
	return nil
}

func (k *knn) ok() bool {
	if k.K <= 0 || k.Skip < 0 || k.Size <= k.Skip || len(k.Buf) != k.Size*k.Dim || k.Count < 0 {
		return false
	}
	if k.Dim == 1 && k.K == 1 {
		return len(k.Sorted) == max(0, int(min(k.Count, int64(k.Size)))-k.Skip) && slices.IsSorted(k.Sorted)
	}
	return true
}

func (c *calibrator) ok() bool {
	return c != nil && c.Size > 0 && len(c.Hist) == c.Size && c.Count >= 0
}

// check verifies a decoded tree's arrays agree and its links stay in range.
func (t *rcTree) check(dim, size int) error {
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
	for _, l := range t.LeafOf {
		if l < 0 || int(l) >= n {
			if t.Root >= 0 && l != 0 {
				return fmt.Errorf("%w: sample slot out of range", ErrBadState)
			}
		}
	}
	for _, f := range t.Free {
		if f < 0 || int(f) >= n {
			return fmt.Errorf("%w: free node out of range", ErrBadState)
		}
	}
	return nil
}
