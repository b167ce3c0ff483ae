package nab

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
)

// ScoreAt scores files at a fixed threshold (scores >= thr are detections)
// instead of the best one: how a threshold chosen elsewhere does here. The
// null and perfect raw scores, and the normalisation, are Score's.
func ScoreAt(files []File, p Profile, thr float64) Result {
	windows := 0
	res := Result{Profile: p, Threshold: thr}
	all := 0.0 // the raw score of detecting every row
	for _, f := range files {
		rows := rowWeights(f, p, windows)
		fr := scoreFile(f.Name, rows, len(f.Windows), ProbationLength(len(f.Scores)), thr, p)
		res.Files = append(res.Files, fr)
		res.Raw += fr.Raw
		all += scoreFile(f.Name, rows, len(f.Windows), 0, math.Inf(-1), p).Raw
		windows += len(f.Windows)
	}
	res.Null = max(-p.FN*float64(windows), all)
	res.Perfect = p.TP * float64(windows)
	if res.Perfect > res.Null {
		res.Normalised = 100 * (res.Raw - res.Null) / (res.Perfect - res.Null)
	}
	return res
}

// Category is the category of a corpus file: the directory part of its
// name ("realAdExchange" for "realAdExchange/exchange-2_cpc_results.csv").
func Category(name string) string { return path.Dir(name) }

// Candidate is one setting of a detector's parameters (other than the
// threshold) and the scores it gave every file of a corpus. The candidates
// passed to CrossValidate must list the same files in the same order.
type Candidate struct {
	Name  string
	Files []File
}

// Fold is one part of a leave-one-category-out cross-validation: the
// candidate and threshold chosen on every other category, and how they do
// on the held-out one.
type Fold struct {
	Category  string
	Candidate string
	Threshold float64
	// Train is the chosen candidate's normalised score on the training
	// categories (at Threshold, its best there).
	Train float64
	// Test is the held-out category scored at Threshold.
	Test Result
}

// CVResult is a leave-one-category-out cross-validation.
type CVResult struct {
	Profile Profile
	Folds   []Fold
	// Raw is the sum of the held-out parts' raw scores; Null, Perfect and
	// Normalised are Score's over the whole corpus, so that a detector that
	// scores the same in and out of sample gets the same figure.
	Raw, Null, Perfect, Normalised float64
	// TP, FP and FN are summed over the held-out parts.
	TP, FP, FN int
}

// CrossValidate runs leave-one-category-out cross-validation: for each
// category, every candidate is scored by Score on the other categories
// (which also picks its best threshold there), the best candidate (the
// first of equals, in the order given) and its threshold are kept, and
// the held-out category is scored with them by ScoreAt. Nothing about the
// held-out category enters the choice. The result combines the held-out
// parts: their raw scores summed and normalised as Score normalises the
// whole corpus.
func CrossValidate(cands []Candidate, p Profile) (CVResult, error) {
	if len(cands) == 0 {
		return CVResult{}, errors.New("nab: cross-validation needs at least one candidate")
	}
	names := make([]string, len(cands[0].Files))
	for i, f := range cands[0].Files {
		names[i] = f.Name
	}
	var cats []string
	for _, c := range cands {
		if len(c.Files) != len(names) {
			return CVResult{}, fmt.Errorf("nab: candidate %q has %d files, want %d", c.Name, len(c.Files), len(names))
		}
		for i, f := range c.Files {
			if f.Name != names[i] {
				return CVResult{}, fmt.Errorf("nab: candidate %q file %d is %s, want %s", c.Name, i, f.Name, names[i])
			}
		}
	}
	for _, n := range names {
		if c := Category(n); !slices.Contains(cats, c) {
			cats = append(cats, c)
		}
	}
	if len(cats) < 2 {
		return CVResult{}, fmt.Errorf("nab: cross-validation needs at least two categories, have %d", len(cats))
	}
	split := func(files []File, held string) (train, test []File) {
		for _, f := range files {
			if Category(f.Name) == held {
				test = append(test, f)
			} else {
				train = append(train, f)
			}
		}
		return train, test
	}
	out := CVResult{Profile: p}
	for _, held := range cats {
		best, bestScore, bestThr := -1, math.Inf(-1), 0.0
		for i, c := range cands {
			train, _ := split(c.Files, held)
			r := Score(train, p)
			if r.Normalised > bestScore {
				best, bestScore, bestThr = i, r.Normalised, r.Threshold
			}
		}
		_, test := split(cands[best].Files, held)
		r := ScoreAt(test, p, bestThr)
		out.Folds = append(out.Folds, Fold{Category: held, Candidate: cands[best].Name, Threshold: bestThr, Train: bestScore, Test: r})
		out.Raw += r.Raw
		for _, f := range r.Files {
			out.TP, out.FP, out.FN = out.TP+f.TP, out.FP+f.FP, out.FN+f.FN
		}
	}
	// Normalise as Score does over the whole corpus: the constant detector
	// (nothing or everything detected) is the null.
	whole := ScoreAt(cands[0].Files, p, math.Inf(1))
	out.Null, out.Perfect = whole.Null, whole.Perfect
	if out.Perfect > out.Null {
		out.Normalised = 100 * (out.Raw - out.Null) / (out.Perfect - out.Null)
	}
	return out, nil
}
