package anomaly

import "math/rand/v2"

// forest is a robust random cut forest (Guha, Mishra, Roy, Schrijvers 2016)
// over a sliding window: every tree holds the last SampleSize shingles, and
// a new shingle's raw score is its collusive displacement (CoDisp) averaged
// over the trees. Trees differ only in their random cuts.
//
// Trees are stored as flat arrays indexed by node so that a forest
// serialises without pointers and scores without allocating.
type forest struct {
	Dim, Size int
	Trees     []*rcTree
	Count     int64 // shingles seen; the next slot is Count % Size
}

// rcTree is one random cut tree. A node is a leaf when CutDim is -1; a
// leaf's bounding box is its point. Leaves count duplicates in Mass.
type rcTree struct {
	Root                int32
	Left, Right, Parent []int32
	CutDim              []int32
	CutVal              []float64
	Mass                []int32
	Min, Max            []float64 // node*Dim ... node*Dim+Dim-1
	Free                []int32   // reusable node indices
	LeafOf              []int32   // per sample slot: the leaf holding it
}

func newForest(dim, trees, size int) *forest {
	f := &forest{Dim: dim, Size: size}
	for range trees {
		t := &rcTree{Root: -1, LeafOf: make([]int32, size)}
		f.Trees = append(f.Trees, t)
	}
	return f
}

// update drops the oldest shingle once the window is full, inserts p and
// returns p's CoDisp averaged over the trees.
func (f *forest) update(p []float64, rng *rand.Rand) float64 {
	slot := int(f.Count % int64(f.Size))
	full := f.Count >= int64(f.Size)
	f.Count++
	sum := 0.0
	for _, t := range f.Trees {
		if full {
			t.remove(slot, f.Dim)
		}
		leaf := t.insert(p, slot, f.Dim, rng)
		sum += t.codisp(leaf)
	}
	return sum / float64(len(f.Trees))
}

func (t *rcTree) alloc(dim int) int32 {
	if n := len(t.Free); n > 0 {
		id := t.Free[n-1]
		t.Free = t.Free[:n-1]
		return id
	}
	id := int32(len(t.Mass))
	t.Left = append(t.Left, -1)
	t.Right = append(t.Right, -1)
	t.Parent = append(t.Parent, -1)
	t.CutDim = append(t.CutDim, -1)
	t.CutVal = append(t.CutVal, 0)
	t.Mass = append(t.Mass, 0)
	for range dim {
		t.Min = append(t.Min, 0)
		t.Max = append(t.Max, 0)
	}
	return id
}

func (t *rcTree) newLeaf(p []float64, dim int) int32 {
	n := t.alloc(dim)
	t.Left[n], t.Right[n], t.Parent[n], t.CutDim[n], t.Mass[n] = -1, -1, -1, -1, 1
	copy(t.Min[int(n)*dim:int(n)*dim+dim], p)
	copy(t.Max[int(n)*dim:int(n)*dim+dim], p)
	return n
}

// insert adds p to the tree as sample slot and returns its leaf.
func (t *rcTree) insert(p []float64, slot, dim int, rng *rand.Rand) int32 {
	if t.Root < 0 {
		leaf := t.newLeaf(p, dim)
		t.Root = leaf
		t.LeafOf[slot] = leaf
		return leaf
	}
	node := t.Root
	for {
		lo, hi := t.Min[int(node)*dim:int(node)*dim+dim], t.Max[int(node)*dim:int(node)*dim+dim]
		total := 0.0
		for d := range dim {
			total += max(hi[d], p[d]) - min(lo[d], p[d])
		}
		if total == 0 && t.CutDim[node] < 0 { // p duplicates this leaf's point
			for a := node; a >= 0; a = t.Parent[a] {
				t.Mass[a]++
			}
			t.LeafOf[slot] = node
			return node
		}
		// Draw a cut over the box of the node's points and p. It either
		// separates p from them (p becomes a new leaf beside the node) or
		// falls inside their box (follow the node's own cut down). A draw
		// that rounding leaves ambiguous is redrawn.
		outcome, cutDim, cutVal := redraw, 0, 0.0
		for try := 0; outcome == redraw; try++ {
			if try == 64 {
				// Only spans that overflow (values near ±1e308) get here:
				// cut at the box edge in a dimension where p lies outside,
				// or follow the node's cut if p lies inside the box.
				outcome = fallbackCut(lo, hi, p, t.CutDim[node] >= 0, &cutDim, &cutVal)
				break
			}
			r := rng.Float64() * total
			for d := range dim {
				l := min(lo[d], p[d])
				span := max(hi[d], p[d]) - l
				if span > 0 && r < span {
					cutDim, cutVal = d, l+r
					break
				}
				r -= span
			}
			switch d := cutDim; {
			case p[d] < lo[d] && p[d] <= cutVal && cutVal < lo[d]:
				outcome = left
			case p[d] > hi[d] && hi[d] <= cutVal && cutVal < p[d]:
				outcome = right
			case lo[d] <= cutVal && cutVal < hi[d] && t.CutDim[node] >= 0:
				outcome = down
			}
		}
		if outcome == down {
			if p[t.CutDim[node]] <= t.CutVal[node] {
				node = t.Left[node]
			} else {
				node = t.Right[node]
			}
			continue
		}
		leftSide := outcome == left
		leaf := t.newLeaf(p, dim)
		b := t.alloc(dim)
		parent := t.Parent[node]
		t.Parent[b] = parent
		t.CutDim[b], t.CutVal[b] = int32(cutDim), cutVal
		if leftSide {
			t.Left[b], t.Right[b] = leaf, node
		} else {
			t.Left[b], t.Right[b] = node, leaf
		}
		t.Parent[leaf], t.Parent[node] = b, b
		t.Mass[b] = t.Mass[node] + 1
		bl, bh := t.Min[int(b)*dim:int(b)*dim+dim], t.Max[int(b)*dim:int(b)*dim+dim]
		for d := range dim {
			bl[d] = min(lo[d], p[d])
			bh[d] = max(hi[d], p[d])
		}
		if parent < 0 {
			t.Root = b
		} else if t.Left[parent] == node {
			t.Left[parent] = b
		} else {
			t.Right[parent] = b
		}
		grow := true // once a box already holds p, so do its ancestors'
		for a := parent; a >= 0; a = t.Parent[a] {
			t.Mass[a]++
			if !grow {
				continue
			}
			grow = false
			al, ah := t.Min[int(a)*dim:int(a)*dim+dim], t.Max[int(a)*dim:int(a)*dim+dim]
			for d := range dim {
				if p[d] < al[d] {
					al[d], grow = p[d], true
				}
				if p[d] > ah[d] {
					ah[d], grow = p[d], true
				}
			}
		}
		t.LeafOf[slot] = leaf
		return leaf
	}
}

// Outcomes of drawing a cut while inserting a point.
const (
	redraw = iota // rounding made the cut ambiguous: draw again
	left          // the cut separates p, which goes left of the node
	right         // the cut separates p, which goes right of the node
	down          // the cut falls inside the node's box: descend
)

// fallbackCut picks a valid cut without randomness.
func fallbackCut(lo, hi, p []float64, branch bool, cutDim *int, cutVal *float64) int {
	for d := range p {
		switch {
		case p[d] < lo[d]:
			*cutDim, *cutVal = d, p[d]
			return left
		case p[d] > hi[d]:
			*cutDim, *cutVal = d, hi[d]
			return right
		}
	}
	if branch {
		return down
	}
	return left // unreachable: p equals the leaf, handled as a duplicate
}

// remove deletes sample slot from the tree.
func (t *rcTree) remove(slot, dim int) {
	leaf := t.LeafOf[slot]
	if t.Mass[leaf] > 1 {
		for a := leaf; a >= 0; a = t.Parent[a] {
			t.Mass[a]--
		}
		return
	}
	parent := t.Parent[leaf]
	t.Free = append(t.Free, leaf)
	if parent < 0 {
		t.Root = -1
		return
	}
	sib := t.Left[parent]
	if sib == leaf {
		sib = t.Right[parent]
	}
	grand := t.Parent[parent]
	t.Parent[sib] = grand
	t.Free = append(t.Free, parent)
	if grand < 0 {
		t.Root = sib
		return
	}
	if t.Left[grand] == parent {
		t.Left[grand] = sib
	} else {
		t.Right[grand] = sib
	}
	shrink := true // once a box is unchanged, so are its ancestors'
	for a := grand; a >= 0; a = t.Parent[a] {
		t.Mass[a]--
		if !shrink {
			continue
		}
		shrink = false
		l, r := t.Left[a], t.Right[a]
		al, ah := t.Min[int(a)*dim:int(a)*dim+dim], t.Max[int(a)*dim:int(a)*dim+dim]
		ll, lh := t.Min[int(l)*dim:int(l)*dim+dim], t.Max[int(l)*dim:int(l)*dim+dim]
		rl, rh := t.Min[int(r)*dim:int(r)*dim+dim], t.Max[int(r)*dim:int(r)*dim+dim]
		for d := range dim {
			lo, hi := min(ll[d], rl[d]), max(lh[d], rh[d])
			if lo != al[d] || hi != ah[d] {
				al[d], ah[d], shrink = lo, hi, true
			}
		}
	}
}

// codisp is the collusive displacement of a leaf: the largest ratio, over
// its ancestors, of the sibling subtree's mass to the mass of the subtree
// holding the leaf.
func (t *rcTree) codisp(leaf int32) float64 {
	best := 0.0
	for n := leaf; t.Parent[n] >= 0; n = t.Parent[n] {
		par := t.Parent[n]
		sib := t.Left[par]
		if sib == n {
			sib = t.Right[par]
		}
		if d := float64(t.Mass[sib]) / float64(t.Mass[n]); d > best {
			best = d
		}
	}
	return best
}
