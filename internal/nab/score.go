package nab

import (
	"fmt"
	"math"
	"sort"
)

// Profile weights the outcomes of a detection.
type Profile struct {
	Name string
	TP   float64 // true positive (the earliest detection in a window)
	FP   float64 // false positive
	FN   float64 // false negative (a window without a detection)
}

// The three NAB profiles.
var (
	Standard        = Profile{Name: "standard", TP: 1.0, FP: 0.11, FN: 1.0}
	RewardLowFPRate = Profile{Name: "reward_low_FP_rate", TP: 1.0, FP: 0.22, FN: 1.0}
	RewardLowFNRate = Profile{Name: "reward_low_FN_rate", TP: 1.0, FP: 0.11, FN: 2.0}
)

// Profiles lists the NAB profiles in their usual order.
var Profiles = []Profile{Standard, RewardLowFPRate, RewardLowFNRate}

// ProfileByName returns the profile of that name.
func ProfileByName(name string) (Profile, error) {
	for _, p := range Profiles {
		if p.Name == name {
			return p, nil
		}
	}
	return Profile{}, fmt.Errorf("nab: unknown profile %q (want standard, reward_low_FP_rate or reward_low_FN_rate)", name)
}

// ProbationLength is the number of leading rows of an n-row file whose
// detections are ignored: 15% of the file, at most 750 rows.
func ProbationLength(n int) int {
	return min(int(math.Floor(0.15*float64(n))), 750)
}

// ScaledSigmoid is NAB's weighting curve 2/(1+e^(5y)) - 1: +0.987 at y = -1
// (a window's start), 0 at y = 0 (its end), falling towards -1 past it, and
// exactly -1 beyond y = 3.
func ScaledSigmoid(y float64) float64 {
	if y > 3 {
		return -1
	}
	return 2/(1+math.Exp(5*y)) - 1
}

// File is one scored corpus file: a score per row and the anomaly windows.
type File struct {
	Name    string
	Scores  []float64
	Windows []Window
}

// row is one scoreable row: its detector score, its weight if detected,
// and the corpus-wide window it falls in (-1 outside every window).
type row struct {
	score  float64
	weight float64
	window int
}

// rowWeights gives every row after the probationary period of one file the
// value a detection there adds to the total. Window ids start at firstWindow.
func rowWeights(f File, p Profile, firstWindow int) []row {
	n := len(f.Scores)
	maxTP := ScaledSigmoid(-1)
	probation := ProbationLength(n)
	rows := make([]row, 0, n-probation)
	next := 0  // index of the next window not yet entered
	cur := -1  // index of the window we are in, or -1
	prev := -1 // index of the last window we left, or -1
	for i := 0; i < n; i++ {
		if next < len(f.Windows) && i >= f.Windows[next].Start {
			cur = next
			next++
		}
		r := row{score: f.Scores[i], window: -1}
		if cur >= 0 && i <= f.Windows[cur].End {
			w := f.Windows[cur]
			width := float64(w.End - w.Start + 1)
			pos := -float64(w.End-i+1) / width
			r.weight = ScaledSigmoid(pos) * p.TP / maxTP
			r.window = firstWindow + cur
		} else if prev < 0 {
			r.weight = -p.FP
		} else {
			w := f.Windows[prev]
			width := float64(w.End - w.Start + 1)
			pos := 0.0
			if width > 1 {
				pos = math.Abs(float64(w.End-i)) / (width - 1)
			}
			r.weight = ScaledSigmoid(pos) * p.FP
		}
		if i >= probation {
			rows = append(rows, r)
		}
		if cur >= 0 && i == f.Windows[cur].End {
			prev = cur
			cur = -1
		}
	}
	return rows
}

// Result is a detector's NAB result over a corpus for one profile.
type Result struct {
	Profile Profile
	// Threshold is the corpus-wide threshold that maximises Raw; scores >=
	// Threshold are detections. +Inf when detecting nothing is best.
	Threshold float64
	// Raw is the summed weighted score at Threshold; Null and Perfect are the
	// raw scores of the null detector (a constant score: it detects nothing,
	// or everything if that scores higher) and of the perfect detector.
	Raw, Null, Perfect float64
	// Normalised is 100 * (Raw - Null) / (Perfect - Null).
	Normalised float64
	// Files is the per-file breakdown at Threshold, in input order.
	Files []FileResult
}

// FileResult is one file's outcome at the chosen threshold.
type FileResult struct {
	Name           string
	Raw            float64
	TP, FP, FN     int
	Windows, Probe int // Probe is the probationary length
}

// Score optimises the threshold over the whole corpus, as NAB does, and
// returns the normalised score with a per-file breakdown.
func Score(files []File, p Profile) Result {
	var all []row
	windows := 0
	perFile := make([][]row, len(files))
	for i, f := range files {
		perFile[i] = rowWeights(f, p, windows)
		all = append(all, perFile[i]...)
		windows += len(f.Windows)
	}
	null := -p.FN * float64(windows)
	perfect := p.TP * float64(windows)

	sort.SliceStable(all, func(i, j int) bool { return all[i].score > all[j].score })
	best, bestThr := null, math.Inf(1)
	total := null
	seen := make(map[int]float64)
	for i, r := range all {
		switch prevW, ok := seen[r.window]; {
		case r.window < 0:
			total += r.weight
		case !ok:
			seen[r.window] = r.weight
			total += r.weight + p.FN
		case r.weight > prevW:
			seen[r.window] = r.weight
			total += r.weight - prevW
		}
		if i+1 < len(all) && all[i+1].score == r.score {
			continue
		}
		if total > best {
			best, bestThr = total, r.score
		}
	}
	// The null detector gives every row the same score, so the best it can
	// do is detect nothing or everything.
	null = max(null, total)
	res := Result{Profile: p, Threshold: bestThr, Raw: best, Null: null, Perfect: perfect}
	if perfect > null {
		res.Normalised = 100 * (best - null) / (perfect - null)
	}
	for i, f := range files {
		res.Files = append(res.Files, scoreFile(f.Name, perFile[i], len(f.Windows), ProbationLength(len(f.Scores)), bestThr, p))
	}
	return res
}

// scoreFile scores one file's rows at a fixed threshold.
func scoreFile(name string, rows []row, windows, probe int, thr float64, p Profile) FileResult {
	fr := FileResult{Name: name, Windows: windows, Probe: probe}
	best := make(map[int]float64)
	for _, r := range rows {
		if r.score < thr {
			continue
		}
		if r.window < 0 {
			fr.FP++
			fr.Raw += r.weight
			continue
		}
		if w, ok := best[r.window]; !ok || r.weight > w {
			best[r.window] = r.weight
		}
	}
	fr.TP = len(best)
	fr.FN = windows - fr.TP
	for _, w := range best {
		fr.Raw += w
	}
	fr.Raw -= p.FN * float64(fr.FN)
	return fr
}
