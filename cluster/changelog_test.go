package cluster

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/window"
)

// newWindow makes a tumbling count/sum window whose store is a LogStore,
// returned with it.
func newWindow(t *testing.T) (*window.Operator, *LogStore) {
	t.Helper()
	var st *LogStore
	op, err := window.New(window.Config{Job: "j", ID: "w", Kind: window.Tumbling, Size: 10 * time.Second,
		AllowedLateness: 5 * time.Second,
		Aggregates:      []aggregate.Spec{{Name: "n", Func: "count"}, {Name: "s", Func: "sum", Field: "v"}},
		NewStore: func(c window.Codec) window.Store {
			st = NewLogStore(c)
			return st
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	return op, st
}

type rows []map[string]any

func (r *rows) Emit(rec operators.Record) { *r = append(*r, rec.Value.(map[string]any)) }

func TestWindowKeyRoundTrip(t *testing.T) {
	for _, key := range []string{"", "a", "päge/with\x00bytes", string(make([]byte, 300))} {
		w := window.Window{Start: -20_000, End: 1 << 40}
		k, got, err := decodeWindowKey(encodeWindowKey(key, w))
		if err != nil || k != key || got != w {
			t.Fatalf("%q: got %q %v %v", key, k, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {'m'}, {'w'}, {'w', 5, 'a'}, append(encodeWindowKey("a", window.Window{}), 0)} {
		if _, _, err := decodeWindowKey(bad); err == nil {
			t.Errorf("%q decoded", bad)
		}
	}
}

// A task that moves restores its windows from the changelog the old owner
// committed, and fires the same results as if it had never moved: the
// randomized records are split at a random commit point; the old owner's
// changes up to there are replayed into a new operator, which then gets
// the rest.
func TestChangelogRestoreFiresTheSame(t *testing.T) {
	rng := testutil.Rand(t, 1)
	for round := range 20 {
		var recs []operators.Record
		ts := int64(0)
		for range 200 {
			ts += rng.Int64N(400)
			recs = append(recs, operators.Record{Key: fmt.Sprint("k", rng.IntN(5)), EventTime: ts,
				Value: map[string]any{"v": float64(rng.IntN(10))}})
		}
		cut := rng.IntN(len(recs))
		ctx := context.Background()
		run := func(op *window.Operator, recs []operators.Record, out *rows) {
			for i := 0; i < len(recs); i += 10 {
				b := recs[i:min(i+10, len(recs))]
				if err := op.Process(ctx, &operators.Batch{Records: append([]operators.Record(nil), b...)}, out); err != nil {
					t.Fatal(err)
				}
				if err := op.OnWatermark(ctx, b[len(b)-1].EventTime-1000, out); err != nil {
					t.Fatal(err)
				}
			}
		}
		// One owner, never moved.
		whole, _ := newWindow(t)
		var want rows
		run(whole, recs, &want)
		whole.OnWatermark(ctx, EndOfTime, &want)

		// The first owner commits at cut; its changelog goes to a second.
		first, log := newWindow(t)
		var got rows
		run(first, recs[:cut], &got)
		changes, err := log.Changes()
		if err != nil {
			t.Fatal(err)
		}
		wm := NoWatermark
		if cut > 0 {
			wm = recs[cut-1].EventTime - 1000
		}
		second, log2 := newWindow(t)
		for _, c := range changes {
			if err := log2.Apply(c); err != nil {
				t.Fatal(err)
			}
		}
		// The restored task sets its watermark without emitting what the
		// first owner emitted already.
		var discard rows
		second.OnWatermark(ctx, wm, &discard)
		run(second, recs[cut:], &got)
		second.OnWatermark(ctx, EndOfTime, &got)
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d, cut %d:\n%s", round, cut, testutil.Diff(want, got))
		}
	}
}
