package anomaly

import (
	"math"
	"slices"
)

// knn scores a shingle by its root-mean-square distance to its nearest
// neighbours among the last Size shingles (the KNN-CAD idea of Burnaev and
// Ishimtsev 2016, without its fixed training split). The most recent
// shingles, which overlap the current one, are not candidates.
type knn struct {
	Dim, K, Size, Skip int
	Buf                []float64 // Size shingles, ring-indexed by Count % Size
	Count              int64
	Sorted             []float64 // one field, one neighbour: the candidates, sorted
	Nearest            int       // one neighbour: the slot of the last nearest shingle
	Sums               []float64 // per slot: the sum of the shingle's coordinates
	best               []float64 // scratch: the K smallest squared distances
}

func newKNN(dim, k, size, skip int) *knn {
	return &knn{Dim: dim, K: k, Size: size, Skip: skip, Buf: make([]float64, size*dim), Sums: make([]float64, size)}
}

// update returns the root-mean-square per-coordinate distance from p to
// its K nearest stored shingles, each coordinate scaled by inv, then
// stores p. It returns -1 while fewer than K candidates are stored.
func (m *knn) update(p, inv []float64) float64 {
	if m.Dim == 1 && m.K == 1 {
		return m.updateSorted(p[0], inv[0])
	}
	return m.scanUpdate(p, inv)
}

// scanUpdate is update by a scan over every candidate.
func (m *knn) scanUpdate(p, inv []float64) float64 {
	n := int(min(m.Count, int64(m.Size)))
	cands := n - m.Skip
	raw := -1.0
	if cands >= m.K {
		if cap(m.best) < m.K {
			m.best = make([]float64, 0, m.K)
		}
		best := m.best[:0]
		// With one field every coordinate has the same scale: compare raw
		// distances and scale once at the end.
		scale := 1.0
		if uniform(inv) {
			scale = inv[0] * inv[0]
			inv = nil
		}
		// Candidates are the stored shingles older than the Skip newest:
		// a ring segment of length cands from the oldest slot, which may
		// wrap once. Their order does not matter.
		start := int((m.Count - int64(n)) % int64(m.Size))
		first := min(cands, m.Size-start)
		if m.K == 1 {
			// The successor of the last nearest neighbour is often near
			// the current shingle too: its distance makes a tight first
			// bound, so most of the scan stops early. The result is the
			// same exact minimum.
			if next := (m.Nearest + 1) % m.Size; (next-start+m.Size)%m.Size < cands {
				q := m.Buf[next*m.Dim : next*m.Dim+m.Dim]
				best = append(best, distance(p, q, inv, math.Inf(1)))
				m.Nearest = next
			}
		}
		// With one scale, (Σp - Σq)²/Dim is a lower bound of the squared
		// distance (Cauchy-Schwarz): most candidates are dismissed by it
		// without touching their coordinates.
		sp := 0.0
		for _, v := range p {
			sp += v
		}
		invDim := 1 / float64(m.Dim)
		for _, seg := range [2][2]int{{start, start + first}, {0, cands - first}} {
			for slot := seg[0]; slot < seg[1]; slot++ {
				worst := math.Inf(1)
				if len(best) == m.K {
					worst = best[len(best)-1]
				}
				if inv == nil {
					if dl := sp - m.Sums[slot]; dl*dl*invDim > worst*(1+1e-9) {
						continue
					}
				}
				q := m.Buf[slot*m.Dim : slot*m.Dim+m.Dim]
				d := distance(p, q, inv, worst)
				if d >= worst {
					continue
				}
				if m.K == 1 {
					m.Nearest = slot
				}
				if len(best) < m.K {
					best = append(best, d)
				}
				i := len(best) - 1
				for i > 0 && best[i-1] > d {
					best[i] = best[i-1]
					i--
				}
				best[i] = d
			}
		}
		sum := 0.0
		for _, d := range best {
			sum += d
		}
		raw = math.Sqrt(sum * scale / float64(len(best)*m.Dim))
		m.best = best
	}
	slot := int(m.Count % int64(m.Size))
	copy(m.Buf[slot*m.Dim:slot*m.Dim+m.Dim], p)
	sum := 0.0
	for _, v := range p {
		sum += v
	}
	m.Sums[slot] = sum
	m.Count++
	return raw
}

// distance is the squared distance from p to q, coordinates scaled by inv
// (nil: unscaled). It stops early, with a partial sum >= limit, once the
// sum reaches limit: such a candidate cannot be a nearest neighbour.
func distance(p, q, inv []float64, limit float64) float64 {
	d := 0.0
	q = q[:len(p)]
	if inv == nil {
		i := 0
		for ; i+4 <= len(p); i += 4 {
			e0, e1, e2, e3 := p[i]-q[i], p[i+1]-q[i+1], p[i+2]-q[i+2], p[i+3]-q[i+3]
			d += e0*e0 + e1*e1 + e2*e2 + e3*e3
			if d >= limit {
				return d
			}
		}
		for ; i < len(p); i++ {
			e := p[i] - q[i]
			d += e * e
		}
		return d
	}
	inv = inv[:len(p)]
	for i, v := range p {
		e := (v - q[i]) * inv[i]
		d += e * e
		if d >= limit {
			return d
		}
	}
	return d
}

func uniform(inv []float64) bool {
	for _, v := range inv[1:] {
		if v != inv[0] {
			return false
		}
	}
	return true
}

// updateSorted is update for one field and one neighbour: the candidates
// are also kept sorted (Sorted), so the nearest is found by binary search
// instead of a scan.
func (m *knn) updateSorted(v, inv float64) float64 {
	raw := -1.0
	if len(m.Sorted) > 0 {
		i, _ := slices.BinarySearch(m.Sorted, v)
		best := math.Inf(1)
		if i < len(m.Sorted) {
			best = m.Sorted[i] - v
		}
		if i > 0 {
			best = min(best, v-m.Sorted[i-1])
		}
		raw = best * inv
	}
	slot := int(m.Count % int64(m.Size))
	if m.Count >= int64(m.Size) { // the oldest value leaves the candidates
		m.Sorted = removeSorted(m.Sorted, m.Buf[slot])
	}
	m.Buf[slot] = v
	m.Count++
	if m.Count > int64(m.Skip) { // the value Skip places back joins them
		joined := m.Buf[int((m.Count-1-int64(m.Skip))%int64(m.Size))]
		i, _ := slices.BinarySearch(m.Sorted, joined)
		m.Sorted = slices.Insert(m.Sorted, i, joined)
	}
	return raw
}

func removeSorted(s []float64, v float64) []float64 {
	if i, ok := slices.BinarySearch(s, v); ok {
		return slices.Delete(s, i, i+1)
	}
	return s
}

// baseline keeps the last Size values of each field and gives the robust
// expected value (median), scale (1.4826 × median absolute deviation) and
// noise (from the median absolute difference of successive values). It
// backs every method's expected range and explanation, and the novelty
// model's noise gate. Values and successive differences are also kept
// sorted per field, so each statistic costs a binary search and a short
// memmove rather than a sort.
type baseline struct {
	Fields, Size int
	Buf          []float64   // ring of points, Fields values each
	Count        int64       // points added
	Values       [][]float64 // per field: the stored values, sorted
	Diffs        [][]float64 // per field: |successive differences|, sorted
}

func newBaseline(fields, size int) *baseline {
	b := &baseline{Fields: fields, Size: size, Buf: make([]float64, fields*size)}
	b.Values = make([][]float64, fields)
	b.Diffs = make([][]float64, fields)
	return b
}

// stats returns field f's median and scale over the stored values.
func (b *baseline) stats(f int) (med, scale float64) {
	s := b.Values[f]
	if len(s) == 0 {
		return 0, 0
	}
	med = median(s)
	return med, 1.4826 * medianDeviation(s, med)
}

// noise returns field f's robust noise scale: the median absolute
// difference between successive stored values, scaled to a standard
// deviation (÷ 0.6745·√2).
func (b *baseline) noise(f int) float64 {
	if len(b.Diffs[f]) < 2 {
		return 0
	}
	return median(b.Diffs[f]) / (0.6745 * math.Sqrt2)
}

func (b *baseline) add(x []float64) {
	slot := int(b.Count % int64(b.Size))
	prev := int((b.Count - 1) % int64(b.Size))
	for f, v := range x {
		if b.Count >= int64(b.Size) {
			// The oldest value leaves, and with it its difference to the
			// next oldest.
			old := b.Buf[slot*b.Fields+f]
			next := b.Buf[((slot+1)%b.Size)*b.Fields+f]
			b.Values[f] = removeSorted(b.Values[f], old)
			if b.Size > 1 {
				b.Diffs[f] = removeSorted(b.Diffs[f], math.Abs(next-old))
			}
		}
		if b.Count > 0 && b.Size > 1 {
			b.Diffs[f] = insertSorted(b.Diffs[f], math.Abs(v-b.Buf[prev*b.Fields+f]))
		}
		b.Values[f] = insertSorted(b.Values[f], v)
		b.Buf[slot*b.Fields+f] = v
	}
	b.Count++
}

func insertSorted(s []float64, v float64) []float64 {
	i, _ := slices.BinarySearch(s, v)
	return slices.Insert(s, i, v)
}

// medianDeviation is the median of |v - med| over a sorted slice, found by
// walking outwards from med.
func medianDeviation(s []float64, med float64) float64 {
	n := len(s)
	j, _ := slices.BinarySearch(s, med) // s[j] is the first value >= med
	i := j - 1
	var prev, cur float64
	for k := 0; k <= n/2; k++ {
		prev = cur
		if i < 0 || (j < n && s[j]-med <= med-s[i]) {
			cur = s[j] - med
			j++
		} else {
			cur = med - s[i]
			i--
		}
	}
	if n%2 == 1 {
		return cur
	}
	return (prev + cur) / 2
}

func median(sorted []float64) float64 {
	n := len(sorted)
	if n%2 == 1 {
		return sorted[n/2]
	}
	return (sorted[n/2-1] + sorted[n/2]) / 2
}

// calibrator turns raw scores, whose scale differs by model and series,
// into a standard score z: how many standard deviations a raw score lies
// above the mean of the last Size raw scores (a simple form of the
// "anomaly likelihood" of Ahmad et al. 2017).
type calibrator struct {
	Size, Warmup int
	Hist         []float64 // the last Size raw scores, ring-indexed by Count
	Count        int64     // raw scores seen
	Sum, SumSq   float64   // over Hist
}

func newCalibrator(size, warmup int) *calibrator {
	return &calibrator{Size: size, Warmup: warmup, Hist: make([]float64, size)}
}

// update returns raw's z against the history (0 during warm-up, capped at
// 50), then adds raw to the history.
func (c *calibrator) update(raw float64) float64 {
	hn := min(c.Count, int64(c.Size))
	z := 0.0
	if hn >= int64(c.Warmup) && hn > 1 {
		mean := c.Sum / float64(hn)
		sd := math.Sqrt(max(c.SumSq/float64(hn)-mean*mean, 0))
		switch {
		case raw <= mean:
		case sd <= 1e-9*(math.Abs(mean)+1e-12):
			z = 50
		default:
			z = min((raw-mean)/sd, 50)
		}
	}
	slot := c.Count % int64(c.Size)
	if c.Count >= int64(c.Size) {
		old := c.Hist[slot]
		c.Sum -= old
		c.SumSq -= old * old
	}
	c.Hist[slot] = raw
	c.Sum += raw
	c.SumSq += raw * raw
	c.Count++
	if c.Count%int64(c.Size) == 0 {
		// Recompute the sums now and then so rounding cannot accumulate.
		c.Sum, c.SumSq = 0, 0
		for _, v := range c.Hist[:min(c.Count, int64(c.Size))] {
			c.Sum += v
			c.SumSq += v * v
		}
	}
	return z
}

// suppressor divides by damp the severity of a point that is no more severe
// than one already seen within the last Span points, so that one incident
// is reported once and a repeat only if it is far past the alarm level.
// At and Peak form a decreasing deque of (point, severity) pairs.
type suppressor struct {
	Span  int
	Count int64
	At    []int64
	Peak  []float64
}

func (s *suppressor) apply(score, damp float64) float64 {
	for len(s.At) > 0 && s.At[0] <= s.Count-int64(s.Span) {
		s.At, s.Peak = s.At[1:], s.Peak[1:]
	}
	out := score
	if len(s.Peak) > 0 && score <= s.Peak[0] {
		out = score / damp
	}
	for len(s.Peak) > 0 && s.Peak[len(s.Peak)-1] <= score {
		s.At, s.Peak = s.At[:len(s.At)-1], s.Peak[:len(s.Peak)-1]
	}
	s.At = append(s.At, s.Count)
	s.Peak = append(s.Peak, score)
	s.Count++
	return out
}

// level is a series' own alarm level: it keeps the series' last Size
// severities (a ring and a sorted copy) and divides a new severity by how
// far a high quantile of them stands above a reference level. A series
// whose ordinary points often score near the alarm (a spiky or bursty
// one) then needs a proportionally larger change to alarm, while a quiet
// series keeps the models' alarm level: the divisor is never below 1, so
// the level only ever raises the bar. It learns each severity as
// suppression left it, before its own division.
type level struct {
	Size   int
	Buf    []float64 // the last Size severities, ring-indexed by Count
	Count  int64
	Sorted []float64 // Buf's live values, sorted
}

// Sizes of the per-series level: severities kept, and severities seen
// before it raises the bar.
const (
	levelHistory = 1000
	levelWarmup  = 100
)

func newLevel(size int) *level { return &level{Size: size, Buf: make([]float64, size)} }

// apply returns sev divided by max(1, Q/ref), Q the quantile q of the
// stored severities (none before levelWarmup of them), then stores sev.
func (l *level) apply(sev, q, ref float64) float64 {
	out := sev
	if n := len(l.Sorted); n >= levelWarmup {
		out = sev / max(1, l.Sorted[int(q*float64(n-1))]/ref)
	}
	slot := int(l.Count % int64(l.Size))
	if l.Count >= int64(l.Size) {
		l.Sorted = removeSorted(l.Sorted, l.Buf[slot])
	}
	l.Buf[slot] = sev
	l.Sorted = insertSorted(l.Sorted, sev)
	l.Count++
	return out
}

func (l *level) ok() bool {
	return l != nil && l.Size > 0 && len(l.Buf) == l.Size && l.Count >= 0 && finite(l.Buf) &&
		len(l.Sorted) == int(min(l.Count, int64(l.Size))) && slices.IsSorted(l.Sorted) && finite(l.Sorted)
}
