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
// category, every candidate is scored on the other categories at the
// threshold PlateauThreshold picks there, the best candidate by that
// plateau's score (the first of equals, in the order given) and its
// threshold are kept, and
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
		best, bestScore, bestThr, bestTrain := -1, math.Inf(-1), 0.0, 0.0
		for i, c := range cands {
			train, _ := split(c.Files, held)
			thr, smooth, score := PlateauThreshold(train, p)
			if smooth > bestScore {
				best, bestScore, bestThr, bestTrain = i, smooth, thr, score
			}
		}
		bestScore = bestTrain
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

// Threshold grid of PlateauThreshold.
const (
	ThresholdStep = 0.005 // spacing of the thresholds tried
	ThresholdSpan = 0.025 // half-width of the plateau averaged around each
)

// PlateauThreshold picks the threshold for files that is best on average
// over its neighbourhood: the normalised score is computed at thresholds
// ThresholdStep apart in (0, 1], averaged over ±ThresholdSpan around each,
// and the threshold with the best average wins (the lowest of equals). A
// threshold on a plateau carries to unseen data better than the exact
// maximiser Score finds, which often sits at the edge of a cliff: one more
// false alarm or one missed window away. It returns the threshold, the
// plateau's average score and the score at the threshold itself.
func PlateauThreshold(files []File, p Profile) (thr, plateau, score float64) {
	var rows [][]row
	windows := 0
	for _, f := range files {
		rows = append(rows, rowWeights(f, p, windows))
		windows += len(f.Windows)
	}
	n := thresholds
	curve := make([]float64, n+1) // curve[k]: normalised score at k·ThresholdStep
	var null, perfect float64
	for k := 1; k <= n; k++ {
		t := float64(k) * ThresholdStep
		raw, all := 0.0, 0.0
		for i, f := range files {
			raw += scoreFile(f.Name, rows[i], len(f.Windows), 0, t, p).Raw
			if k == 1 {
				all += scoreFile(f.Name, rows[i], len(f.Windows), 0, math.Inf(-1), p).Raw
			}
		}
		if k == 1 {
			null, perfect = max(-p.FN*float64(windows), all), p.TP*float64(windows)
		}
		if perfect > null {
			curve[k] = 100 * (raw - null) / (perfect - null)
		}
	}
	k, plateau := bestPlateau(curve, spanIndex(ThresholdSpan))
	thr, score = float64(k)*ThresholdStep, curve[k]
	return thr, plateau, score
}

// bestPlateau is the index k in [1, len(curve)) whose values averaged over
// ±half indices (clipped to the curve) are best, the lowest of equals, and
// that average.
func bestPlateau(curve []float64, half int) (best int, plateau float64) {
	n := len(curve) - 1
	plateau = math.Inf(-1)
	for k := 1; k <= n; k++ {
		sum, cnt := 0.0, 0
		for j := max(1, k-half); j <= min(n, k+half); j++ {
			sum += curve[j]
			cnt++
		}
		if avg := sum / float64(cnt); avg > plateau {
			best, plateau = k, avg
		}
	}
	return best, plateau
}
