package anomaly

// artNet is a dual-vigilance fuzzy ART network: Cats categories of
// artComp weights each. The live network and the probation's vigilance
// search use it.
type artNet struct {
	W    []float64
	Used []int64 // per category: the sample it last resonated with
	Cats int
	Open bool // the first sample has been seen
	comp []float64
}

// match returns a category's resonance with the complement-coded x: the
// share of the category's weight x keeps (its fuzzy AND), cubed, times
// that share on the newest sample alone (the "energy"), squared; and the
// energy share.
func match(x, w []float64) (m, energy float64) {
	num, den := 0.0, 0.0
	for i, v := range w {
		num += min(x[i], v)
		den += v
	}
	if den == 0 {
		den = 0.001
	}
	fs := num / den
	e1, e2 := artDim-1, artComp-1
	en := min(x[e1], w[e1]) + min(x[e2], w[e2])
	ed := w[e1] + w[e2]
	es := 1.0
	if ed != 0 {
		es = en / ed
	}
	return fs * fs * fs * es * es, es
}

// train presents f to the network with vigilances lb ≤ ub. Categories
// resonating at ub or more learn f (fast commit); otherwise f becomes a new
// category, of a known cluster if the best resonance reaches lb (newCluster
// false) or of a new one. It returns the best resonance and its energy
// share. Without learn nothing is stored and newCluster is true.
func (n *artNet) train(f []float64, lb, ub float64, learn bool, now int64) (best, energy float64, newCluster bool) {
	if cap(n.comp) < artComp {
		n.comp = make([]float64, artComp)
	}
	x := n.comp[:artComp]
	for i, v := range f {
		x[i], x[artDim+i] = v, 1-v
	}
	if !n.Open {
		// The first sample only opens the network (ARTime skips it).
		n.Open = true
		return 0, 0, true
	}
	resonant := false
	for c := range n.Cats {
		w := n.W[c*artComp : (c+1)*artComp]
		m, e := match(x, w)
		if m > best {
			best, energy = m, e
		}
		if learn && m >= ub {
			for i := range w {
				w[i] = min(w[i], x[i])
			}
			n.Used[c] = now
			resonant = true
		}
	}
	if !learn {
		return best, energy, true
	}
	if resonant {
		return best, energy, false
	}
	n.add(x, now)
	return best, energy, best < lb
}

// add stores x as a new category, replacing the least recently used one
// when the network is full.
func (n *artNet) add(x []float64, now int64) {
	if n.Cats < artMaxCategories {
		n.W = append(n.W, x...)
		n.Used = append(n.Used, now)
		n.Cats++
		return
	}
	old := 0
	for c, u := range n.Used {
		if u < n.Used[old] {
			old = c
		}
	}
	copy(n.W[old*artComp:(old+1)*artComp], x)
	n.Used[old] = now
}
