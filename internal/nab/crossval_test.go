package nab

import (
	"fmt"
	"math"
	"testing"
)

// synthFile is a 200-row file of category cat with one window at rows
// 100-104; score gives each row's detector score.
func synthFile(cat string, i int, score func(row int) float64) File {
	f := File{Name: fmt.Sprintf("%s/f%d.csv", cat, i), Scores: make([]float64, 200), Windows: []Window{{100, 104}}}
	for r := range f.Scores {
		f.Scores[r] = score(r)
	}
	return f
}

// synthCorpus builds the files of one candidate: cats[c] files in category
// c, scored by score(category, row).
func synthCorpus(score func(cat string, row int) float64) []File {
	var files []File
	for _, c := range []struct {
		name string
		n    int
	}{{"big", 8}, {"mid", 1}, {"small", 1}} {
		for i := range c.n {
			files = append(files, synthFile(c.name, i, func(r int) float64 { return score(c.name, r) }))
		}
	}
	return files
}

// TestCrossValidateRejectsOverfit checks the procedure on a corpus where
// the answer is known. "general" finds every window a little late and has
// two false alarms per file, everywhere. "fits-big" is perfect on the big
// category (most of the corpus) and, on the others, misses the window and
// raises a false alarm: it wins in sample, where it is chosen on the
// category it fits, and must lose when each category is held out in turn.
func TestCrossValidateRejectsOverfit(t *testing.T) {
	general := Candidate{Name: "general", Files: synthCorpus(func(_ string, r int) float64 {
		switch r {
		case 104, 150, 170:
			return 0.8
		}
		return 0.1
	})}
	fitsBig := Candidate{Name: "fits-big", Files: synthCorpus(func(cat string, r int) float64 {
		switch {
		case cat == "big" && r == 100:
			return 0.9
		case cat != "big" && r == 60:
			// Elsewhere its alarm means nothing: a false alarm, and the
			// window goes unnoticed.
			return 0.9
		}
		return 0.05
	})}

	in := func(c Candidate) float64 { return Score(c.Files, Standard).Normalised }
	if in(fitsBig) <= in(Candidate{Files: general.Files}) {
		t.Fatalf("setup: in sample fits-big %.2f should beat general %.2f", in(fitsBig), in(general))
	}

	both, err := CrossValidate([]Candidate{general, fitsBig}, Standard)
	if err != nil {
		t.Fatal(err)
	}
	onlyGeneral, err := CrossValidate([]Candidate{general}, Standard)
	if err != nil {
		t.Fatal(err)
	}
	onlyFit, err := CrossValidate([]Candidate{fitsBig}, Standard)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("in sample: general %.2f, fits-big %.2f; cross-validated: general %.2f, fits-big %.2f, both %.2f",
		in(general), in(fitsBig), onlyGeneral.Normalised, onlyFit.Normalised, both.Normalised)
	if onlyFit.Normalised >= onlyGeneral.Normalised {
		t.Errorf("cross-validated, fits-big %.2f should lose to general %.2f", onlyFit.Normalised, onlyGeneral.Normalised)
	}
	for _, f := range both.Folds {
		if f.Category == "big" && f.Candidate != "general" {
			t.Errorf("holding out big, the choice made on the others was %q, want general", f.Candidate)
		}
	}
	if len(both.Folds) != 3 {
		t.Errorf("%d folds, want one per category (3)", len(both.Folds))
	}
	if both.Normalised >= in(fitsBig) {
		t.Errorf("cross-validated %.2f should be below the in-sample best %.2f", both.Normalised, in(fitsBig))
	}
}

// TestCrossValidateIgnoresHeldOut checks that a fold's choice does not
// depend on the held-out category: changing its scores changes only its
// own test result.
func TestCrossValidateIgnoresHeldOut(t *testing.T) {
	mk := func(peak float64, heldOut float64) []Candidate {
		return []Candidate{
			{Name: "a", Files: synthCorpus(func(cat string, r int) float64 {
				if cat == "small" && r == 100 {
					return heldOut
				}
				if r == 101 || r == 60 {
					return peak
				}
				return 0
			})},
			{Name: "b", Files: synthCorpus(func(cat string, r int) float64 {
				if r == 102 {
					return 0.5
				}
				return 0
			})},
		}
	}
	x, err := CrossValidate(mk(0.7, 0), Standard)
	if err != nil {
		t.Fatal(err)
	}
	y, err := CrossValidate(mk(0.7, 0.99), Standard)
	if err != nil {
		t.Fatal(err)
	}
	for i := range x.Folds {
		fx, fy := x.Folds[i], y.Folds[i]
		if fx.Category != "small" {
			continue
		}
		if fx.Candidate != fy.Candidate || fx.Threshold != fy.Threshold || fx.Train != fy.Train {
			t.Errorf("held-out scores changed the choice: %+v vs %+v", fx, fy)
		}
	}
}

// TestScoreAtMatchesScore checks that scoring at the threshold Score chose
// gives Score's result.
func TestScoreAtMatchesScore(t *testing.T) {
	files := synthCorpus(func(cat string, r int) float64 { return math.Mod(float64(r*37+len(cat)), 101) / 100 })
	for _, p := range Profiles {
		want := Score(files, p)
		got := ScoreAt(files, p, want.Threshold)
		if !near(got.Raw, want.Raw) || !near(got.Normalised, want.Normalised) || !near(got.Null, want.Null) {
			t.Errorf("%s: ScoreAt raw %v norm %v null %v, Score raw %v norm %v null %v", p.Name, got.Raw, got.Normalised, got.Null, want.Raw, want.Normalised, want.Null)
		}
	}
}
