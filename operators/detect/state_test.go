package detect

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/anomaly"
	"github.com/runnel-dev/runnel/state"
)

// randomSeries makes batches of points for several keys: a noisy seasonal
// level per key with occasional spikes.
func randomSeries(rng *rand.Rand) [][]operators.Record {
	nKeys := 1 + rng.IntN(6)
	var batches [][]operators.Record
	t := int64(0)
	for range 20 + rng.IntN(40) {
		var batch []operators.Record
		for range rng.IntN(40) {
			t += 60_000
			k := rng.IntN(nKeys)
			v := 100*float64(k+1) + 10*math.Sin(float64(t)/3e6) + rng.NormFloat64()
			if rng.IntN(50) == 0 {
				v *= 3
			}
			batch = append(batch, operators.Record{Key: fmt.Sprint("k", k), EventTime: t, Value: map[string]any{"v": v, "w": v / 2}})
		}
		batches = append(batches, batch)
	}
	return batches
}

func format(out *[]string) operators.Emitter {
	return operators.EmitterFunc(func(r operators.Record) { *out = append(*out, fmt.Sprintf("%s %d %v", r.Key, r.EventTime, r.Value)) })
}

// Scores after a restore equal those of an uninterrupted run: random
// series, snapshots and checkpoints at random batch boundaries, crashes
// (unsynced data dropped) and replays from the batch after the last
// checkpoint; what was emitted after that checkpoint is dropped, as a
// transactional sink drops it.
func TestDetectCrashEquivalence(t *testing.T) {
	ctx := context.Background()
	base := testutil.Seed(t)
	for i := range uint64(20) {
		seed := base + i
		rng := rand.New(rand.NewPCG(seed, 3))
		cfg := Config{ID: "d", Fields: []string{"v", "w"}, Anomaly: anomaly.Config{Seed: int64(seed)}}
		if seed%2 == 1 {
			cfg.Fields = []string{"v"}
		}
		batches := randomSeries(rng)
		ref, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		var want []string
		for _, b := range batches {
			if err := ref.Process(ctx, &operators.Batch{Records: b}, format(&want)); err != nil {
				t.Fatal(err)
			}
		}

		fs := vfs.NewCrashableMem()
		db, err := state.Open("job", state.Options{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		var committed, pending []string
		var op *Operator
		start := func() {
			if op, err = New(cfg); err != nil {
				t.Fatal(err)
			}
			sp, err := db.Namespace("d", "0")
			if err != nil {
				t.Fatal(err)
			}
			if err := op.OpenState(sp); err != nil {
				t.Fatal(err)
			}
		}
		start()
		epoch, crashes := uint64(0), 0
		for i := 0; i < len(batches); i++ {
			if err := op.Process(ctx, &operators.Batch{Records: batches[i]}, format(&pending)); err != nil {
				t.Fatal(err)
			}
			if rng.IntN(3) == 0 {
				if err := op.SnapshotState(); err != nil {
					t.Fatal(err)
				}
				epoch++
				if _, err := db.Checkpoint(epoch, []byte(strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
				committed, pending = append(committed, pending...), nil
			}
			if epoch > 0 && rng.IntN(5) == 0 {
				crashes++
				fs = fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
				db.Close()
				var meta []byte
				if db, _, meta, err = state.Restore("job", state.Latest, state.Options{FS: fs}); err != nil {
					t.Fatal(err)
				}
				if i, err = strconv.Atoi(string(meta)); err != nil {
					t.Fatal(err)
				}
				pending = nil
				start()
			}
		}
		db.Close()
		got := append(committed, pending...)
		if !slices.Equal(got, want) {
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] {
					t.Fatalf("seed %d, %d crashes: point %d scored\n%s\nwant\n%s", seed, crashes, i, got[i], want[i])
				}
			}
			t.Fatalf("seed %d: %d points scored, want %d", seed, len(got), len(want))
		}
	}
}

// SnapshotState writes only the models scored since the last snapshot.
func TestDetectSnapshotWritesChangedModels(t *testing.T) {
	db, err := state.Open("job", state.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sp, err := db.Namespace("d", "0")
	if err != nil {
		t.Fatal(err)
	}
	op, err := New(Config{ID: "d", Fields: []string{"v"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.OpenState(sp); err != nil {
		t.Fatal(err)
	}
	point := func(k string, v float64) {
		run(t, op, []operators.Record{{Key: k, EventTime: 1, Value: map[string]any{"v": v}}})
	}
	point("a", 1)
	point("b", 1)
	if err := op.SnapshotState(); err != nil {
		t.Fatal(err)
	}
	// Mark both stored models; only a's is rewritten by the next snapshot.
	for _, k := range []string{"a", "b"} {
		if err := sp.Set(modelKey(k), []byte("mark")); err != nil {
			t.Fatal(err)
		}
	}
	point("a", 2)
	if err := op.SnapshotState(); err != nil {
		t.Fatal(err)
	}
	for k, rewritten := range map[string]bool{"a": true, "b": false} {
		v, _, err := sp.Get(modelKey(k))
		if err != nil {
			t.Fatal(err)
		}
		if got := string(v) != "mark"; got != rewritten {
			t.Errorf("model %s rewritten: %v, want %v", k, got, rewritten)
		}
	}
	if err := op.OpenState(sp); err == nil {
		t.Error("OpenState over models already held succeeded")
	}
}
