package nab

import (
	"fmt"
	"math"
	"slices"
)

// thresholds is the number of thresholds on PlateauThreshold's grid:
// k·ThresholdStep for k = 1 … thresholds.
var thresholds = int(math.Round(1 / ThresholdStep))

// Curves is one candidate's outcome at every threshold of the grid, per
// category: enough to score any set of categories at any grid threshold,
// for every profile, without the per-row scores. Index 0 of each curve is
// "every row detected", which the null detector needs; index k is the
// threshold k·ThresholdStep (scores >= it are detections).
type Curves struct {
	Name string
	Cats []string // categories, in the order of their first file
	cats []catCurve
}

// catCurve is one category's part: per threshold index, the summed weight
// and number of the detections outside every window (with an FP weight of
// 1), and the summed weight and number of the windows detected (with a TP
// weight of 1, each window's best row).
type catCurve struct {
	windows        int
	fpSum, fpCount []float64
	tpSum, tpCount []float64
}

// unit weighs true and false positives 1: the profiles scale them.
var unit = Profile{Name: "unit", TP: 1, FP: 1, FN: 1}

// thresholdIndex is the largest k in [0, thresholds] with k·ThresholdStep
// <= score: the row is a detection at every threshold index up to it.
func thresholdIndex(score float64) int {
	if math.IsNaN(score) {
		return 0
	}
	k := int(math.Floor(score / ThresholdStep))
	k = max(0, min(k, thresholds))
	for k < thresholds && float64(k+1)*ThresholdStep <= score {
		k++
	}
	for k > 0 && float64(k)*ThresholdStep > score {
		k--
	}
	return k
}

// NewCurves computes a candidate's curves from its scored files.
func NewCurves(name string, files []File) Curves {
	c := Curves{Name: name}
	n := thresholds + 1
	for _, f := range files {
		cat := Category(f.Name)
		i := slices.Index(c.Cats, cat)
		if i < 0 {
			i = len(c.Cats)
			c.Cats = append(c.Cats, cat)
			c.cats = append(c.cats, catCurve{
				fpSum: make([]float64, n), fpCount: make([]float64, n),
				tpSum: make([]float64, n), tpCount: make([]float64, n),
			})
		}
		cc := &c.cats[i]
		best := make([][]float64, len(f.Windows)) // per window, best weight detected at each top index
		fpSum, fpCount := make([]float64, n), make([]float64, n)
		for _, r := range rowWeights(f, unit, 0) {
			k := thresholdIndex(r.score)
			if r.window < 0 {
				fpSum[k] += r.weight
				fpCount[k]++
				continue
			}
			b := best[r.window]
			if b == nil {
				b = make([]float64, n)
				for j := range b {
					b[j] = math.Inf(-1)
				}
				best[r.window] = b
			}
			b[k] = max(b[k], r.weight)
		}
		// A detection at index k is one at every lower index too.
		for k := n - 1; k >= 0; k-- {
			if k < n-1 {
				fpSum[k] += fpSum[k+1]
				fpCount[k] += fpCount[k+1]
			}
			cc.fpSum[k] += fpSum[k]
			cc.fpCount[k] += fpCount[k]
		}
		for _, b := range best {
			if b == nil {
				continue
			}
			top := math.Inf(-1)
			for k := n - 1; k >= 0; k-- {
				top = max(top, b[k])
				if !math.IsInf(top, -1) {
					cc.tpSum[k] += top
					cc.tpCount[k]++
				}
			}
		}
		cc.windows += len(f.Windows)
	}
	return c
}

// mask is a set of categories, bit i for Curves.Cats[i].
type mask uint64

// raw is the raw score of the categories in m at threshold index k.
func (c *Curves) raw(p Profile, m mask, k int) float64 {
	s := 0.0
	for i := range c.cats {
		if m&(1<<i) == 0 {
			continue
		}
		cc := &c.cats[i]
		s += p.FP*cc.fpSum[k] + p.TP*cc.tpSum[k] - p.FN*(float64(cc.windows)-cc.tpCount[k])
	}
	return s
}

// counts is the TP, FP and FN of the categories in m at threshold index k.
func (c *Curves) counts(m mask, k int) (tp, fp, fn int) {
	for i := range c.cats {
		if m&(1<<i) != 0 {
			cc := &c.cats[i]
			tp += int(cc.tpCount[k])
			fp += int(cc.fpCount[k])
			fn += cc.windows - int(cc.tpCount[k])
		}
	}
	return tp, fp, fn
}

// bounds is the null and perfect raw score of the categories in m.
func (c *Curves) bounds(p Profile, m mask) (null, perfect float64) {
	windows := 0
	for i := range c.cats {
		if m&(1<<i) != 0 {
			windows += c.cats[i].windows
		}
	}
	return max(-p.FN*float64(windows), c.raw(p, m, 0)), p.TP * float64(windows)
}

// normalise maps a raw score of the categories in m to NAB's 0–100 scale.
func (c *Curves) normalise(p Profile, m mask, raw float64) float64 {
	null, perfect := c.bounds(p, m)
	if perfect <= null {
		return 0
	}
	return 100 * (raw - null) / (perfect - null)
}

// sameCategories checks that every candidate has the categories of the
// first, in the same order.
func sameCategories(cands []Curves) error {
	if len(cands) == 0 {
		return fmt.Errorf("nab: cross-validation needs at least one candidate")
	}
	for _, c := range cands {
		if !slices.Equal(c.Cats, cands[0].Cats) {
			return fmt.Errorf("nab: candidate %q has categories %v, want %v", c.Name, c.Cats, cands[0].Cats)
		}
	}
	if len(cands[0].Cats) < 3 {
		return fmt.Errorf("nab: nested cross-validation needs at least three categories, have %d", len(cands[0].Cats))
	}
	if len(cands[0].Cats) > 64 {
		return fmt.Errorf("nab: at most 64 categories, have %d", len(cands[0].Cats))
	}
	return nil
}

// Best is the in-sample best on the whole corpus among the grid's
// thresholds: the threshold and its normalised score.
func (c *Curves) Best(p Profile) (thr, score float64) {
	all := mask(1)<<len(c.cats) - 1
	score = math.Inf(-1)
	for k := 1; k <= thresholds; k++ {
		if s := c.normalise(p, all, c.raw(p, all, k)); s > score {
			thr, score = float64(k)*ThresholdStep, s
		}
	}
	return thr, score
}
