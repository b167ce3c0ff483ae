package nab

import (
	"fmt"
	"math"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// randomCorpus is a corpus of four categories with random scores (some
// exactly on a grid threshold), random windows and random lengths.
func randomCorpus(t *testing.T, stream uint64) []File {
	rng := testutil.Rand(t, stream)
	var files []File
	for c, n := range []int{3, 1, 2, 4} {
		for i := range n {
			rows := 200 + rng.IntN(800)
			f := File{Name: fmt.Sprintf("cat%d/f%d.csv", c, i), Scores: make([]float64, rows)}
			for r := range f.Scores {
				switch rng.IntN(4) {
				case 0:
					f.Scores[r] = float64(rng.IntN(201)) * ThresholdStep
				default:
					f.Scores[r] = rng.Float64() * rng.Float64()
				}
			}
			for start := rows/5 + rng.IntN(50); start < rows-20; start += 100 + rng.IntN(300) {
				f.Windows = append(f.Windows, Window{start, start + 5 + rng.IntN(15)})
			}
			files = append(files, f)
		}
	}
	return files
}

// TestCurvesMatchScoreAt checks that curves give ScoreAt's raw score,
// counts and normalisation for every set of categories, every profile and
// every grid threshold.
func TestCurvesMatchScoreAt(t *testing.T) {
	files := randomCorpus(t, 1)
	c := NewCurves("random", files)
	for m := mask(1); m < 1<<len(c.Cats); m++ {
		var sub []File
		for _, f := range files {
			for i, cat := range c.Cats {
				if m&(1<<i) != 0 && Category(f.Name) == cat {
					sub = append(sub, f)
				}
			}
		}
		for _, p := range Profiles {
			for k := 1; k <= thresholds; k++ {
				want := ScoreAt(sub, p, float64(k)*ThresholdStep)
				tp, fp, fn := 0, 0, 0
				for _, f := range want.Files {
					tp, fp, fn = tp+f.TP, fp+f.FP, fn+f.FN
				}
				gtp, gfp, gfn := c.counts(m, k)
				null, perfect := c.bounds(p, m)
				if got := c.raw(p, m, k); !near(got, want.Raw) || gtp != tp || gfp != fp || gfn != fn ||
					!near(null, want.Null) || !near(perfect, want.Perfect) {
					t.Fatalf("%s categories %b threshold %d: curves raw %v TP %d FP %d FN %d null %v perfect %v, ScoreAt raw %v TP %d FP %d FN %d null %v perfect %v",
						p.Name, m, k, got, gtp, gfp, gfn, null, perfect, want.Raw, tp, fp, fn, want.Null, want.Perfect)
				}
			}
		}
	}
}

// TestFixedMatchesCrossValidate checks that the curves' cross-validation
// with every candidate and ThresholdSpan makes CrossValidate's choices and
// gets its score.
func TestFixedMatchesCrossValidate(t *testing.T) {
	var cands []Candidate
	var curves []Curves
	for i := range 4 {
		files := randomCorpus(t, uint64(10+i))
		if i > 0 { // the same files and windows, other scores
			base := cands[0].Files
			for j := range files {
				files[j].Name, files[j].Windows = base[j].Name, base[j].Windows
				files[j].Scores = append(files[j].Scores[:0:0], files[j].Scores...)
				for len(files[j].Scores) < len(base[j].Scores) {
					files[j].Scores = append(files[j].Scores, 0)
				}
				files[j].Scores = files[j].Scores[:len(base[j].Scores)]
			}
		}
		name := fmt.Sprintf("c%d", i)
		cands = append(cands, Candidate{Name: name, Files: files})
		curves = append(curves, NewCurves(name, files))
	}
	all := Meta{Name: "all", Members: []int{0, 1, 2, 3}, Span: ThresholdSpan}
	for _, p := range Profiles {
		want, err := CrossValidate(cands, p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := FixedCrossValidate(curves, all, p)
		if err != nil {
			t.Fatal(err)
		}
		if !near(got.Normalised, want.Normalised) || got.TP != want.TP || got.FP != want.FP || got.FN != want.FN {
			t.Errorf("%s: curves %.6f (TP %d FP %d FN %d), CrossValidate %.6f (TP %d FP %d FN %d)",
				p.Name, got.Normalised, got.TP, got.FP, got.FN, want.Normalised, want.TP, want.FP, want.FN)
		}
		for i := range want.Folds {
			w, g := want.Folds[i], got.Folds[i]
			if w.Category != g.Category || w.Candidate != g.Candidate || math.Abs(w.Threshold-g.Threshold) > 1e-12 || !near(w.Train, g.Train) {
				t.Errorf("%s fold %d: curves chose %s %s at %v (train %v), CrossValidate %s %s at %v (train %v)",
					p.Name, i, g.Category, g.Candidate, g.Threshold, g.Train, w.Category, w.Candidate, w.Threshold, w.Train)
			}
		}
	}
}

// fourCategories builds a candidate's files: 8 files of "big" and one each
// of "mid", "small" and "tiny", each with one window at rows 100-104,
// scored by score(category, row).
func fourCategories(score func(cat string, row int) float64) []File {
	var files []File
	for _, c := range []struct {
		name string
		n    int
	}{{"big", 8}, {"mid", 1}, {"small", 1}, {"tiny", 1}} {
		for i := range c.n {
			files = append(files, synthFile(c.name, i, func(r int) float64 { return score(c.name, r) }))
		}
	}
	return files
}

// TestNestedRejectsOverfitMeta checks nested cross-validation where the
// answer is known. "general" finds every window a little late with two
// false alarms per file; "fits-big" is perfect on big (most of the corpus)
// and elsewhere misses the window and raises a false alarm. The meta
// choice "wide" may pick either and wins in sample; "narrow" has general
// only. Plain cross-validation of "wide" picks fits-big whenever big is
// among the training categories, and loses. The nested procedure must
// see that on the training categories alone and choose "narrow" in every
// such fold, scoring as well as "narrow" and better than "wide".
func TestNestedRejectsOverfitMeta(t *testing.T) {
	general := NewCurves("general", fourCategories(func(_ string, r int) float64 {
		switch r {
		case 104, 150, 170:
			return 0.8
		}
		return 0.1
	}))
	fitsBig := NewCurves("fits-big", fourCategories(func(cat string, r int) float64 {
		switch {
		case cat == "big" && r == 100, cat != "big" && r == 60:
			return 0.9
		}
		return 0.05
	}))
	cands := []Curves{general, fitsBig}
	wide := Meta{Name: "wide", Members: []int{1, 0}, Span: ThresholdSpan}
	narrow := Meta{Name: "narrow", Members: []int{0}, Span: ThresholdSpan}
	nested, err := NestedCrossValidate(cands, []Meta{wide, narrow}, Standard)
	if err != nil {
		t.Fatal(err)
	}
	fw, err := FixedCrossValidate(cands, wide, Standard)
	if err != nil {
		t.Fatal(err)
	}
	fn, err := FixedCrossValidate(cands, narrow, Standard)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("cross-validated: wide %.2f, narrow %.2f, nested %.2f", fw.Normalised, fn.Normalised, nested.Normalised)
	for _, f := range nested.Folds {
		t.Logf("held out %s: chose %s (inner %.2f), %s at %.3f, raw %.2f", f.Category, f.Meta, f.Inner, f.Candidate, f.Threshold, f.Raw)
		if f.Category != "big" && (f.Meta != "narrow" || f.Candidate != "general") {
			t.Errorf("holding out %s (big in training), nested chose %s and %s; want narrow and general", f.Category, f.Meta, f.Candidate)
		}
	}
	if fw.Normalised >= fn.Normalised {
		t.Fatalf("setup: plain cross-validation of wide %.2f should lose to narrow %.2f", fw.Normalised, fn.Normalised)
	}
	if nested.Normalised < fn.Normalised || nested.Normalised <= fw.Normalised {
		t.Errorf("nested %.2f, want at least narrow's %.2f and above wide's %.2f", nested.Normalised, fn.Normalised, fw.Normalised)
	}
	if len(nested.Folds) != 4 {
		t.Errorf("%d folds, want 4", len(nested.Folds))
	}
}

// TestNestedIgnoresHeldOut checks that an outer fold's choices do not
// depend on its held-out category: changing that category's scores in
// every candidate changes only the fold's held-out raw score.
func TestNestedIgnoresHeldOut(t *testing.T) {
	mk := func(heldOut float64) []Curves {
		var out []Curves
		for i, peak := range []float64{0.55, 0.7, 0.85} {
			out = append(out, NewCurves(fmt.Sprint(i), fourCategories(func(cat string, r int) float64 {
				switch {
				case cat == "tiny" && r == 180:
					return heldOut
				case r == 100+i || r == 30*i+20:
					return peak
				}
				return 0.02 * float64(i)
			})))
		}
		return out
	}
	metas := []Meta{{Name: "a", Members: []int{0, 1}, Span: 0.0125}, {Name: "b", Members: []int{1, 2}, Span: 0.05}, {Name: "c", Members: []int{0, 1, 2}, Span: 0.025}}
	x, err := NestedCrossValidate(mk(0), metas, Standard)
	if err != nil {
		t.Fatal(err)
	}
	y, err := NestedCrossValidate(mk(0.99), metas, Standard)
	if err != nil {
		t.Fatal(err)
	}
	for i := range x.Folds {
		fx, fy := x.Folds[i], y.Folds[i]
		if fx.Category != "tiny" {
			continue
		}
		if fx.Meta != fy.Meta || fx.Inner != fy.Inner || fx.Candidate != fy.Candidate || fx.Threshold != fy.Threshold || fx.Train != fy.Train {
			t.Errorf("held-out scores changed the choice: %+v vs %+v", fx, fy)
		}
		if fx.Raw == fy.Raw {
			t.Errorf("setup: the held-out change should change the held-out score (%v both)", fx.Raw)
		}
	}
}
