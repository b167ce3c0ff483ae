package main

import (
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"time"

	"github.com/runnel-dev/runnel/internal/nab"
	"github.com/runnel-dev/runnel/operators/anomaly"
)

// gridNested is the default of --cross-validate: nested cross-validation,
// in which each fold also chooses the grid, the per-series level's
// quantile and the threshold plateau's width on its training categories.
const gridNested = "nested"

// The values cross-validation chooses among (the tuning grid uses the
// first three and the level). The models' constants (noise gate, knn
// alarm levels, white-noise gate) are factors of their defaults, as is the
// per-series level's reference; the suppression span, the quantile and the
// plateau's half-width are absolute. The first value of each meta-choice
// list is the one the defaults use: among equal inner scores the earlier
// wins.
var (
	nestedGate      = []float64{0.5, 1, 1.6}
	nestedKNN       = []float64{0.6, 1, 1.6}
	nestedWhite     = []float64{0.7, 1, 1.4}
	nestedSuppress  = []int{100, 200, 400}
	nestedLevel     = []float64{0.5, 1, 2}
	nestedQuantiles = []float64{0.95, 0.93, 0.97, 0.9, 0.98}
	nestedSpans     = []float64{0.025, 0.0125, 0.05}
)

// ensembleSetting is one setting of the ensemble in the nested grid.
type ensembleSetting struct {
	gate, knn, white float64
	suppress         int
	level, quantile  float64
}

func (s ensembleSetting) config(method string) anomaly.Config {
	d := anomaly.DefaultTuning
	return anomaly.Config{
		Method:   method,
		Suppress: s.suppress,
		Tuning: anomaly.Tuning{
			NoiseGate:     d.NoiseGate * s.gate,
			KNNAlarm:      d.KNNAlarm * s.knn,
			KNNAlarmLow:   d.KNNAlarmLow * s.knn,
			WhiteZAlarm:   d.WhiteZAlarm * s.white,
			Level:         d.Level * s.level,
			LevelQuantile: s.quantile,
		},
	}
}

func (s ensembleSetting) String() string {
	return fmt.Sprintf("gate=%g knn=%g white=%g suppress=%d level=%g quantile=%g", s.gate, s.knn, s.white, s.suppress, s.level, s.quantile)
}

// nestedGrids are the grids a fold may choose among, each a subset of the
// full grid of the ensemble's settings (the one setting of every other
// method is in every grid), smallest first: the defaults alone; 27
// settings (noise gate, knn alarms and level free); the three 81-setting
// grids that fix one of suppression, the white-noise gate and the level;
// and all 243.
var nestedGrids = []struct {
	name string
	in   func(ensembleSetting) bool
}{
	{"defaults", func(s ensembleSetting) bool {
		return s.gate == 1 && s.knn == 1 && s.white == 1 && s.suppress == anomaly.DefaultSuppress && s.level == 1
	}},
	{"27", func(s ensembleSetting) bool { return s.white == 1 && s.suppress == anomaly.DefaultSuppress }},
	{"81/suppress-fixed", func(s ensembleSetting) bool { return s.suppress == anomaly.DefaultSuppress }},
	{"81/white-fixed", func(s ensembleSetting) bool { return s.white == 1 }},
	{"81/level-fixed", func(s ensembleSetting) bool { return s.level == 1 }},
	{"243", func(ensembleSetting) bool { return true }},
}

// nestedCandidate is one scored setting: the ensemble's (ens set) or
// another method's defaults.
type nestedCandidate struct {
	curves   nab.Curves
	ensemble bool
	ens      ensembleSetting
}

// nestedCandidates scores every setting of the nested grid for each
// method. The ensemble's models run once per noise gate, knn alarm and
// white-noise gate (anomaly.Severities, files in parallel); its
// suppression and per-series level settings are applied to those
// severities (anomaly.Settle, which gives Score's numbers bit for bit).
// Each setting is kept as threshold curves per category, not as scores.
func nestedCandidates(corpus []nab.Series, methods []string, base anomaly.Config) ([]nestedCandidate, error) {
	var out []nestedCandidate
	for _, m := range methods {
		if m != anomaly.MethodEnsemble && m != anomaly.MethodAuto {
			cfg := anomaly.Config{Method: m, Seed: base.Seed}
			files, err := scoreCorpus(cfg, corpus)
			if err != nil {
				return nil, err
			}
			out = append(out, nestedCandidate{curves: nab.NewCurves(cvName(cfg), files)})
			continue
		}
		for _, gate := range nestedGate {
			for _, knn := range nestedKNN {
				for _, white := range nestedWhite {
					c, err := settleAll(corpus, m, gate, knn, white)
					if err != nil {
						return nil, err
					}
					out = append(out, c...)
				}
			}
		}
	}
	return out, nil
}

// settleAll runs the ensemble's models once with one noise gate, knn alarm
// and white-noise gate factor, then scores every suppression, level and
// quantile setting from their severities.
func settleAll(corpus []nab.Series, method string, gate, knn, white float64) ([]nestedCandidate, error) {
	measured := ensembleSetting{gate: gate, knn: knn, white: white, suppress: anomaly.DefaultSuppress, level: 1, quantile: anomaly.DefaultTuning.LevelQuantile}
	sev := make([][]float64, len(corpus))
	errs := make([]error, len(corpus))
	parallel(len(corpus), func(i int) {
		sev[i], errs[i] = anomaly.Severities(measured.config(method), corpus[i].Timestamps, corpus[i].Values)
	})
	var settings []ensembleSetting
	for _, sup := range nestedSuppress {
		for _, level := range nestedLevel {
			for _, q := range nestedQuantiles {
				settings = append(settings, ensembleSetting{gate: gate, knn: knn, white: white, suppress: sup, level: level, quantile: q})
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	out := make([]nestedCandidate, len(settings))
	errs = make([]error, len(settings))
	parallel(len(settings), func(j int) {
		s := settings[j]
		files := make([]nab.File, len(corpus))
		for i, series := range corpus {
			scores, err := anomaly.Settle(s.config(method), sev[i])
			if err != nil {
				errs[j] = err
				return
			}
			files[i] = nab.File{Name: series.Name, Scores: scores, Windows: series.Windows}
		}
		out[j] = nestedCandidate{curves: nab.NewCurves(method+" "+s.String(), files), ensemble: true, ens: s}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// nestedMetas lists the meta choices: every grid × quantile × plateau
// half-width, in order of preference for equal inner scores (the defaults'
// quantile and plateau first, smaller grids first).
func nestedMetas(cands []nestedCandidate) []nab.Meta {
	var metas []nab.Meta
	if !slices.ContainsFunc(cands, func(c nestedCandidate) bool { return c.ensemble }) {
		// No grid or quantile to choose: only the plateau.
		all := make([]int, len(cands))
		for i := range all {
			all[i] = i
		}
		for _, span := range nestedSpans {
			metas = append(metas, nab.Meta{Name: metaName("", 0, span), Members: all, Span: span})
		}
		return metas
	}
	for _, g := range nestedGrids {
		for _, q := range nestedQuantiles {
			var members []int
			for i, c := range cands {
				if !c.ensemble || c.ens.quantile == q && g.in(c.ens) {
					members = append(members, i)
				}
			}
			for _, span := range nestedSpans {
				metas = append(metas, nab.Meta{Name: metaName(g.name, q, span), Members: members, Span: span})
			}
		}
	}
	return metas
}

// metaName names a meta choice: a grid, quantile and plateau half-width,
// or the plateau alone (grid "").
func metaName(grid string, quantile, span float64) string {
	if grid == "" {
		return fmt.Sprintf("plateau ±%g", span)
	}
	return fmt.Sprintf("grid %s, quantile %g, plateau ±%g", grid, quantile, span)
}

// nestedCrossValidate scores the nested grid of methods on the corpus and
// prints, per profile, the nested leave-one-category-out score with each
// outer fold's choices; then, for comparison, the plain cross-validation
// of fixed meta choices (every one with verbose) and the in-sample best.
func nestedCrossValidate(w io.Writer, corpus []nab.Series, methods []string, base anomaly.Config, verbose bool) error {
	start := time.Now()
	cands, err := nestedCandidates(corpus, methods, base)
	if err != nil {
		return err
	}
	curves := make([]nab.Curves, len(cands))
	for i, c := range cands {
		curves[i] = c.curves
	}
	metas := nestedMetas(cands)
	q := anomaly.DefaultTuning.LevelQuantile
	fixedDefaults := []string{metaName("27", q, nab.ThresholdSpan), metaName("defaults", q, nab.ThresholdSpan), metaName("", 0, nab.ThresholdSpan)}
	fmt.Fprintf(w, "scored %d parameter settings in %.1fs; %d meta choices per fold\n", len(cands), time.Since(start).Seconds(), len(metas))
	for _, p := range nab.Profiles {
		r, err := nab.NestedCrossValidate(curves, metas, p)
		if err != nil {
			return fmt.Errorf("%w: %v (--grid %s or %s need only two)", errUsage, err, gridTuning, gridDefaults)
		}
		fmt.Fprintf(w, "\n%s profile: nested leave-one-category-out %.2f (TP %d FP %d FN %d)\n", p.Name, r.Normalised, r.TP, r.FP, r.FN)
		for _, f := range r.Folds {
			fmt.Fprintf(w, "  held out %s: chose %s on the others (inner score %.2f)\n", f.Category, f.Meta, f.Inner)
			fmt.Fprintf(w, "    then %s at threshold %.4f (train %.2f); held-out raw %.2f, TP %d FP %d FN %d\n", f.Candidate, f.Threshold, f.Train, f.Raw, f.TP, f.FP, f.FN)
		}
		fmt.Fprintf(w, "  for comparison, plain leave-one-category-out with the meta choice fixed:\n")
		for i, m := range metas {
			if !verbose && !slices.Contains(fixedDefaults, m.Name) {
				continue
			}
			f, err := nab.FixedCrossValidate(curves, metas[i], p)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "    %-48s %6.2f (TP %d FP %d FN %d)\n", m.Name, f.Normalised, f.TP, f.FP, f.FN)
		}
		best, bestName, bestThr := math.Inf(-1), "", 0.0
		for _, c := range curves {
			thr, score := c.Best(p)
			if score > best {
				best, bestName, bestThr = score, c.Name, thr
			}
		}
		fmt.Fprintf(w, "  in-sample (all files, chosen on all files, thresholds %g apart): %.2f with %s at threshold %.4f\n", nab.ThresholdStep, best, bestName, bestThr)
	}
	return nil
}
