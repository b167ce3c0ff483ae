package anomaly

import (
	"bytes"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// artSeries is a noisy seasonal series with a spike at 1500 and a level
// shift from 2500.
func artSeries(t *testing.T, n int) []float64 {
	rng := testutil.Rand(t, 1)
	out := make([]float64, n)
	for i := range out {
		out[i] = 100 + seasonal(i) + rng.NormFloat64()
		if i == 1500 {
			out[i] += 40
		}
		if i >= 2500 {
			out[i] += 30
		}
	}
	return out
}

// TestARTimeRestoreAnywhere checkpoints an artime detector at points in
// its probation, at its end and after it, restores each, and checks that
// the restored detector gives exactly the original's results from there
// on: a checkpoint may fall anywhere in the model's life.
func TestARTimeRestoreAnywhere(t *testing.T) {
	series := artSeries(t, 3000)
	cfg := Config{Method: MethodARTime}
	for _, at := range []int{0, 1, 7, 300, 599, 600, 601, 1501, 2600} {
		orig, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		for i := range at {
			orig.Score(time.Time{}, series[i:i+1])
		}
		data, err := orig.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		restored, err := Restore(cfg, data)
		if err != nil {
			t.Fatalf("checkpoint at %d: %v", at, err)
		}
		for i := at; i < len(series); i++ {
			a, b := orig.Score(time.Time{}, series[i:i+1]), restored.Score(time.Time{}, series[i:i+1])
			if a.Score != b.Score || a.IsAnomaly != b.IsAnomaly || a.Explanation.Z != b.Explanation.Z {
				t.Fatalf("checkpoint at %d, point %d: original %v, restored %v", at, i, a.Score, b.Score)
			}
		}
		// Both have learned the same: their states serialise alike.
		sa, _ := orig.MarshalBinary()
		sb, _ := restored.MarshalBinary()
		if !bytes.Equal(sa, sb) {
			t.Errorf("checkpoint at %d: states differ after the rest of the series", at)
		}
	}
}

// TestARTimeDeterministic: two detectors fed the same points give the
// same scores, point for point.
func TestARTimeDeterministic(t *testing.T) {
	series := artSeries(t, 3000)
	run := func() []float64 {
		d, err := New(Config{Method: MethodARTime, Fields: []string{"a", "b"}})
		if err != nil {
			t.Fatal(err)
		}
		out := make([]float64, len(series))
		for i, v := range series {
			out[i] = d.Score(time.Time{}, []float64{v, -v / 2}).Score
		}
		return out
	}
	a, b := run(), run()
	if diff := testutil.Diff(a, b); diff != "" {
		t.Fatalf("two runs differ:\n%s", diff)
	}
}

// TestARTimeFlagsAndExplains: after its probation artime is silent on the
// seasonal series, flags the spike within a downsampled window and
// explains it (the value field, high, 3 or more robust deviations out: the
// spike is about 4 of the seasonal baseline's), and notices the level
// shift (a score above 0: a sample that resonated with no category),
// though not always at the default threshold (docs/anomaly.md).
func TestARTimeFlagsAndExplains(t *testing.T) {
	series := artSeries(t, 3000)
	d, err := New(Config{Method: MethodARTime})
	if err != nil {
		t.Fatal(err)
	}
	spike, shift := -1, -1
	for i, v := range series {
		r := d.Score(time.Time{}, []float64{v})
		switch {
		case i < DefaultProbation && r.Score != 0:
			t.Fatalf("point %d: score %v during the probation", i, r.Score)
		case i < 1500 && r.IsAnomaly:
			t.Errorf("normal point %d flagged (score %v)", i, r.Score)
		case i >= 1500 && i < 1500+artWindow && r.IsAnomaly && spike < 0:
			spike = i
			if e := r.Explanation; e.Name != "value" || e.Direction != "high" || e.Z < 3 {
				t.Errorf("point %d: explanation %+v, want value high with z ≥ 3", i, e)
			}
		case i >= 2500 && i < 2500+2*artWindow && r.Score > 0 && shift < 0:
			shift = i
		}
	}
	if spike < 0 || shift < 0 {
		t.Errorf("spike flagged at %d, shift scored at %d: want both (-1: not seen)", spike, shift)
	}
}

// TestARTimeWidenKeepsCategories: widening the range maps a category's
// weights to exactly what learning the same raw values in the wider range
// would have given, so what the network learned keeps its meaning.
func TestARTimeWidenKeepsCategories(t *testing.T) {
	raw := [][]float64{{2, 4, 6, 8, 10, 8, 6, 4}, {3, 3, 7, 9, 10, 9, 5, 2}}
	learn := func(lo, hi float64) []float64 {
		a := newARTime(DefaultProbation)
		a.Lo, a.Hi = lo, hi
		var w []float64
		for _, r := range raw {
			f := make([]float64, artDim)
			for i, v := range r {
				f[artWindow+i] = a.normalise(v)
			}
			x := make([]float64, artComp)
			for i, v := range f {
				x[i], x[artDim+i] = v, 1-v
			}
			if w == nil {
				w = x
				continue
			}
			for i := range w {
				w[i] = min(w[i], x[i])
			}
		}
		return w
	}
	a := newARTime(DefaultProbation)
	a.Lo, a.Hi = 0, 10
	a.Net.W = learn(0, 10)
	a.Net.Used = []int64{1}
	a.Net.Cats = 1
	a.widen(-10, 30)
	want := learn(-10, 30)
	for i := range want {
		if math.Abs(a.Net.W[i]-want[i]) > 1e-12 {
			t.Fatalf("weight %d: %v after widening, want %v", i, a.Net.W[i], want[i])
		}
	}
}

// TestARTimeBoundedMemory feeds a long series that keeps making new
// shapes: the network stops at artMaxCategories and keeps scoring.
func TestARTimeBoundedMemory(t *testing.T) {
	rng := testutil.Rand(t, 2)
	d, err := New(Config{Method: MethodARTime, Probation: 64})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40000 {
		v := rng.NormFloat64() * float64(1+i%50)
		r := d.Score(time.Time{}, []float64{v})
		if !(r.Score >= 0 && r.Score <= 1) {
			t.Fatalf("point %d: score %v", i, r.Score)
		}
	}
	a := d.(*detector).st.ART[0]
	if a.Net.Cats > artMaxCategories || len(a.Net.W) != a.Net.Cats*artComp || len(a.Net.Used) != a.Net.Cats {
		t.Fatalf("%d categories, %d weights, %d uses; cap %d", a.Net.Cats, len(a.Net.W), len(a.Net.Used), artMaxCategories)
	}
	if a.Net.Cats < artMaxCategories {
		t.Logf("only %d categories: the cap was not exercised", a.Net.Cats)
	}
}

func TestARTimeConfig(t *testing.T) {
	if _, err := New(Config{Method: MethodARTime, Probation: minProbation - 1}); !errors.Is(err, ErrInvalidConfig) {
		t.Errorf("probation %d: err %v, want ErrInvalidConfig", minProbation-1, err)
	}
	if c := (Config{Method: MethodARTime}).withDefaults(); c.Suppress != 0 || c.Probation != DefaultProbation {
		t.Errorf("defaults: suppress %d probation %d, want 0 (artime masks itself) and %d", c.Suppress, c.Probation, DefaultProbation)
	}
	// A corrupt model is refused, not run.
	d, _ := New(Config{Method: MethodARTime})
	for i := range 700 {
		d.Score(time.Time{}, []float64{float64(i % 9)})
	}
	d.(*detector).st.ART[0].Net.Cats++
	data, err := d.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(Config{Method: MethodARTime}, data); !errors.Is(err, ErrBadState) {
		t.Errorf("restore of a model whose category count disagrees with its weights: err %v, want ErrBadState", err)
	}
}
