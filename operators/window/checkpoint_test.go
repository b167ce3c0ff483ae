package window

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/state"
)

// topValues is a custom aggregate whose accumulator is a JS object (a
// count, a sum and the three largest values), so a restore must bring it
// back through JSON exactly. It does not depend on the order of adds and
// merges: the operator merges sessions in no set order.
var topValues = aggregate.Spec{Name: "top", Func: aggregate.Custom, Type: aggregate.String, Object: `{
	init: () => ({n: 0, s: 0, top: []}),
	keep(a, vs) { a.top = a.top.concat(vs).sort((x, y) => y - x).slice(0, 3); },
	add(a, r) { a.n++; a.s += r.v; this.keep(a, [r.v]); },
	merge(a, b) { a.n += b.n; a.s += b.s; this.keep(a, b.top); },
	result: a => a.n + ":" + a.s + ":" + a.top.join(","),
}`}

// crashInput is one run's input: batches per operator instance (routed by
// key hash) and the watermark after each batch; with combine, each batch
// goes through a Combiner first.
type crashInput struct {
	batches [][][]operators.Record // [batch][instance]
	wms     []int64
	combine bool
}

// batch returns instance i's batch b, pre-aggregated if the input says so.
func (in crashInput) batch(t *testing.T, comp *Compiled, b, i int) *operators.Batch {
	recs := in.batches[b][i]
	if !in.combine {
		return &operators.Batch{Records: recs}
	}
	cb, err := comp.NewCombiner(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out operators.Batch
	if err := cb.Process(context.Background(), &operators.Batch{Records: recs}, emitFunc(func(r operators.Record) { out.Records = append(out.Records, r) })); err != nil {
		t.Fatal(err)
	}
	return &out
}

// randomCrashInput makes keyed records in bounded disorder, with some far
// behind the watermark (re-firing windows within allowed lateness, or
// late), cut into random batches.
func randomCrashInput(rng *rand.Rand, nInst int) crashInput {
	nKeys := 1 + rng.IntN(12)
	bound := int64(rng.IntN(2000))
	base, maxSeen := int64(rng.IntN(5000))-2000, int64(math.MinInt64)
	var in crashInput
	for range 5 + rng.IntN(60) {
		batch := make([][]operators.Record, nInst)
		for range rng.IntN(30) {
			base += int64(rng.IntN(200))
			t := base - rng.Int64N(bound+1)
			if rng.IntN(15) == 0 {
				t -= rng.Int64N(6000)
			}
			maxSeen = max(maxSeen, t)
			r := operators.Record{
				Key:       fmt.Sprintf("k%d", rng.IntN(nKeys)),
				EventTime: t,
				Value:     map[string]any{"v": int64(rng.IntN(1000) - 200), "u": fmt.Sprintf("u%d", rng.IntN(50))},
				Origin:    fmt.Sprintf("s/%d", base),
			}
			i := instanceOf(r.Key, nInst)
			batch[i] = append(batch[i], r)
		}
		in.batches = append(in.batches, batch)
		in.wms = append(in.wms, satSub(maxSeen, bound))
	}
	return in
}

// recorder formats what an instance emits (results and late records), so
// runs can be compared exactly.
type recorder struct{ out []string }

func (r *recorder) result() operators.Emitter {
	return emitFunc(func(rec operators.Record) {
		r.out = append(r.out, fmt.Sprintf("fire %s %d %v", rec.Key, rec.EventTime, rec.Value))
	})
}

func (r *recorder) late() operators.Emitter {
	return emitFunc(func(rec operators.Record) {
		r.out = append(r.out, fmt.Sprintf("late %s %d %s", rec.Key, rec.EventTime, rec.Origin))
	})
}

// straightRun processes in with in-memory state, no checkpoints.
func straightRun(t *testing.T, comp *Compiled, in crashInput, nInst int) [][]string {
	ctx := context.Background()
	out := make([][]string, nInst)
	for i := range nInst {
		op, err := comp.New()
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		op.SetSideOutput(operators.LateOutput, rec.late())
		for b := range in.batches {
			if err := op.Process(ctx, in.batch(t, comp, b, i), rec.result()); err != nil {
				t.Fatal(err)
			}
			if err := op.OnWatermark(ctx, in.wms[b], rec.result()); err != nil {
				t.Fatal(err)
			}
		}
		op.OnWatermark(ctx, math.MaxInt64, rec.result())
		out[i] = rec.out
		op.Close()
	}
	return out
}

// crashFS is how a run loses what a crash loses.
type crashFS interface {
	fs() vfs.FS
	// crash returns the filesystem as a restart finds it.
	crash(rng *rand.Rand) vfs.FS
}

// memCrash keeps every write: Restore alone must discard what followed
// the checkpoint.
type memCrash struct{ m *vfs.MemFS }

func (c *memCrash) fs() vfs.FS              { return c.m }
func (c *memCrash) crash(*rand.Rand) vfs.FS { return c.m }

// unsyncedCrash keeps only what was synced, and a random share of the rest.
type unsyncedCrash struct{ m *vfs.MemFS }

func (c *unsyncedCrash) fs() vfs.FS { return c.m }
func (c *unsyncedCrash) crash(rng *rand.Rand) vfs.FS {
	c.m = c.m.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
	return c.m
}

// checkpointedRun processes in with each instance's state in the job's
// Pebble store, checkpoints at random batch boundaries, and crashes at
// others: the instances and the DB are dropped, the DB is restored from
// the latest checkpoint, new instances open their state, and the input
// is replayed from the batch after the checkpoint. What the instances
// emitted after the last checkpoint before a crash is dropped, as a
// transactional sink drops it.
func checkpointedRun(t *testing.T, rng *rand.Rand, comp *Compiled, in crashInput, nInst int, cfs crashFS) (out [][]string, ckpts, crashes int) {
	ctx := context.Background()
	opts := state.Options{FS: cfs.fs(), CacheSize: 1 << 20}
	db, err := state.Open("job", opts)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { db.Close() }()
	committed := make([][]string, nInst)
	ops := make([]*Operator, nInst)
	recs := make([]*recorder, nInst)
	start := func(wm int64) {
		for i := range ops {
			if ops[i], err = comp.New(); err != nil {
				t.Fatal(err)
			}
			recs[i] = &recorder{}
			ops[i].SetSideOutput(operators.LateOutput, recs[i].late())
			sp, err := db.Namespace("w", strconv.Itoa(i))
			if err != nil {
				t.Fatal(err)
			}
			if err := ops[i].OpenState(sp); err != nil {
				t.Fatal(err)
			}
			// The runtime hands the restored watermark on: nothing fires.
			if err := ops[i].OnWatermark(ctx, wm, recs[i].result()); err != nil {
				t.Fatal(err)
			}
		}
	}
	start(math.MinInt64)
	epoch := uint64(0)
	for b := 0; b < len(in.batches); b++ {
		for i, op := range ops {
			if err := op.Process(ctx, in.batch(t, comp, b, i), recs[i].result()); err != nil {
				t.Fatal(err)
			}
			if err := op.OnWatermark(ctx, in.wms[b], recs[i].result()); err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(4) == 0 {
			for _, op := range ops {
				if err := op.SnapshotState(); err != nil {
					t.Fatal(err)
				}
			}
			epoch++
			if _, err := db.Checkpoint(epoch, []byte(strconv.Itoa(b))); err != nil {
				t.Fatal(err)
			}
			ckpts++
			for i := range recs {
				committed[i] = append(committed[i], recs[i].out...)
				recs[i].out = nil
			}
		}
		if epoch > 0 && rng.IntN(6) == 0 {
			crashes++
			fs := cfs.crash(rng)
			db.Close()
			for _, op := range ops {
				op.Close()
			}
			opts.FS = fs
			var meta []byte
			if db, _, meta, err = state.Restore("job", state.Latest, opts); err != nil {
				t.Fatal(err)
			}
			if b, err = strconv.Atoi(string(meta)); err != nil {
				t.Fatal(err)
			}
			start(in.wms[b])
		}
	}
	for i, op := range ops {
		op.OnWatermark(ctx, math.MaxInt64, recs[i].result())
		committed[i] = append(committed[i], recs[i].out...)
		if st := op.Stats(); st.Windows != 0 {
			t.Fatalf("instance %d holds %d windows after the last watermark", i, st.Windows)
		}
		op.Close()
	}
	return committed, ckpts, crashes
}

// TestCheckpointCrashEquivalence: windows of every kind, with allowed
// lateness, custom JS aggregates, caches small enough to evict and a third
// of the runs pre-aggregated by a Combiner, give
// the same results (and late records) in the same order whether the
// operators run straight through in memory or are checkpointed, crashed
// and restored at random batch boundaries; no window fires twice.
func TestCheckpointCrashEquivalence(t *testing.T) {
	for _, seed := range testutil.Seeds(t, 40, 12) {
		rng := rand.New(rand.NewPCG(seed, 77))
		cfg := randomConfig(rng)
		cfg.Aggregates = append(cfg.Aggregates, topValues)
		if rng.IntN(3) > 0 {
			cfg.StateCacheEntries = 1 + rng.IntN(20)
		}
		if rng.IntN(2) == 0 {
			cfg.StateDirtyEntries = 1 + rng.IntN(10)
		}
		nInst := 1 + rng.IntN(3)
		unsynced, combine := seed%2 == 1, rng.IntN(3) == 0
		t.Run(fmt.Sprintf("seed=%d/%s/cache=%d/dirty=%d/unsynced=%v/combine=%v", seed, cfg.Kind, cfg.StateCacheEntries, cfg.StateDirtyEntries, unsynced, combine), func(t *testing.T) {
			comp, err := Compile(cfg)
			if err != nil {
				t.Fatal(err)
			}
			in := randomCrashInput(rng, nInst)
			in.combine = combine
			want := straightRun(t, comp, in, nInst)
			var cfs crashFS = &memCrash{vfs.NewMem()}
			if unsynced {
				cfs = &unsyncedCrash{vfs.NewCrashableMem()}
			}
			got, ckpts, crashes := checkpointedRun(t, rng, comp, in, nInst, cfs)
			for i := range want {
				if !slices.Equal(got[i], want[i]) {
					t.Fatalf("instance %d after %d checkpoints and %d crashes emitted other results than a run without crashes:\n%s", i, ckpts, crashes, testutil.Diff(want[i], got[i]))
				}
			}
		})
	}
}

// OpenState refuses an operator that already holds windows, and
// SnapshotState one without state.
func TestOpenStateMisuse(t *testing.T) {
	op, err := New(Config{ID: "w", Kind: Tumbling, Size: time.Second, Aggregates: []aggregate.Spec{{Name: "n", Func: aggregate.Count}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.SnapshotState(); err == nil {
		t.Fatal("SnapshotState without OpenState succeeded")
	}
	op.Process(context.Background(), &operators.Batch{Records: []operators.Record{{Key: "a", EventTime: 1, Value: map[string]any{}}}}, emitFunc(func(operators.Record) {}))
	db := newTestDB(t, state.Options{})
	if err := op.OpenState(newTestSpace(t, db, "0")); err == nil {
		t.Fatal("OpenState after a record succeeded")
	}
}

// A custom accumulator JSON cannot encode fails SnapshotState, naming
// the aggregate, instead of checkpointing state that cannot be restored.
func TestSnapshotStateUnencodable(t *testing.T) {
	op, err := New(Config{ID: "w", Kind: Tumbling, Size: time.Second, Aggregates: []aggregate.Spec{{Name: "nothing", Func: aggregate.Custom,
		Object: `{init: () => undefined, add: (a, r) => undefined, merge: (a, b) => undefined, result: a => 1}`}}})
	if err != nil {
		t.Fatal(err)
	}
	db := newTestDB(t, state.Options{})
	if err := op.OpenState(newTestSpace(t, db, "0")); err != nil {
		t.Fatal(err)
	}
	op.Process(context.Background(), &operators.Batch{Records: []operators.Record{{Key: "a", EventTime: 1, Value: map[string]any{}}}}, emitFunc(func(operators.Record) {}))
	if err := op.SnapshotState(); err == nil || !strings.Contains(err.Error(), `"nothing"`) {
		t.Fatalf("SnapshotState = %v, want an error naming the aggregate", err)
	}
}

// A Pebble failure under the operator (here: the DB closed under it) is
// an error of Process, not a panic of the task.
// openOpState opens op's state in db, as task 0 of operator "w".
func openOpState(t testing.TB, db *state.DB, op *Operator) {
	t.Helper()
	sp, err := db.Namespace("w", "0")
	if err != nil {
		t.Fatal(err)
	}
	if err := op.OpenState(sp); err != nil {
		t.Fatal(err)
	}
}

func TestStoreFailureIsAnError(t *testing.T) {
	op, err := New(Config{ID: "w", Kind: Tumbling, Size: time.Second, StateDirtyEntries: 1,
		Aggregates: []aggregate.Spec{{Name: "n", Func: aggregate.Count}}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open("job", state.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	openOpState(t, db, op)
	db.Close()
	recs := []operators.Record{{Key: "a", EventTime: 1, Value: map[string]any{}}, {Key: "b", EventTime: 1, Value: map[string]any{}},
		{Key: "c", EventTime: 1, Value: map[string]any{}}}
	err = op.Process(context.Background(), &operators.Batch{Records: recs}, emitFunc(func(operators.Record) {}))
	var se *StoreError
	if !errors.As(err, &se) || !errors.Is(err, state.ErrClosed) {
		t.Fatalf("Process over a closed DB = %v, want a *StoreError wrapping state.ErrClosed", err)
	}
}
