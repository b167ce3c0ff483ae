package aggregate

import (
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators/js"
)

func TestSketchRelativeError(t *testing.T) {
	rng := testutil.Rand(t, 2)
	dists := map[string]func() float64{
		"uniform":     func() float64 { return rng.Float64() * 1000 },
		"exponential": func() float64 { return rng.ExpFloat64() * 50 },
		"lognormal":   func() float64 { return math.Exp(rng.NormFloat64() * 2) },
		"pareto":      func() float64 { return math.Pow(1-rng.Float64(), -1/1.5) },
		"mixed sign":  func() float64 { return rng.NormFloat64() * 100 },
		"integers":    func() float64 { return float64(rng.IntN(300)) },
	}
	for name, gen := range dists {
		t.Run(name, func(t *testing.T) {
			n := 100_000
			if testing.Short() {
				n = 10_000
			}
			vals := make([]float64, n)
			// Half into one sketch, half into another, then merged: the
			// merge path must be as accurate as the direct one.
			a, b := NewSketch(), NewSketch()
			for i := range vals {
				vals[i] = gen()
				if i%2 == 0 {
					a.Add(vals[i])
				} else {
					b.Add(vals[i])
				}
			}
			a.Merge(b)
			slices.Sort(vals)
			for _, q := range []float64{0, 0.01, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999, 1} {
				exact := vals[int(q*float64(n-1))]
				got := a.Quantile(q)
				if relErr(got, exact) > 0.01 {
					t.Errorf("q=%v: got %v, exact %v (rel err %.4f)", q, got, exact, relErr(got, exact))
				}
			}
		})
	}
}

func relErr(got, exact float64) float64 {
	if exact == 0 {
		return math.Abs(got)
	}
	return math.Abs(got-exact) / math.Abs(exact)
}

func TestSketchRoundTrip(t *testing.T) {
	s := NewSketch()
	for i := -50; i < 1000; i++ {
		s.Add(float64(i) * 1.7)
	}
	b, _ := s.MarshalBinary()
	var r Sketch
	if err := r.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	for _, q := range []float64{0, 0.3, 0.5, 0.99, 1} {
		if s.Quantile(q) != r.Quantile(q) {
			t.Fatalf("q=%v differs after round trip", q)
		}
	}
	if err := r.UnmarshalBinary(b[:len(b)-1]); err == nil {
		t.Fatal("truncated sketch decoded")
	}
}

func TestHLLError(t *testing.T) {
	sizes := []int{0, 1, 10, 1000, 1025, 5000, 20_000, 50_000, 100_000, 500_000}
	if testing.Short() {
		sizes = sizes[:7]
	}
	for _, n := range sizes {
		h, parts := NewHLL(), []*HLL{NewHLL(), NewHLL(), NewHLL()}
		for i := 0; i < n; i++ {
			v := fmt.Sprintf("user-%d", i)
			h.AddValue(v)
			h.AddValue(v) // duplicates do not count
			parts[i%3].AddValue(v)
		}
		merged := NewHLL()
		for _, p := range parts {
			merged.Merge(p)
		}
		for name, got := range map[string]uint64{"direct": h.Estimate(), "merged": merged.Estimate()} {
			if e := relErr(float64(got), float64(n)); e > 0.02 {
				t.Errorf("n=%d %s: estimate %d (rel err %.4f)", n, name, got, e)
			}
		}
		b, _ := merged.MarshalBinary()
		var r HLL
		if err := r.UnmarshalBinary(b); err != nil || r.Estimate() != merged.Estimate() {
			t.Fatalf("n=%d: round trip: %v", n, err)
		}
	}
	var h HLL
	h.AddValue(3)
	h.AddValue(3.0)
	h.AddValue(int64(3))
	h.AddValue("3")
	h.AddValue("x")
	if got := h.Estimate(); got != 2 {
		t.Fatalf("3, 3.0, int64(3), \"3\", \"x\": got %d distinct, want 2", got)
	}
}

func compile(t *testing.T, functions string, specs ...Spec) *Instance {
	t.Helper()
	c, err := Compile(functions, specs, js.Options{})
	if err != nil {
		t.Fatal(err)
	}
	in, err := c.Instance()
	if err != nil {
		t.Fatal(err)
	}
	return in
}

func mustParse(t *testing.T, name, expr string) Spec {
	t.Helper()
	s, err := Parse(name, expr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBuiltins(t *testing.T) {
	in := compile(t, "",
		mustParse(t, "n", "count"), mustParse(t, "n_ms", "count(ms)"), mustParse(t, "total", "sum(ms)"),
		mustParse(t, "mean", "avg(ms)"), mustParse(t, "lo", "min(ms)"), mustParse(t, "hi", "max(req.size)"),
		mustParse(t, "med", "p50(ms)"), mustParse(t, "users", "distinct(user)"))
	accs, _ := in.New()
	recs := []map[string]any{
		{"ms": 10.0, "user": "a", "req": map[string]any{"size": int64(5)}},
		{"ms": int64(30), "user": "b", "req": map[string]any{"size": 7.5}},
		{"ms": "20", "user": "a"},
		{"user": "c"},
		{"ms": "oops", "user": nil},
	}
	for _, r := range recs {
		if err := in.Add(accs, r); err != nil {
			t.Fatal(err)
		}
	}
	got := in.Results(accs)
	want := []any{int64(5), int64(4), 60.0, 20.0, 10.0, 7.5, got[6], int64(3)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
	if relErr(got[6].(float64), 20) > 0.01 {
		t.Fatalf("p50 = %v", got[6])
	}
	empty, _ := in.New()
	if r := in.Results(empty); r[0] != int64(0) || r[2] != 0.0 || r[3] != nil || r[4] != nil || r[6] != nil || r[7] != int64(0) {
		t.Fatalf("empty results %v", r)
	}
	b, err := in.Marshal(accs)
	if err != nil {
		t.Fatal(err)
	}
	back, err := in.Unmarshal(b)
	if err != nil || !reflect.DeepEqual(in.Results(back), got) {
		t.Fatalf("round trip: %v %v", err, in.Results(back))
	}
	if err := in.Merge(back, accs); err != nil {
		t.Fatal(err)
	}
	if r := in.Results(back); r[0] != int64(10) || r[2] != 120.0 || r[3] != 20.0 || r[7] != int64(3) {
		t.Fatalf("merged %v", r)
	}
	if _, err := in.Unmarshal(b[:len(b)-2]); err == nil {
		t.Fatal("truncated state decoded")
	}
}

func TestCustomAggregates(t *testing.T) {
	object := Spec{Name: "spread", Func: Custom, Object: `{
		init() { return {lo: Infinity, hi: -Infinity} },
		add(acc, r) { acc.lo = Math.min(acc.lo, r.v); acc.hi = Math.max(acc.hi, r.v) },
		merge(a, b) { return {lo: Math.min(a.lo, b.lo), hi: Math.max(a.hi, b.hi)} },
		result(acc) { return this.width(acc) },
		width(acc) { return acc.hi - acc.lo },
	}`}
	four := Spec{Name: "csv", Func: Custom, Type: String, Init: "() => []", Add: "(acc, r) => acc.concat([tag(r.v)])",
		Merge: "(a, b) => a.concat(b)", Result: "acc => acc.join(',')"}
	in := compile(t, "function tag(v) { return 'v' + v }", object, four)
	a, _ := in.New()
	b, _ := in.New()
	for i, v := range []int{4, 9, 1, 7} {
		dst := a
		if i%2 == 1 {
			dst = b
		}
		if err := in.Add(dst, map[string]any{"v": v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := in.Merge(a, b); err != nil {
		t.Fatal(err)
	}
	if got := in.Results(a); got[0] != 8.0 || got[1] != "v4,v1,v9,v7" {
		t.Fatalf("got %v", got)
	}
	// State moves between VMs (tasks, processes) as JSON.
	other := compile(t, "function tag(v) { return 'v' + v }", object, four)
	data, err := in.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	c, err := other.Unmarshal(data)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := other.New()
	other.Add(d, map[string]any{"v": 20})
	if err := other.Merge(c, d); err != nil {
		t.Fatal(err)
	}
	if got := other.Results(c); got[0] != 19.0 || got[1] != "v4,v1,v9,v7,v20" {
		t.Fatalf("after move: %v", got)
	}
	// A throwing add names the aggregate.
	bad := compile(t, "", Spec{Name: "boom", Func: Custom, Object: `{init: () => 0, add: (a, r) => r.x.y, merge: (a, b) => a + b}`})
	accs, _ := bad.New()
	if err := bad.Add(accs, map[string]any{}); err == nil || !strings.Contains(err.Error(), `aggregate "boom"`) {
		t.Fatalf("want error naming the aggregate, got %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := map[string][]Spec{
		"no aggregates": nil,
		"unknown":       {{Name: "x", Func: "median", Field: "a"}},
		"no field":      {{Name: "x", Func: Sum}},
		"duplicate":     {{Name: "x", Func: Count}, {Name: "x", Func: Count}},
		"reserved":      {{Name: "key", Func: Count}},
		"not an object": {{Name: "x", Func: Custom, Object: "42"}},
		"syntax":        {{Name: "x", Func: Custom, Object: "{init() {"}},
	}
	for name, specs := range cases {
		c, err := Compile("", specs, js.Options{})
		if err == nil {
			_, err = c.Instance()
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestSketchCollapse: values spread over more magnitudes than the sketch
// keeps collapse at the low end; high quantiles stay accurate and the
// sketch stays bounded.
func TestSketchCollapse(t *testing.T) {
	s := NewSketch()
	var vals []float64
	for k := -8; k <= 300; k++ {
		for j := 1; j <= 9; j++ {
			v := float64(j) * math.Pow(10, float64(k))
			vals = append(vals, v)
			s.Add(v)
		}
	}
	if len(s.pos.counts) > maxBuckets || !s.pos.collapsed {
		t.Fatalf("buckets %d collapsed %v", len(s.pos.counts), s.pos.collapsed)
	}
	slices.Sort(vals)
	// The kept buckets span about 1e33; q >= 0.9 lies within them.
	for _, q := range []float64{0.9, 0.99, 1} {
		exact := vals[int(q*float64(len(vals)-1))]
		if e := relErr(s.Quantile(q), exact); e > 0.01 {
			t.Errorf("q=%v: got %v exact %v", q, s.Quantile(q), exact)
		}
	}
}
