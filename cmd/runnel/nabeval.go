package main

import (
	"fmt"
	"io"
	"math"
	"runtime"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/internal/nab"
	"github.com/runnel-dev/runnel/operators/anomaly"
)

// scoreSeries runs a fresh detector for cfg over a single-field series and
// returns every point's result: one Score call per point, in order, the
// code path of the detect operator without its record handling.
func scoreSeries(cfg anomaly.Config, ts []time.Time, values []float64) ([]anomaly.Result, error) {
	if len(ts) != len(values) {
		return nil, fmt.Errorf("anomaly: %d timestamps but %d values", len(ts), len(values))
	}
	d, err := anomaly.New(cfg)
	if err != nil {
		return nil, err
	}
	out := make([]anomaly.Result, len(values))
	v := make([]float64, 1)
	for i := range values {
		v[0] = values[i]
		out[i] = d.Score(ts[i], v)
	}
	return out, nil
}

// scoreCorpus runs a fresh detector for cfg over every series of a NAB
// corpus, files in parallel, and returns the scores for nab.Score. Each
// file is scored exactly as `runnel detect` scores it: one Score call per
// point, in order, with no knowledge of labels.
func scoreCorpus(cfg anomaly.Config, corpus []nab.Series) ([]nab.File, error) {
	files := make([]nab.File, len(corpus))
	errs := make([]error, len(corpus))
	parallel(len(corpus), func(i int) {
		s := corpus[i]
		res, err := scoreSeries(cfg, s.Timestamps, s.Values)
		if err != nil {
			errs[i] = fmt.Errorf("score %s: %w", s.Name, err)
			return
		}
		scores := make([]float64, len(res))
		for j, r := range res {
			scores[j] = r.Score
		}
		files[i] = nab.File{Name: s.Name, Scores: scores, Windows: s.Windows}
	})
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return files, nil
}

// parallel calls f(0) … f(n-1) on GOMAXPROCS goroutines.
func parallel(n int, f func(i int)) {
	work := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := range work {
				f(i)
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
}

// Grids cross-validation can choose from (--grid).
const (
	gridDefaults = "defaults" // each method at its defaults: the folds choose the method and threshold
	gridTuning   = "tuning"   // also the default method's alarm levels, gates and suppression
)

// cvGrid is the parameter grid cross-validation chooses from for a method:
// every setting is scored on the whole corpus once, and each fold picks
// among them, and a threshold, on its training categories only.
//
// With gridDefaults each method has one setting, its defaults. Those
// defaults were chosen by looking at the whole corpus, so gridTuning also
// lets each fold choose the ensemble's constants that set the scale of its
// scores: a factor below and above the default noise gate, knn alarm
// levels (relative to novelty's) and per-series alarm level's reference,
// 27 settings. The white-noise gate and the suppression span stay at
// their defaults: freeing them as well (243 settings) let folds pick
// settings that won on three categories by a hair and lost on the fourth.
// Novelty's own alarm level is not in the grid: scaling it is the same as
// moving the threshold, which every fold already chooses.
func cvGrid(method, grid string) []anomaly.Config {
	if grid != gridTuning || (method != anomaly.MethodEnsemble && method != anomaly.MethodAuto) {
		return []anomaly.Config{{Method: method}}
	}
	d := anomaly.DefaultTuning
	var out []anomaly.Config
	for _, gate := range nestedGate {
		for _, knn := range nestedKNN {
			for _, level := range nestedLevel {
				out = append(out, anomaly.Config{
					Method: method,
					Tuning: anomaly.Tuning{
						NoiseGate:   d.NoiseGate * gate,
						KNNAlarm:    d.KNNAlarm * knn,
						KNNAlarmLow: d.KNNAlarmLow * knn,
						Level:       d.Level * level,
					},
				})
			}
		}
	}
	return out
}

// cvName names a grid setting in the report.
func cvName(c anomaly.Config) string {
	s := c.Method
	if c.History != 0 {
		s += fmt.Sprintf(" history=%d", c.History)
	}
	if c.Suppress != 0 {
		s += fmt.Sprintf(" suppress=%d", c.Suppress)
	}
	t, d := c.Tuning, anomaly.DefaultTuning
	if t.NoiseGate != 0 {
		s += fmt.Sprintf(" gate=%.2g", t.NoiseGate/d.NoiseGate)
	}
	if t.KNNAlarm != 0 {
		s += fmt.Sprintf(" knn=%.2g", t.KNNAlarm/d.KNNAlarm)
	}
	if t.WhiteZAlarm != 0 {
		s += fmt.Sprintf(" white=%.2g", t.WhiteZAlarm/d.WhiteZAlarm)
	}
	if t.Level != 0 {
		s += fmt.Sprintf(" level=%.2g", t.Level/d.Level)
	}
	return s
}

// crossValidate scores every grid setting of methods on the corpus (files
// in parallel, each setting once) and prints, per profile, the
// leave-one-category-out score with its folds, then the in-sample score
// of the setting and threshold best on the whole corpus, for comparison.
func crossValidate(w io.Writer, corpus []nab.Series, methods []string, grid string, base anomaly.Config, verbose bool) error {
	if grid == gridNested {
		return nestedCrossValidate(w, corpus, methods, base, verbose)
	}
	start := time.Now()
	cands, err := cvCandidates(corpus, methods, grid, base)
	if err != nil {
		return err
	}
	return reportCV(w, cands, time.Since(start), verbose)
}

// cvCandidates scores every setting of each method's grid on the corpus.
func cvCandidates(corpus []nab.Series, methods []string, grid string, base anomaly.Config) ([]nab.Candidate, error) {
	var cands []nab.Candidate
	for _, m := range methods {
		for _, g := range cvGrid(m, grid) {
			cfg := g
			cfg.Seed = base.Seed
			if err := cfg.Validate(); err != nil {
				return nil, fmt.Errorf("%w: %v", errUsage, err)
			}
			files, err := scoreCorpus(cfg, corpus)
			if err != nil {
				return nil, err
			}
			cands = append(cands, nab.Candidate{Name: cvName(cfg), Files: files})
		}
	}
	return cands, nil
}

// reportCV prints the cross-validation of cands for every profile.
func reportCV(w io.Writer, cands []nab.Candidate, took time.Duration, verbose bool) error {
	fmt.Fprintf(w, "scored %d parameter settings in %.1fs\n", len(cands), took.Seconds())
	for _, p := range nab.Profiles {
		cv, err := nab.CrossValidate(cands, p)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%s profile: leave-one-category-out %.2f (TP %d FP %d FN %d)\n", p.Name, cv.Normalised, cv.TP, cv.FP, cv.FN)
		fmt.Fprintf(w, "  %-22s %-52s %9s %8s %8s %4s %4s %4s\n", "held out", "chosen on the others", "threshold", "train", "raw", "TP", "FP", "FN")
		for _, f := range cv.Folds {
			tp, fp, fn := 0, 0, 0
			for _, r := range f.Test.Files {
				tp, fp, fn = tp+r.TP, fp+r.FP, fn+r.FN
			}
			fmt.Fprintf(w, "  %-22s %-52s %9.4f %8.2f %8.2f %4d %4d %4d\n", f.Category, f.Candidate, f.Threshold, f.Train, f.Test.Raw, tp, fp, fn)
			if verbose {
				for _, r := range f.Test.Files {
					fmt.Fprintf(w, "    %-58s raw %7.3f  TP %d FP %d FN %d\n", r.Name, r.Raw, r.TP, r.FP, r.FN)
				}
			}
		}
		best, bestName := nab.Result{Normalised: math.Inf(-1)}, ""
		for _, c := range cands {
			if r := nab.Score(c.Files, p); r.Normalised > best.Normalised {
				best, bestName = r, c.Name
			}
		}
		fmt.Fprintf(w, "  in-sample (all files, chosen on all files): %.2f with %s at threshold %.4f\n", best.Normalised, bestName, best.Threshold)
	}
	return nil
}
