package window

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
)

// TestCombinerWithChain: a JS chain feeding a window directly and the same
// chain feeding a Combiner (raw JS values, no export) give the same
// results, and a late partial sends its records to the late output.
func TestCombinerWithChain(t *testing.T) {
	cp, err := js.CompileChain(js.ChainSpec{Job: "j", Stages: []js.Stage{
		{Operator: "parse", Kind: js.Map, Src: `r => r.page === "skip" ? null : {page: r.page, m: {ms: r.ms}}`},
		{Operator: "per-page", Kind: js.Key, Src: `r => r.page`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	comp, err := Compile(Config{Job: "j", ID: "w", Kind: Tumbling, Size: time.Second, Aggregates: []aggregate.Spec{
		{Name: "n", Func: aggregate.Count}, {Name: "total", Func: aggregate.Sum, Field: "m.ms"},
		{Name: "p95", Func: aggregate.P95, Field: "m.ms"}, {Name: "pages", Func: aggregate.Distinct, Field: "page"},
		{Name: "custom", Func: aggregate.Custom, Object: `{init: () => 0, add: (a, r) => a + r.m.ms, merge: (a, b) => a + b}`},
	}})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(from, n int) *operators.Batch {
		b := &operators.Batch{}
		for i := from; i < from+n; i++ {
			page := fmt.Sprintf("p%d", i%7)
			if i%11 == 0 {
				page = "skip"
			}
			b.Records = append(b.Records, operators.Record{Value: map[string]any{"page": page, "ms": int64(i % 100)},
				EventTime: int64(i * 10), Origin: fmt.Sprintf("s/%d", i)})
		}
		return b
	}
	run := func(combine bool) (map[resultKey]map[string]any, []operators.Record, Stats) {
		chain, err := cp.New()
		if err != nil {
			t.Fatal(err)
		}
		op, err := comp.New()
		if err != nil {
			t.Fatal(err)
		}
		var late []operators.Record
		op.SetSideOutput(operators.LateOutput, emitFunc(func(r operators.Record) { late = append(late, r) }))
		var stage operators.Operator = chain
		if combine {
			if stage, err = comp.NewCombiner(chain); err != nil {
				t.Fatal(err)
			}
		}
		got := map[resultKey]map[string]any{}
		results := emitFunc(func(r operators.Record) {
			row := r.Value.(map[string]any)
			got[resultKey{r.Key, row["window_start"].(int64), row["window_end"].(int64)}] = row
		})
		ctx := context.Background()
		feed := func(b *operators.Batch) {
			var mid operators.Batch
			if err := stage.Process(ctx, b, emitFunc(func(r operators.Record) { mid.Records = append(mid.Records, r) })); err != nil {
				t.Fatal(err)
			}
			if err := op.Process(ctx, &mid, results); err != nil {
				t.Fatal(err)
			}
		}
		for i := 0; i < 1000; i += 64 {
			feed(batch(i, 64))
		}
		op.OnWatermark(ctx, 5000, results)
		feed(batch(100, 20)) // 1000..1190 ms, all in the fired [1000,2000); 110 is dropped by the map
		op.OnWatermark(ctx, 1<<62, results)
		return got, late, op.Stats()
	}
	plain, plainLate, plainStats := run(false)
	combined, combinedLate, combinedStats := run(true)
	if len(plain) == 0 || !reflect.DeepEqual(plain, combined) {
		t.Fatalf("results differ:\nplain    %v\ncombined %v", plain, combined)
	}
	if plainStats.In != combinedStats.In || plainStats.Late != combinedStats.Late || plainStats.Late != 19 {
		t.Fatalf("stats: plain %+v combined %+v", plainStats, combinedStats)
	}
	if len(plainLate) != 19 || len(combinedLate) != 19 {
		t.Fatalf("late outputs: %d plain, %d combined", len(plainLate), len(combinedLate))
	}
	for _, r := range combinedLate {
		if r.Key == "" || r.Origin == "" {
			t.Fatalf("late record without key or origin: %+v", r)
		}
	}
}

func TestCombinerNeedsUpstreamKey(t *testing.T) {
	comp, err := Compile(Config{Job: "j", ID: "w", Kind: Tumbling, Size: time.Second, KeyJS: "r => r.k",
		Aggregates: []aggregate.Spec{{Name: "n", Func: aggregate.Count}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := comp.NewCombiner(nil); err == nil {
		t.Fatal("combiner accepted a window with its own key function")
	}
}

// TestCombinerLateCounts: late partials count every record once, for all
// window kinds, whether or not the combiner keeps the records.
func TestCombinerLateCounts(t *testing.T) {
	agg := []aggregate.Spec{{Name: "n", Func: aggregate.Count}}
	cfgs := []Config{
		{ID: "t", Kind: Tumbling, Size: time.Second, Aggregates: agg},
		{ID: "s", Kind: Sliding, Size: 3 * time.Second, Every: time.Second, Aggregates: agg},
		{ID: "g", Kind: Session, Gap: 100 * time.Millisecond, Aggregates: agg},
	}
	for _, cfg := range cfgs {
		for _, drop := range []bool{false, true} {
			comp, err := Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			cb, _ := comp.NewCombiner(nil)
			if drop {
				cb.DropLateRecords()
			}
			op, _ := comp.New()
			var late []operators.Record
			op.SetSideOutput(operators.LateOutput, emitFunc(func(r operators.Record) { late = append(late, r) }))
			ctx := context.Background()
			op.OnWatermark(ctx, 100_000, emitFunc(func(operators.Record) {}))
			in := &operators.Batch{}
			for i := range 10 {
				in.Records = append(in.Records, operators.Record{Key: fmt.Sprint(i % 3), EventTime: int64(i * 150), Value: map[string]any{}})
			}
			var mid operators.Batch
			cb.Process(ctx, in, emitFunc(func(r operators.Record) { mid.Records = append(mid.Records, r) }))
			op.Process(ctx, &mid, emitFunc(func(operators.Record) {}))
			want := 10
			if drop {
				want = 0
			}
			if st := op.Stats(); st.Late != 10 || st.In != 10 || len(late) != want {
				t.Errorf("%s drop=%v: late=%d in=%d outputs=%d", cfg.Kind, drop, st.Late, st.In, len(late))
			}
		}
	}
}
