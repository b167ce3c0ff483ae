package window

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
)

type resultKey struct {
	key        string
	start, end int64
}

type emitFunc func(operators.Record)

func (f emitFunc) Emit(r operators.Record) { f(r) }

// TestRandomEquivalence feeds random keyed records from 1–8 shards, each
// in bounded out-of-order event time, in random batch sizes and shard
// interleavings to 1–4 window instances (exchange by key hash), with
// watermarks at random moments, and checks the fired results equal a
// plain batch computation of the same windows: every window once, none
// late, the same aggregates. Half the runs pre-aggregate each shard batch
// with a Combiner and exchange *Partial records instead; a third keep the
// window state only as bytes (codecStore), as a Pebble store will.
func TestRandomEquivalence(t *testing.T) {
	for _, seed := range testutil.Seeds(t, 200, 40) {
		rng := rand.New(rand.NewPCG(seed, 99))
		cfg := randomConfig(rng)
		combine := rng.IntN(2) == 0
		if rng.IntN(3) == 0 {
			cfg.NewStore = newCodecStore
		}
		t.Run(fmt.Sprintf("seed=%d/%s/combine=%v/bytes=%v", seed, cfg.Kind, combine, cfg.NewStore != nil), func(t *testing.T) {
			runEquivalence(t, rng, cfg, combine)
		})
	}
}

func randomConfig(rng *rand.Rand) Config {
	cfg := Config{Job: "rand", ID: "w", AllowedLateness: time.Duration(rng.IntN(3)) * time.Second}
	switch rng.IntN(3) {
	case 0:
		cfg.Kind, cfg.Size = Tumbling, time.Duration(1+rng.IntN(10))*time.Second
	case 1:
		every := time.Duration(1+rng.IntN(5)) * time.Second
		cfg.Kind, cfg.Every, cfg.Size = Sliding, every, every*time.Duration(1+rng.IntN(4))+time.Duration(rng.IntN(2))*500*time.Millisecond
	default:
		cfg.Kind, cfg.Gap = Session, time.Duration(200+rng.IntN(3000))*time.Millisecond
	}
	cfg.Aggregates = []aggregate.Spec{
		{Name: "n", Func: aggregate.Count}, {Name: "s", Func: aggregate.Sum, Field: "v"},
		{Name: "lo", Func: aggregate.Min, Field: "v"}, {Name: "hi", Func: aggregate.Max, Field: "v"},
		{Name: "mean", Func: aggregate.Avg, Field: "v"}, {Name: "p95", Func: aggregate.P95, Field: "v"},
		{Name: "users", Func: aggregate.Distinct, Field: "u"},
	}
	return cfg
}

func runEquivalence(t *testing.T, rng *rand.Rand, cfg Config, combine bool) {
	nShards, nInst, nKeys := 1+rng.IntN(8), 1+rng.IntN(4), 1+rng.IntN(20)
	bound := int64(rng.IntN(3000))
	// Per shard, event times follow a non-decreasing base minus a jitter
	// within the bound, so no record is behind its shard's watermark.
	shards := make([][]operators.Record, nShards)
	var all []operators.Record
	for s := range shards {
		base := int64(rng.IntN(5000)) - 2000
		for i := range rng.IntN(200) {
			base += int64(rng.IntN(400))
			r := operators.Record{
				Key:       fmt.Sprintf("k%d", rng.IntN(nKeys)),
				EventTime: base - rng.Int64N(bound+1),
				Value:     map[string]any{"v": int64(rng.IntN(1000) - 200), "u": fmt.Sprintf("u%d", rng.IntN(50))},
				Origin:    fmt.Sprintf("shard-%d/%d", s, i),
			}
			shards[s] = append(shards[s], r)
			all = append(all, r)
		}
	}
	comp, err := Compile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ops := make([]*Operator, nInst)
	got := map[resultKey][]any{}
	emit := emitFunc(func(r operators.Record) {
		row := r.Value.(map[string]any)
		k := resultKey{row["key"].(string), row["window_start"].(int64), row["window_end"].(int64)}
		if _, dup := got[k]; dup {
			t.Errorf("window %v fired twice", k)
		}
		var vals []any
		for _, c := range comp.ResultColumns()[3:] {
			vals = append(vals, row[c.Name])
		}
		got[k] = vals
	})
	late := emitFunc(func(r operators.Record) { t.Errorf("late record %+v", r) })
	for i := range ops {
		if ops[i], err = comp.New(); err != nil {
			t.Fatal(err)
		}
		ops[i].SetSideOutput(operators.LateOutput, late)
	}
	ctx := context.Background()
	maxSeen := make([]int64, nShards)
	for i := range maxSeen {
		maxSeen[i] = math.MinInt64
		if len(shards[i]) == 0 {
			maxSeen[i] = math.MaxInt64
		}
	}
	pos := make([]int, nShards)
	lastWM := int64(math.MinInt64)
	combiners := make([]*Combiner, nShards)
	for s := range combiners {
		if combiners[s], err = comp.NewCombiner(nil); err != nil {
			t.Fatal(err)
		}
	}
	for {
		var live []int
		for s := range shards {
			if pos[s] < len(shards[s]) {
				live = append(live, s)
			}
		}
		if len(live) == 0 {
			break
		}
		s := live[rng.IntN(len(live))]
		n := min(1+rng.IntN(40), len(shards[s])-pos[s])
		batches := make([]operators.Batch, nInst)
		route := emitFunc(func(r operators.Record) {
			i := instanceOf(r.Key, nInst)
			batches[i].Records = append(batches[i].Records, r)
		})
		in := shards[s][pos[s] : pos[s]+n]
		for _, r := range in {
			maxSeen[s] = max(maxSeen[s], r.EventTime)
		}
		if combine {
			if err := combiners[s].Process(ctx, &operators.Batch{Records: in}, route); err != nil {
				t.Fatal(err)
			}
		} else {
			for _, r := range in {
				route.Emit(r)
			}
		}
		pos[s] += n
		if pos[s] == len(shards[s]) {
			maxSeen[s] = math.MaxInt64
		}
		for i, op := range ops {
			if err := op.Process(ctx, &batches[i], emit); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(3) == 0 {
			wm := satSub(slices.Min(maxSeen), bound)
			if slices.Min(maxSeen) == math.MaxInt64 {
				wm = math.MaxInt64
			}
			if wm < lastWM {
				t.Fatalf("watermark went back")
			}
			lastWM = wm
			for _, op := range ops {
				if err := op.OnWatermark(ctx, wm, emit); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	for _, op := range ops {
		op.OnWatermark(ctx, math.MaxInt64, emit)
		if st := op.Stats(); st.Windows != 0 || st.Late != 0 {
			t.Fatalf("after +inf: %+v", st)
		}
	}
	want := batchWindows(t, cfg, comp, all)
	same := len(got) == len(want)
	for k, w := range want {
		same = same && reflect.DeepEqual(got[k], w)
	}
	if !same {
		t.Fatalf("fired windows differ from the batch computation:\n%s", testutil.Diff(windowLines(want), windowLines(got)))
	}
}

// windowLines lists windows and their values, one line each, sorted.
func windowLines(m map[resultKey][]any) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		b := fmt.Sprintf("%s [%d,%d)", k.key, k.start, k.end)
		for _, x := range v {
			b += fmt.Sprintf(" %T(%v)", x, x)
		}
		out = append(out, b)
	}
	slices.Sort(out)
	return out
}

// batchWindows computes the windows of all records at once: assign each
// record its windows (sessions: sort a key's records and cut where the gap
// is exceeded), then aggregate. count, sum, min, max and avg are computed
// here directly; p95 and distinct with fresh sketches fed in event-time
// order (the sketches do not depend on order).
func batchWindows(t *testing.T, cfg Config, comp *Compiled, all []operators.Record) map[resultKey][]any {
	groups := map[resultKey][]operators.Record{}
	if cfg.Kind == Session {
		byKey := map[string][]operators.Record{}
		for _, r := range all {
			byKey[r.Key] = append(byKey[r.Key], r)
		}
		gap := cfg.Gap.Milliseconds()
		for k, rs := range byKey {
			slices.SortStableFunc(rs, func(a, b operators.Record) int { return int(a.EventTime - b.EventTime) })
			var cur []operators.Record
			start, end := int64(0), int64(0)
			for _, r := range rs {
				if len(cur) > 0 && r.EventTime > end {
					groups[resultKey{k, start, end}] = cur
					cur = nil
				}
				if len(cur) == 0 {
					start = r.EventTime
				}
				cur = append(cur, r)
				end = r.EventTime + gap
			}
			groups[resultKey{k, start, end}] = cur
		}
	} else {
		size, every := cfg.Size.Milliseconds(), cfg.Every.Milliseconds()
		if cfg.Kind == Tumbling {
			every = size
		}
		for _, r := range all {
			for start := floorDiv(r.EventTime, every) * every; start > r.EventTime-size; start -= every {
				k := resultKey{r.Key, start, start + size}
				groups[k] = append(groups[k], r)
			}
		}
	}
	inst, err := comp.aggs.Instance()
	if err != nil {
		t.Fatal(err)
	}
	out := map[resultKey][]any{}
	for k, rs := range groups {
		var sum, lo, hi int64 = 0, math.MaxInt64, math.MinInt64
		accs, _ := inst.New()
		for _, r := range rs {
			v := r.Value.(map[string]any)["v"].(int64)
			sum, lo, hi = sum+v, min(lo, v), max(hi, v)
			inst.Add(accs, r.Value)
		}
		sketch := inst.Results(accs)
		n := int64(len(rs))
		out[k] = []any{n, float64(sum), float64(lo), float64(hi), float64(sum) / float64(n), sketch[5], sketch[6]}
	}
	return out
}

// TestKeyJSAndErrors: a window computing its own key in JS, with a
// failing key sent to the dead-letter output.
func TestKeyJSAndErrors(t *testing.T) {
	op, err := New(Config{Job: "j", ID: "per-page", Kind: Tumbling, Size: time.Second,
		KeyJS: `r => r.page.toUpperCase()`, OnError: js.OnError{Mode: js.DeadLetter, Stream: "dlq"},
		Aggregates: []aggregate.Spec{{Name: "n", Func: aggregate.Count}}})
	if err != nil {
		t.Fatal(err)
	}
	var dead, out []operators.Record
	op.SetSideOutput(operators.DeadLetterOutput("per-page"), emitFunc(func(r operators.Record) { dead = append(dead, r) }))
	in := &operators.Batch{Records: []operators.Record{
		{Value: map[string]any{"page": "a"}, EventTime: 10, Origin: "s/1"},
		{Value: map[string]any{"nopage": 1}, EventTime: 20, Origin: "s/2"},
		{Value: map[string]any{"page": "a"}, EventTime: 30, Origin: "s/3"},
	}}
	collect := emitFunc(func(r operators.Record) { out = append(out, r) })
	if err := op.Process(context.Background(), in, collect); err != nil {
		t.Fatal(err)
	}
	op.OnWatermark(context.Background(), 1000, collect)
	if len(out) != 1 || out[0].Key != "A" || out[0].Value.(map[string]any)["n"] != int64(2) {
		t.Fatalf("results %+v", out)
	}
	if len(dead) != 1 || dead[0].Origin != "s/2" {
		t.Fatalf("dead letters %+v", dead)
	}
}

func TestConfigValidate(t *testing.T) {
	agg := []aggregate.Spec{{Name: "n", Func: aggregate.Count}}
	bad := []Config{
		{ID: "w", Kind: Tumbling, Aggregates: agg},
		{ID: "w", Kind: Sliding, Size: time.Second, Every: 2 * time.Second, Aggregates: agg},
		{ID: "w", Kind: Session, Aggregates: agg},
		{ID: "w", Kind: Tumbling, Size: time.Second, AllowedLateness: -1, Aggregates: agg},
		{ID: "w", Kind: Tumbling, Size: time.Second},
		{Kind: Tumbling, Size: time.Second, Aggregates: agg},
	}
	for i, c := range bad {
		if _, err := Compile(c); err == nil {
			t.Errorf("config %d: no error", i)
		}
	}
}
