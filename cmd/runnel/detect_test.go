package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/nab"
	"github.com/runnel-dev/runnel/operators/anomaly"
)

// writeSeries writes a NAB-format CSV of n five-minute points with a level
// shift of +50 at row shift (none if shift < 0).
func writeSeries(t *testing.T, path string, n, shift int) {
	t.Helper()
	var b strings.Builder
	b.WriteString("timestamp,value\n")
	t0 := time.Date(2014, 2, 14, 14, 30, 0, 0, time.UTC)
	for i := range n {
		v := 10 + float64(i%7)
		if shift >= 0 && i >= shift {
			v += 50
		}
		fmt.Fprintf(&b, "%s,%g\n", t0.Add(time.Duration(i)*5*time.Minute).Format("2006-01-02 15:04:05"), v)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestDetectCSVMatchesDetector checks the CLI's output columns and that its
// scores are exactly the Detector's, point by point.
func TestDetectCSVMatchesDetector(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in.csv"), filepath.Join(dir, "out.csv")
	writeSeries(t, in, 600, 400)
	if err := runDetect([]string{"--in", in, "--out", out, "--method", "ensemble"}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(got)), "\n")
	if !strings.HasPrefix(lines[0], "timestamp,value,anomaly_score,") || len(lines) != 601 {
		t.Fatalf("header %q and %d lines, want timestamp,value,anomaly_score,... and 601", lines[0], len(lines))
	}
	ts, values, err := nab.ReadCSVFile(in)
	if err != nil {
		t.Fatal(err)
	}
	want, err := scoreSeries(anomaly.Config{Method: "ensemble"}, ts, values)
	if err != nil {
		t.Fatal(err)
	}
	flagged := false
	for i, line := range lines[1:] {
		cols := strings.Split(line, ",")
		if cols[0] != ts[i].Format("2006-01-02 15:04:05") {
			t.Fatalf("row %d timestamp %q, want %q", i, cols[0], ts[i].Format("2006-01-02 15:04:05"))
		}
		score, err := strconv.ParseFloat(cols[2], 64)
		if err != nil || score != mustRound(want[i].Score) {
			t.Fatalf("row %d score %q, detector says %v", i, cols[2], want[i].Score)
		}
		if i == 400 && cols[3] == "true" && cols[8] == "high" {
			flagged = true
		}
	}
	if !flagged {
		t.Errorf("the level shift at row 400 was not flagged as a high anomaly")
	}
}

func mustRound(v float64) float64 {
	r, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', 6, 64), 64)
	return r
}

func TestDetectBadInputNamesFileAndLine(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	if err := os.WriteFile(bad, []byte("timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := runDetect([]string{"--in", bad, "--out", filepath.Join(dir, "o.csv")})
	if err == nil || !strings.Contains(err.Error(), bad+":3") {
		t.Errorf("bad row: error %v, want it to name %s:3", err, bad)
	}
	missing := filepath.Join(dir, "missing.csv")
	if err := runDetect([]string{"--in", missing}); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("missing file: error %v, want it to name %s", err, missing)
	}
	for _, args := range [][]string{
		{},
		{"--in", bad, "--method", "nope"},
		{"--in", bad, "--method", "all"},
		{"--in", bad, "--threshold", "2"},
		{"--evaluate", dir, "--profile", "lenient"},
	} {
		if err := runDetect(args); !errors.Is(err, errUsage) {
			t.Errorf("runDetect(%q) = %v, want a usage error", args, err)
		}
	}
}

// TestDetectEvaluate runs --evaluate on a two-file corpus: one file with a
// level shift inside its labelled window, one without anomalies.
func TestDetectEvaluate(t *testing.T) {
	dir := t.TempDir()
	writeSeries(t, filepath.Join(dir, "data", "a", "shift.csv"), 1000, 700)
	writeSeries(t, filepath.Join(dir, "data", "a", "calm.csv"), 1000, -1)
	labels := `{"a/shift.csv": [["2014-02-16 21:30:00", "2014-02-17 05:45:00"]], "a/calm.csv": []}`
	if err := os.WriteFile(filepath.Join(dir, "labels.json"), []byte(labels), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	err := evaluateNAB(&out, filepath.Join(dir, "data"), "", []string{"novelty", "ensemble"}, anomaly.Config{}, nab.Standard, true)
	if err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, want := range []string{"2 files, 2000 points, 1 anomaly windows", "a/shift.csv", "a/calm.csv"} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && (f[0] == "novelty" || f[0] == "ensemble") {
			if score, _ := strconv.ParseFloat(f[1], 64); score < 90 {
				t.Errorf("%s scored %v on an obvious level shift, want >= 90:\n%s", f[0], score, text)
			}
		}
	}
}

// TestDetectCrossValidate runs --evaluate --cross-validate on a corpus of
// two categories, each with a level shift inside its labelled window: each
// fold is chosen on the other category and still finds its shift.
func TestDetectCrossValidate(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []string{"a", "b"} {
		writeSeries(t, filepath.Join(dir, "data", c, "shift.csv"), 1000, 700)
		writeSeries(t, filepath.Join(dir, "data", c, "calm.csv"), 1000, -1)
	}
	labels := `{"a/shift.csv": [["2014-02-16 21:30:00", "2014-02-17 05:45:00"]], "a/calm.csv": [],
		"b/shift.csv": [["2014-02-16 21:30:00", "2014-02-17 05:45:00"]], "b/calm.csv": []}`
	if err := os.WriteFile(filepath.Join(dir, "labels.json"), []byte(labels), 0o644); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := crossValidateDir(&out, filepath.Join(dir, "data"), "", []string{"novelty", "ensemble"}, gridDefaults, anomaly.Config{}, false); err != nil {
		t.Fatal(err)
	}
	text := out.String()
	for _, p := range nab.Profiles {
		if !strings.Contains(text, p.Name+" profile: leave-one-category-out") {
			t.Errorf("no cross-validated %s score:\n%s", p.Name, text)
		}
	}
	for _, line := range strings.Split(text, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[1] == "leave-one-category-out" {
			if score, _ := strconv.ParseFloat(f[2], 64); score < 90 {
				t.Errorf("cross-validated %v on an obvious level shift, want >= 90:\n%s", score, text)
			}
		}
	}
	if n := strings.Count(text, "\n  a "); n != 3 {
		t.Errorf("want one fold holding out a per profile (3), got %d:\n%s", n, text)
	}
	if err := runDetect([]string{"--cross-validate"}); !errors.Is(err, errUsage) {
		t.Errorf("--cross-validate without --evaluate: %v, want a usage error", err)
	}
}
