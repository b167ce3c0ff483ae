package nab

import (
	"math"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) < 1e-5 }

func TestScaledSigmoid(t *testing.T) {
	for _, c := range []struct{ y, want float64 }{
		{-1, 0.9866142981514305}, // 2/(1+e^-5) - 1
		{-0.5, 0.8482836399575129},
		{0, 0},
		{1, -0.9866142981514305},
		{3, -0.9999994}, // 2/(1+e^15) - 1
		{3.01, -1},      // beyond 3 it is exactly -1
	} {
		if got := ScaledSigmoid(c.y); math.Abs(got-c.want) > 1e-6 {
			t.Errorf("ScaledSigmoid(%v) = %v, want %v", c.y, got, c.want)
		}
	}
}

func TestProbationLength(t *testing.T) {
	for _, c := range []struct{ n, want int }{{20, 3}, {100, 15}, {1243, 186}, {4032, 604}, {5000, 750}, {10000, 750}} {
		if got := ProbationLength(c.n); got != c.want {
			t.Errorf("ProbationLength(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

// file200 is a 200-row file (probation 30 rows) with one window, rows
// 100-104, and detections (score 1) at the given rows.
func file200(name string, detections ...int) File {
	f := File{Name: name, Scores: make([]float64, 200), Windows: []Window{{100, 104}}}
	for _, i := range detections {
		f.Scores[i] = 1
	}
	return f
}

// TestScoreHandComputed checks small cases worked out by hand. A window of
// width 5 ending at row 104: a detection at row i sits at y = -(104-i+1)/5;
// its true-positive value is ScaledSigmoid(y)/ScaledSigmoid(-1). A false
// positive j rows after the window sits at y = j/(5-1).
func TestScoreHandComputed(t *testing.T) {
	cases := []struct {
		name       string
		files      []File
		profile    Profile
		raw, norm  float64
		tp, fp, fn int // summed over files at the chosen threshold
	}{
		{"no detections", []File{file200("a")}, Standard, -1, 0, 0, 0, 1},
		{"first row of window", []File{file200("a", 100)}, Standard, 1, 100, 1, 0, 0},
		// y = -0.6: (2/(1+e^-3) - 1) / 0.986614 = 0.905148 / 0.986614
		{"middle of window", []File{file200("a", 102)}, Standard, 0.917430, 95.8715, 1, 0, 0},
		// only the earliest detection in a window counts: row 101, y = -0.8
		{"two in one window", []File{file200("a", 101, 103)}, Standard, 0.977108, 98.8554, 1, 0, 0},
		// a false positive before any window costs the full FP weight
		{"FP before window", []File{file200("a", 50, 100)}, Standard, 1 - 0.11, 94.5, 1, 1, 0},
		{"FP before window, low-FP profile", []File{file200("a", 50, 100)}, RewardLowFPRate, 1 - 0.22, 89, 1, 1, 0},
		// two rows after the window: y = 0.5, 0.11 × (2/(1+e^2.5) - 1)
		{"FP after window", []File{file200("a", 100, 106)}, Standard, 1 - 0.11*0.8482836, 95.33444, 1, 1, 0},
		// detections in the probationary rows 0-29 are ignored
		{"probation ignored", []File{file200("a", 10)}, Standard, -1, 0, 0, 0, 1},
		// a missed window costs 2 under reward_low_FN_rate: raw 1 - 2 = -1,
		// null -4, perfect 2, normalised 100 × 3/6
		{"missed window, low-FN profile", []File{file200("a"), file200("b", 100)}, RewardLowFNRate, -1, 50, 1, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := Score(c.files, c.profile)
			if !near(r.Raw, c.raw) || math.Abs(r.Normalised-c.norm) > 1e-3 {
				t.Errorf("raw %.6f normalised %.4f, want %.6f and %.4f", r.Raw, r.Normalised, c.raw, c.norm)
			}
			tp, fp, fn := 0, 0, 0
			sum := 0.0
			for _, f := range r.Files {
				tp, fp, fn = tp+f.TP, fp+f.FP, fn+f.FN
				sum += f.Raw
			}
			if tp != c.tp || fp != c.fp || fn != c.fn {
				t.Errorf("TP/FP/FN %d/%d/%d, want %d/%d/%d", tp, fp, fn, c.tp, c.fp, c.fn)
			}
			if !near(sum, r.Raw) {
				t.Errorf("per-file raw scores sum to %.6f, corpus raw is %.6f", sum, r.Raw)
			}
		})
	}
}

// TestThresholdIsCorpusWide checks that one threshold serves every file:
// file a's true positive scores 0.6 and file b's false positive 0.7, so
// the best threshold (0.6) takes both (-1 -1 + 1 + 1 - 0.11 = -0.11 over
// two windows), not a per-file choice that would drop the false positive.
func TestThresholdIsCorpusWide(t *testing.T) {
	a, b := file200("a"), file200("b")
	a.Scores[100] = 0.6
	b.Scores[50] = 0.7
	r := Score([]File{a, b}, Standard)
	if r.Threshold != 0.6 || !near(r.Raw, 1-1-0.11) {
		t.Fatalf("threshold %v raw %v, want 0.6 and %v", r.Threshold, r.Raw, 1-1-0.11)
	}
	if want := 100 * (-0.11 + 2) / 4; math.Abs(r.Normalised-want) > 1e-6 {
		t.Errorf("normalised %v, want %v", r.Normalised, want)
	}
}

func TestNullDetectorScoresZero(t *testing.T) {
	f := file200("a")
	for i := range f.Scores {
		f.Scores[i] = 0.5
	}
	if r := Score([]File{f}, Standard); r.Normalised != 0 || r.Null != -1 {
		t.Errorf("constant scores: normalised %v null %v, want 0 and -1", r.Normalised, r.Null)
	}
	// On a file this short detecting everything beats detecting nothing;
	// the null detector then gets that score, and still normalises to 0.
	short := File{Name: "s", Scores: make([]float64, 20), Windows: []Window{{10, 14}}}
	if r := Score([]File{short}, Standard); r.Normalised != 0 || r.Null <= -1 {
		t.Errorf("short file: normalised %v null %v, want 0 and > -1", r.Normalised, r.Null)
	}
}

func TestReadCSVErrorsNameFileAndLine(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"timestamp,value\n2014-01-01 00:00:00,1\n2014-01-01 00:05:00,abc\n", "x.csv:3: value \"abc\" is not a number"},
		{"timestamp,value\nyesterday,1\n", "x.csv:2: timestamp \"yesterday\""},
		{"timestamp,value\n2014-01-01 00:00:00\n", "x.csv:2: want timestamp,value"},
	} {
		_, _, err := ReadCSV(strings.NewReader(c.in), "x.csv")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ReadCSV(%q) error %v, want it to contain %q", c.in, err, c.want)
		}
	}
	ts, vs, err := ReadCSV(strings.NewReader("timestamp,value\n2014-01-01 00:00:00,1.5\n2014-01-01T00:05:00Z,2\n"), "ok.csv")
	if err != nil || len(vs) != 2 || vs[1] != 2 || !ts[1].Equal(time.Date(2014, 1, 1, 0, 5, 0, 0, time.UTC)) {
		t.Errorf("ReadCSV good input: %v %v %v", ts, vs, err)
	}
}
