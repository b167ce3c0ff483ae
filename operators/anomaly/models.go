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
	best               []float64 // scratch: the K smallest squared distances
}

func newKNN(dim, k, size, skip int) *knn {
	return &knn{Dim: dim, K: k, Size: size, Skip: skip, Buf: make([]float64, size*dim)}
}

// update returns the root-mean-square per-coordinate distance from p to
// its K nearest stored shingles, each coordinate scaled by inv, then
// stores p. It returns -1 while fewer than K candidates are stored.
func (m *knn) update(p, inv []float64) float64 {
	n := int(min(m.Count, int64(m.Size)))
	cands := n - m.Skip
	raw := -1.0
	if cands >= m.K {
		if cap(m.best) < m.K {
			m.best = make([]float64, 0, m.K)
		}
		best := m.best[:0]
		// Candidates are the stored shingles older than the Skip newest:
		// a ring segment of length cands from the oldest slot, which may
		// wrap once. Their order does not matter.
		start := int((m.Count - int64(n)) % int64(m.Size))
		first := min(cands, m.Size-start)
		for _, seg := range [2][2]int{{start, start + first}, {0, cands - first}} {
			for slot := seg[0]; slot < seg[1]; slot++ {
				q := m.Buf[slot*m.Dim : slot*m.Dim+m.Dim]
				d := 0.0
				for i, v := range p {
					e := (v - q[i]) * inv[i]
					d += e * e
				}
				if len(best) < m.K {
					best = append(best, d)
					slices.Sort(best)
					continue
				}
				if d >= best[len(best)-1] {
					continue
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
		raw = math.Sqrt(sum / float64(len(best)*m.Dim))
		m.best = best
	}
	slot := int(m.Count % int64(m.Size))
	copy(m.Buf[slot*m.Dim:slot*m.Dim+m.Dim], p)
	m.Count++
	return raw
}

// baseline keeps the last Size values of each field and gives the robust
// expected value (median) and scale (1.4826 × median absolute deviation).
// It backs the robust method and every method's expected range and
// explanation.
type baseline struct {
	Fields, Size int
	Buf          []float64 // ring of points, Fields values each
	Count        int64
	scratch      []float64
}

func newBaseline(fields, size int) *baseline {
	return &baseline{Fields: fields, Size: size, Buf: make([]float64, fields*size)}
}

// stats returns field f's median and scale over the stored values.
func (b *baseline) stats(f int) (med, scale float64) {
	n := int(min(b.Count, int64(b.Size)))
	if n == 0 {
		return 0, 0
	}
	s := b.scratch[:0]
	for i := range n {
		s = append(s, b.Buf[i*b.Fields+f])
	}
	slices.Sort(s)
	med = median(s)
	for i, v := range s {
		s[i] = math.Abs(v - med)
	}
	slices.Sort(s)
	scale = 1.4826 * median(s)
	b.scratch = s
	return med, scale
}

// noise returns field f's robust noise scale: the median absolute
// difference between successive stored values, scaled to a standard
// deviation (÷ 0.6745·√2).
func (b *baseline) noise(f int) float64 {
	n := int(min(b.Count, int64(b.Size)))
	if n < 3 {
		return 0
	}
	s := b.scratch[:0]
	oldest := int(b.Count % int64(b.Size))
	if b.Count < int64(b.Size) {
		oldest = 0
	}
	prev := b.Buf[oldest*b.Fields+f]
	for i := 1; i < n; i++ {
		v := b.Buf[((oldest+i)%b.Size)*b.Fields+f]
		s = append(s, math.Abs(v-prev))
		prev = v
	}
	slices.Sort(s)
	b.scratch = s
	return median(s) / (0.6745 * math.Sqrt2)
}

func (b *baseline) add(x []float64) {
	slot := int(b.Count % int64(b.Size))
	copy(b.Buf[slot*b.Fields:slot*b.Fields+b.Fields], x)
	b.Count++
	if cap(b.scratch) < b.Size {
		b.scratch = make([]float64, 0, b.Size)
	}
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

func (s *suppressor) apply(score float64) float64 {
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
