package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/nab"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/anomaly"
	"github.com/runnel-dev/runnel/operators/detect"
)

func init() {
	register("detect", "anomaly scores for a timestamp,value CSV; NAB evaluation", runDetect)
}

func runDetect(args []string) error {
	fs := newFlags("detect", "detect --in FILE.csv [--out FILE.csv] [--method NAME] | detect --evaluate DIR [--labels FILE] [--method NAME|all] [--cross-validate]", `
Scores a timestamp,value CSV (the NAB format: a header row, then one row per point in time
order) with the same detector the job file's detect operator uses, one point at a time, and
writes timestamp,value,anomaly_score followed by is_anomaly, expected, low, high,
explain_field and explain_direction (docs/anomaly.md says how to read them).

With --evaluate it scores every CSV under DIR and prints each method's normalised Numenta
Anomaly Benchmark score (0 = the null detector, 100 = perfect) for --profile, with the
corpus-wide threshold that achieves it; -v adds per-file detail.

With --evaluate and --cross-validate it runs leave-one-category-out cross-validation (the
categories are DIR's subdirectories): for each category, the method (with --method all) and
the threshold are chosen on the other categories and the held-out one is scored with them;
it prints the combined held-out score for every profile, each fold, and the in-sample score
beside it. With --grid nested (the default) the cross-validation is nested: each fold also
chooses the grid of the default method's constants, its per-series level's quantile and the
threshold plateau's width by a leave-one-category-out on its own training categories, so no
choice sees the held-out category; --grid tuning and --grid defaults keep those fixed.`)
	in := fs.String("in", "", "input CSV (timestamp,value)")
	out := fs.String("out", "-", "output CSV; - is stdout")
	method := fs.String("method", anomaly.MethodAuto, "detection method: "+strings.Join(anomaly.Methods, ", ")+" (all: every method, with --evaluate)")
	threshold := fs.Float64("threshold", 0, "score at or above which a point is an anomaly, in (0, 1]; 0 means the method's default")
	seed := fs.Int64("seed", 0, "random seed (rcf): the same seed and input give the same scores")
	evaluate := fs.String("evaluate", "", "score the NAB corpus of CSV files under DIR instead of one file")
	labels := fs.String("labels", "", "NAB labels file for --evaluate (default: DIR/labels.json, else DIR/../labels.json)")
	profile := fs.String("profile", nab.Standard.Name, "NAB profile for --evaluate: standard, reward_low_FP_rate or reward_low_FN_rate")
	verbose := fs.Bool("v", false, "with --evaluate: per-file detail")
	cv := fs.Bool("cross-validate", false, "with --evaluate: leave-one-category-out cross-validation over each method's parameter grid, for every profile")
	grid := fs.String("grid", gridNested, "with --cross-validate: "+gridNested+" (each fold chooses the grid, level quantile and threshold plateau by an inner cross-validation on its training categories), "+gridTuning+" (one fixed grid of 27 settings of the default method's noise gate, knn alarm levels and per-series level) or "+gridDefaults+" (each method at its defaults)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q; give files with --in or --evaluate", errUsage, fs.Arg(0))
	}
	cfg := anomaly.Config{Method: *method, Threshold: *threshold, Seed: *seed}
	switch {
	case *evaluate != "" && *in != "":
		return fmt.Errorf("%w: give --in or --evaluate, not both", errUsage)
	case *evaluate != "":
		if fi, err := os.Stat(*evaluate); err != nil || !fi.IsDir() {
			return fmt.Errorf("--evaluate %s: not a directory of CSV files (the NAB corpus's data directory)", *evaluate)
		}
		prof, err := nab.ProfileByName(*profile)
		if err != nil {
			return fmt.Errorf("%w: --profile: %v", errUsage, err)
		}
		methods := []string{*method}
		if *method == "all" {
			methods = anomaly.ConcreteMethods
		}
		if *cv {
			if *grid != gridNested && *grid != gridTuning && *grid != gridDefaults {
				return fmt.Errorf("%w: --grid %q: want %s, %s or %s", errUsage, *grid, gridNested, gridTuning, gridDefaults)
			}
			return crossValidateDir(os.Stdout, *evaluate, *labels, methods, *grid, cfg, *verbose)
		}
		return evaluateNAB(os.Stdout, *evaluate, *labels, methods, cfg, prof, *verbose)
	case *cv:
		return fmt.Errorf("%w: --cross-validate needs --evaluate DIR", errUsage)
	case *in != "":
		if *method == "all" {
			return fmt.Errorf("%w: --method all needs --evaluate", errUsage)
		}
		return detectFile(*in, *out, cfg)
	default:
		return fmt.Errorf("%w: give --in FILE.csv or --evaluate DIR (see --help)", errUsage)
	}
}

// detectFile scores one CSV and writes the scored CSV.
func detectFile(inPath, outPath string, cfg anomaly.Config) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	ts, values, err := nab.ReadCSVFile(inPath)
	if err != nil {
		return err
	}
	results, err := scoreThroughOperator(cfg, ts, values)
	if err != nil {
		return err
	}
	var w io.Writer = os.Stdout
	if outPath != "-" {
		f, err := os.Create(outPath)
		if err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintln(bw, "timestamp,value,anomaly_score,is_anomaly,expected,low,high,explain_field,explain_direction")
	num := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	for i, r := range results {
		if _, scored := r[detect.FieldScore]; !scored {
			return fmt.Errorf("%s: row %d was not scored", inPath, i+2)
		}
		e, _ := r[detect.FieldExplanation].(map[string]any)
		fmt.Fprintf(bw, "%s,%s,%s,%t,%s,%s,%s,%s,%s\n", formatTime(ts[i]), num(values[i]),
			strconv.FormatFloat(r[detect.FieldScore].(float64), 'f', 6, 64), r[detect.FieldIsAnomaly].(bool),
			num(r[detect.FieldExpected].(float64)), num(r[detect.FieldLow].(float64)), num(r[detect.FieldHigh].(float64)), e["field"], e["direction"])
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	if f, ok := w.(*os.File); ok && f != os.Stdout {
		if err := f.Close(); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	}
	return nil
}

// scoreThroughOperator runs a series through the detect operator of job
// files, so the CLI and jobs score alike: one key, the value in field
// "value", event times from the CSV.
func scoreThroughOperator(cfg anomaly.Config, ts []time.Time, values []float64) ([]map[string]any, error) {
	op, err := detect.New(detect.Config{ID: "detect", Fields: []string{"value"}, Anomaly: cfg})
	if err != nil {
		return nil, err
	}
	defer op.Close()
	recs := make([]operators.Record, len(values))
	for i, v := range values {
		recs[i] = operators.Record{EventTime: ts[i].UnixMilli(), Value: map[string]any{"value": v}}
	}
	out := make([]map[string]any, 0, len(values))
	err = op.Process(context.Background(), &operators.Batch{Records: recs}, operators.EmitterFunc(func(r operators.Record) {
		out = append(out, r.Value.(map[string]any))
	}))
	return out, err
}

// formatTime writes a timestamp in the NAB form, with fractional seconds
// only when it has them.
func formatTime(t time.Time) string {
	if t.Nanosecond() == 0 {
		return t.Format("2006-01-02 15:04:05")
	}
	return t.Format("2006-01-02 15:04:05.999999999")
}

// loadNAB loads the corpus under dir with its labels file (default
// dir/labels.json, else dir/../labels.json).
func loadNAB(dir, labels string) ([]nab.Series, error) {
	if labels == "" {
		labels = filepath.Join(dir, "labels.json")
		if _, err := os.Stat(labels); err != nil {
			labels = filepath.Join(dir, "..", "labels.json")
		}
	}
	return nab.LoadCorpus(dir, labels)
}

// crossValidateDir is crossValidate on the corpus under dir.
func crossValidateDir(w io.Writer, dir, labels string, methods []string, grid string, base anomaly.Config, verbose bool) error {
	corpus, err := loadNAB(dir, labels)
	if err != nil {
		return err
	}
	return crossValidate(w, corpus, methods, grid, base, verbose)
}

// evaluateNAB prints each method's NAB score on the corpus under dir.
func evaluateNAB(w io.Writer, dir, labels string, methods []string, base anomaly.Config, prof nab.Profile, verbose bool) error {
	corpus, err := loadNAB(dir, labels)
	if err != nil {
		return err
	}
	points, windows := 0, 0
	for _, s := range corpus {
		points += len(s.Values)
		windows += len(s.Windows)
	}
	fmt.Fprintf(w, "NAB %s profile: %d files, %d points, %d anomaly windows\n", prof.Name, len(corpus), points, windows)
	fmt.Fprintf(w, "%-10s %8s %10s %6s %6s %6s %9s\n", "method", "score", "threshold", "TP", "FP", "FN", "seconds")
	for _, m := range methods {
		cfg := base
		cfg.Method = m
		if err := cfg.Validate(); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		start := time.Now()
		files, err := scoreCorpus(cfg, corpus)
		if err != nil {
			return err
		}
		elapsed := time.Since(start)
		r := nab.Score(files, prof)
		tp, fp, fn := 0, 0, 0
		for _, f := range r.Files {
			tp, fp, fn = tp+f.TP, fp+f.FP, fn+f.FN
		}
		fmt.Fprintf(w, "%-10s %8.2f %10.4f %6d %6d %6d %9.1f\n", m, r.Normalised, r.Threshold, tp, fp, fn, elapsed.Seconds())
		if verbose {
			for _, f := range r.Files {
				fmt.Fprintf(w, "  %-58s raw %7.3f  TP %d FP %d FN %d\n", f.Name, f.Raw, f.TP, f.FP, f.FN)
			}
		}
	}
	return nil
}
