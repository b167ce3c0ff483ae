package nab

import (
	"fmt"
	"math"
	"slices"
)

// Meta is one way of choosing a setting: the candidates a fold may choose
// among (indices into the candidates' slice, in order of preference for
// equal scores) and the half-width of the threshold plateau it averages
// over (PlateauThreshold's, ThresholdSpan there).
type Meta struct {
	Name    string
	Members []int
	Span    float64
}

// NestedFold is one outer fold of a nested cross-validation: the meta
// choice the inner cross-validation on the other categories made, and the
// candidate and threshold that choice then gave on all of them.
type NestedFold struct {
	Category string
	// Meta is the chosen meta choice and Inner its inner leave-one-category-
	// out score on the training categories (normalised over them).
	Meta  string
	Inner float64
	// Candidate and Threshold were chosen on all training categories with
	// Meta; Train is the score there at Threshold.
	Candidate string
	Threshold float64
	Train     float64
	// Raw, TP, FP and FN are the held-out category's at Threshold.
	Raw        float64
	TP, FP, FN int
}

// NestedResult is a nested leave-one-category-out cross-validation.
type NestedResult struct {
	Profile Profile
	Folds   []NestedFold
	// Raw is the sum of the held-out parts' raw scores, normalised as Score
	// normalises the whole corpus.
	Raw, Null, Perfect, Normalised float64
	TP, FP, FN                     int
}

// selector chooses candidates and thresholds on sets of categories from
// curves, remembering each candidate's best plateau per set, span and
// profile.
type selector struct {
	cands []Curves
	p     Profile
	memo  map[plateauKey]plateauPick
}

type plateauKey struct {
	cand int
	m    mask
	half int
}

type plateauPick struct {
	k             int
	plateau, here float64
}

func newSelector(cands []Curves, p Profile) *selector {
	return &selector{cands: cands, p: p, memo: make(map[plateauKey]plateauPick)}
}

// plateau is PlateauThreshold on curves: the threshold index whose
// normalised score averaged over ±half indices is best (the lowest of
// equals), that average, and the score at the index itself.
func (s *selector) plateau(cand int, m mask, half int) plateauPick {
	key := plateauKey{cand, m, half}
	if p, ok := s.memo[key]; ok {
		return p
	}
	c := &s.cands[cand]
	curve := make([]float64, thresholds+1)
	for k := 1; k <= thresholds; k++ {
		curve[k] = c.normalise(s.p, m, c.raw(s.p, m, k))
	}
	k, avg := bestPlateau(curve, half)
	best := plateauPick{k: k, plateau: avg, here: curve[k]}
	s.memo[key] = best
	return best
}

// choose picks, among members, the candidate with the best plateau on the
// categories in m (the first of equals) and its threshold index.
func (s *selector) choose(members []int, m mask, half int) (int, plateauPick) {
	bi, best := -1, plateauPick{plateau: math.Inf(-1)}
	for _, i := range members {
		if p := s.plateau(i, m, half); p.plateau > best.plateau {
			bi, best = i, p
		}
	}
	return bi, best
}

// inner is the leave-one-category-out score of meta on the categories in
// m: each category of m held out in turn, the candidate and threshold
// chosen on the rest of m, the held-out raw scores summed and normalised
// over m.
func (s *selector) inner(meta Meta, m mask) float64 {
	half := spanIndex(meta.Span)
	raw := 0.0
	for i := range s.cands[0].Cats {
		bit := mask(1) << i
		if m&bit == 0 {
			continue
		}
		c, pick := s.choose(meta.Members, m&^bit, half)
		raw += s.cands[c].raw(s.p, bit, pick.k)
	}
	return s.cands[0].normalise(s.p, m, raw)
}

// spanIndex is a plateau half-width in threshold steps.
func spanIndex(span float64) int { return int(math.Round(span / ThresholdStep)) }

// NestedCrossValidate runs a nested leave-one-category-out cross-validation.
// For each category H (the outer fold), every meta choice is scored by a
// leave-one-category-out cross-validation on the other categories alone
// (the inner one); the best meta (the first of equals, in the order
// given) then chooses a candidate and threshold on all the other
// categories, and H is scored with them. Nothing about H enters any
// choice: not the setting, not the threshold, not the set of candidates
// or the plateau's width. The held-out raw scores are summed and
// normalised as Score normalises the whole corpus.
func NestedCrossValidate(cands []Curves, metas []Meta, p Profile) (NestedResult, error) {
	if len(metas) == 0 {
		return NestedResult{}, fmt.Errorf("nab: nested cross-validation needs at least one meta choice")
	}
	return outerFolds(cands, metas, p, func(s *selector, train mask) (Meta, float64) {
		bm, bestInner := -1, math.Inf(-1)
		for j, mt := range metas {
			if v := s.inner(mt, train); v > bestInner {
				bm, bestInner = j, v
			}
		}
		return metas[bm], bestInner
	})
}

// FixedCrossValidate is the plain leave-one-category-out cross-validation
// of one meta choice on curves (CrossValidate's procedure with the meta's
// candidates and plateau): for comparison with NestedCrossValidate, which
// chooses the meta per fold. Its folds name meta and leave Inner 0.
func FixedCrossValidate(cands []Curves, meta Meta, p Profile) (NestedResult, error) {
	return outerFolds(cands, []Meta{meta}, p, func(*selector, mask) (Meta, float64) { return meta, 0 })
}

// outerFolds holds out each category in turn, lets pick choose a meta
// choice on the others, chooses the setting and threshold there with it,
// and scores the held-out category.
func outerFolds(cands []Curves, metas []Meta, p Profile, pick func(s *selector, train mask) (Meta, float64)) (NestedResult, error) {
	if err := sameCategories(cands); err != nil {
		return NestedResult{}, err
	}
	for _, mt := range metas {
		if len(mt.Members) == 0 || slices.ContainsFunc(mt.Members, func(i int) bool { return i < 0 || i >= len(cands) }) {
			return NestedResult{}, fmt.Errorf("nab: meta choice %q: members must be candidate indices, at least one", mt.Name)
		}
		if mt.Span < 0 || mt.Span > 1 {
			return NestedResult{}, fmt.Errorf("nab: meta choice %q: plateau half-width %g is outside [0, 1]", mt.Name, mt.Span)
		}
	}
	s := newSelector(cands, p)
	cats := cands[0].Cats
	all := mask(1)<<len(cats) - 1
	out := NestedResult{Profile: p}
	for h, cat := range cats {
		held := mask(1) << h
		train := all &^ held
		mt, inner := pick(s, train)
		c, pl := s.choose(mt.Members, train, spanIndex(mt.Span))
		f := NestedFold{
			Category: cat, Meta: mt.Name, Inner: inner,
			Candidate: cands[c].Name, Threshold: float64(pl.k) * ThresholdStep, Train: pl.here,
			Raw: cands[c].raw(p, held, pl.k),
		}
		f.TP, f.FP, f.FN = cands[c].counts(held, pl.k)
		out.Folds = append(out.Folds, f)
		out.Raw += f.Raw
		out.TP, out.FP, out.FN = out.TP+f.TP, out.FP+f.FP, out.FN+f.FN
	}
	out.Null, out.Perfect = cands[0].bounds(p, all)
	out.Normalised = cands[0].normalise(p, all, out.Raw)
	return out, nil
}
