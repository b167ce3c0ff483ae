package state

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/internal/testutil"
)

func mustOpen(t *testing.T, fs vfs.FS, opts Options) *DB {
	t.Helper()
	opts.FS = fs
	db, err := Open("job", opts)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func mustSpace(t *testing.T, db *DB, op, task string) *Space {
	t.Helper()
	s, err := db.Namespace(op, task)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// dump returns every key of s as a map.
func dump(t *testing.T, s *Space) map[string]string {
	t.Helper()
	out := map[string]string{}
	if err := s.Scan(nil, func(k, v []byte) error {
		out[string(k)] = string(v)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSpaceOperations(t *testing.T) {
	db := mustOpen(t, vfs.NewMem(), Options{})
	defer db.Close()
	a, b := mustSpace(t, db, "win", "0"), mustSpace(t, db, "win", "1")
	for _, k := range []string{"k1", "k2", "k3", "x"} {
		if err := a.Set([]byte(k), []byte("a-"+k)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Set([]byte("k1"), []byte("b")); err != nil {
		t.Fatal(err)
	}
	if v, ok, err := a.Get([]byte("k2")); err != nil || !ok || string(v) != "a-k2" {
		t.Fatalf("Get k2 = %q %v %v", v, ok, err)
	}
	if _, ok, _ := a.Get([]byte("nope")); ok {
		t.Fatal("absent key found")
	}
	if err := a.Delete([]byte("k3")); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, a); !reflect.DeepEqual(got, map[string]string{"k1": "a-k1", "k2": "a-k2", "x": "a-x"}) {
		t.Fatalf("space a = %v", got)
	}
	if got := dump(t, b); !reflect.DeepEqual(got, map[string]string{"k1": "b"}) {
		t.Fatalf("space b sees other task's keys: %v", got)
	}
	var keys []string
	collect := func(k, _ []byte) error { keys = append(keys, string(k)); return nil }
	if err := a.Scan([]byte("k"), collect); err != nil || !reflect.DeepEqual(keys, []string{"k1", "k2"}) {
		t.Fatalf("Scan(k) = %v %v", keys, err)
	}
	keys = nil
	if err := a.ScanRange([]byte("k2"), nil, collect); err != nil || !reflect.DeepEqual(keys, []string{"k2", "x"}) {
		t.Fatalf("ScanRange(k2,nil) = %v %v", keys, err)
	}
	keys = nil
	if err := a.ScanRange([]byte("k1"), []byte("k2"), collect); err != nil || !reflect.DeepEqual(keys, []string{"k1"}) {
		t.Fatalf("ScanRange(k1,k2) = %v %v", keys, err)
	}
	stop := errors.New("stop")
	if err := a.Scan(nil, func(_, _ []byte) error { return stop }); err != stop {
		t.Fatalf("Scan callback error = %v", err)
	}
	// A scan's callback may write (it sees the space as of the scan's start).
	seen := 0
	if err := a.Scan([]byte("k"), func(k, _ []byte) error {
		seen++
		return a.Set(append([]byte("k9"), k...), []byte("copy"))
	}); err != nil || seen != 2 {
		t.Fatalf("Scan writing in callback: %d keys, %v", seen, err)
	}
	if err := a.Scan([]byte("k9"), func(k, _ []byte) error { return a.Delete(k) }); err != nil {
		t.Fatal(err)
	}
	batch := a.NewBatch()
	batch.Set([]byte("y"), []byte("1"))
	batch.Delete([]byte("x"))
	if batch.Len() != 2 {
		t.Fatalf("batch Len = %d", batch.Len())
	}
	if err := batch.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := dump(t, a); got["y"] != "1" || got["x"] != "" {
		t.Fatalf("after batch: %v", got)
	}
	for _, bad := range [][2]string{{"", "0"}, {"op", ""}, {"o\x00p", "0"}} {
		if _, err := db.Namespace(bad[0], bad[1]); err == nil {
			t.Fatalf("Namespace(%q,%q) accepted", bad[0], bad[1])
		}
	}
}

// model is the expected content of two spaces at each epoch.
type model map[string]map[string]string

func (m model) clone() model {
	out := model{}
	for k, v := range m {
		out[k] = maps.Clone(v)
	}
	return out
}

// writeRandom applies n random sets and deletes to two spaces and the model.
func writeRandom(t *testing.T, db *DB, m model, rng *rand.Rand, n int) {
	t.Helper()
	for range n {
		task := fmt.Sprint(rng.IntN(2))
		s := mustSpace(t, db, "op", task)
		if m[task] == nil {
			m[task] = map[string]string{}
		}
		k := fmt.Sprintf("key%03d", rng.IntN(200))
		if rng.IntN(4) == 0 {
			if err := s.Delete([]byte(k)); err != nil {
				t.Fatal(err)
			}
			delete(m[task], k)
			continue
		}
		v := fmt.Sprintf("v%d", rng.Int())
		if err := s.Set([]byte(k), []byte(v)); err != nil {
			t.Fatal(err)
		}
		m[task][k] = v
	}
}

func checkModel(t *testing.T, db *DB, want model) {
	t.Helper()
	for _, task := range []string{"0", "1"} {
		got := dump(t, mustSpace(t, db, "op", task))
		w := want[task]
		if w == nil {
			w = map[string]string{}
		}
		if !reflect.DeepEqual(got, w) {
			t.Fatalf("task %s: restored %d keys, want %d (diff in content)", task, len(got), len(w))
		}
	}
}

var allSteps = []string{StepBeforeSnapshot, StepAfterSnapshot, StepBeforeManifest, StepAfterManifest, StepBeforePrune}

// A crash at each step of a checkpoint leaves the previous checkpoint (or,
// once the manifest is written, the new one) restorable with exactly its
// state and meta; unsynced writes are lost as on a power cut.
func TestCheckpointCrashAtEachStep(t *testing.T) {
	seed := testutil.Seed(t)
	for _, step := range allSteps {
		t.Run(step, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 2))
			fs := vfs.NewCrashableMem()
			crash := errors.New("crash")
			armed := false
			db := mustOpen(t, fs, Options{Retain: 2, Failpoint: func(s string) error {
				if armed && s == step {
					return crash
				}
				return nil
			}})
			m := model{}
			var at []model
			for epoch := uint64(1); epoch <= 3; epoch++ {
				writeRandom(t, db, m, rng, 300)
				if _, err := db.Checkpoint(epoch, []byte(fmt.Sprint("meta", epoch))); err != nil {
					t.Fatal(err)
				}
				at = append(at, m.clone())
			}
			writeRandom(t, db, m, rng, 300)
			armed = true
			if _, err := db.Checkpoint(4, []byte("meta4")); !errors.Is(err, crash) {
				t.Fatalf("Checkpoint at failpoint: %v", err)
			}
			at = append(at, m.clone())
			writeRandom(t, db, m, rng, 100) // after the crash point: never durable
			clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			db.Close()

			wantEpoch := uint64(3)
			if step == StepAfterManifest || step == StepBeforePrune {
				wantEpoch = 4
			}
			rdb, info, meta, err := Restore("job", Latest, Options{FS: clone, Retain: 2})
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			if info.Epoch != wantEpoch || string(meta) != fmt.Sprint("meta", wantEpoch) {
				t.Fatalf("restored epoch %d meta %q, want %d", info.Epoch, meta, wantEpoch)
			}
			checkModel(t, rdb, at[wantEpoch-1])
			hist := rdb.Checkpoints()
			if len(hist) != 2 || hist[1].Epoch != wantEpoch {
				t.Fatalf("history after restore = %+v", hist)
			}
			// The restored DB checkpoints on from there.
			writeRandom(t, rdb, at[wantEpoch-1], rng, 50)
			if _, err := rdb.Checkpoint(5, []byte("meta5")); err != nil {
				t.Fatal(err)
			}
			checkModel(t, rdb, at[wantEpoch-1])
		})
	}
}

// Pebble crash test: after a crash that keeps a random part of unsynced
// data, Restore gives exactly the last checkpoint's state, and Open of the
// live store still works (Pebble recovers it), whatever survived.
func TestCrashCloneRestoresCheckpoint(t *testing.T) {
	for _, seed := range testutil.Seeds(t, 8, 8) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			fs := vfs.NewCrashableMem()
			db := mustOpen(t, fs, Options{})
			m := model{}
			writeRandom(t, db, m, rng, 500)
			if _, err := db.Checkpoint(1, nil); err != nil {
				t.Fatal(err)
			}
			want := m.clone()
			writeRandom(t, db, m, rng, 500)
			clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(101), RNG: rng})
			db.Close()

			live, err := Open("job", Options{FS: clone})
			if err != nil {
				t.Fatalf("Open after crash: %v", err)
			}
			live.Close()
			rdb, info, _, err := Restore("job", Latest, Options{FS: clone})
			if err != nil {
				t.Fatal(err)
			}
			defer rdb.Close()
			if info.Epoch != 1 {
				t.Fatalf("epoch %d", info.Epoch)
			}
			checkModel(t, rdb, want)
		})
	}
}

func TestManifestDamage(t *testing.T) {
	fs := vfs.NewMem()
	db := mustOpen(t, fs, Options{})
	rng := rand.New(rand.NewPCG(3, 3))
	m := model{}
	writeRandom(t, db, m, rng, 200)
	if _, err := db.Checkpoint(1, []byte("one")); err != nil {
		t.Fatal(err)
	}
	want1 := m.clone()
	writeRandom(t, db, m, rng, 200)
	if _, err := db.Checkpoint(2, []byte("two")); err != nil {
		t.Fatal(err)
	}
	db.Close()

	path := manifestPath(fs, "job", 2)
	content, err := readFile(fs, path)
	if err != nil {
		t.Fatal(err)
	}
	content[len(content)/2] ^= 0x20
	if err := writeFileSync(fs, path, content); err != nil {
		t.Fatal(err)
	}
	_, _, _, err = Restore("job", Latest, Options{FS: fs})
	if !errors.Is(err, ErrManifestCorrupt) || !strings.Contains(err.Error(), "[1]") {
		t.Fatalf("Restore of damaged latest: %v", err)
	}
	// Open refuses too, rather than checkpoint on without the history.
	if _, err := Open("job", Options{FS: fs}); !errors.Is(err, ErrManifestCorrupt) {
		t.Fatalf("Open with damaged manifest: %v", err)
	}
	rdb, info, meta, err := Restore("job", 1, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if info.Epoch != 1 || string(meta) != "one" {
		t.Fatalf("restored %d %q", info.Epoch, meta)
	}
	checkModel(t, rdb, want1)
	// Restoring epoch 1 rewound history: epoch 2 may be taken again.
	if _, err := rdb.Checkpoint(2, []byte("two again")); err != nil {
		t.Fatal(err)
	}
}

func TestRetainAndEpochOrder(t *testing.T) {
	fs := vfs.NewMem()
	db := mustOpen(t, fs, Options{Retain: 2})
	defer db.Close()
	s := mustSpace(t, db, "op", "0")
	for e := uint64(1); e <= 4; e++ {
		if err := s.Set([]byte("k"), []byte(fmt.Sprint(e))); err != nil {
			t.Fatal(err)
		}
		info, err := db.Checkpoint(e, nil)
		if err != nil {
			t.Fatal(err)
		}
		if info.Epoch != e || info.Status != StatusComplete || info.Size <= 0 || info.Paused > info.Duration {
			t.Fatalf("info %+v", info)
		}
	}
	var epochs []uint64
	for _, in := range db.Checkpoints() {
		epochs = append(epochs, in.Epoch)
	}
	if !slices.Equal(epochs, []uint64{3, 4}) {
		t.Fatalf("kept %v", epochs)
	}
	names, _ := fs.List(fs.PathJoin("job", checkpointsDir))
	slices.Sort(names)
	want := []string{"00000000000000000003", "00000000000000000004", latestFile, "MANIFEST-00000000000000000003", "MANIFEST-00000000000000000004"}
	if !slices.Equal(names, want) {
		t.Fatalf("files %v", names)
	}
	if _, err := db.Checkpoint(4, nil); err == nil {
		t.Fatal("checkpoint at an old epoch accepted")
	}
	if _, err := db.Checkpoint(Latest, nil); err == nil {
		t.Fatal("reserved epoch accepted")
	}
	if _, _, _, err := Restore("job", 1, Options{FS: fs}); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("Restore pruned epoch: %v", err)
	}
}

func TestClosed(t *testing.T) {
	db := mustOpen(t, vfs.NewMem(), Options{})
	s := mustSpace(t, db, "op", "0")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("k"), nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Set after Close: %v", err)
	}
	if _, _, err := s.Get([]byte("k")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}
	if err := s.Scan(nil, func(_, _ []byte) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Fatalf("Scan after Close: %v", err)
	}
	if _, err := db.Checkpoint(1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Checkpoint after Close: %v", err)
	}
	if err := db.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v", err)
	}
}

func TestRestoreWithoutCheckpoint(t *testing.T) {
	fs := vfs.NewMem()
	db := mustOpen(t, fs, Options{})
	db.Close()
	if _, _, _, err := Restore("job", Latest, Options{FS: fs}); !errors.Is(err, ErrNoCheckpoint) {
		t.Fatalf("Restore = %v", err)
	}
}

// A checkpoint dir left by a crash before its manifest is removed by Open,
// and a retry of the same epoch works.
func TestIncompleteCheckpointCleanedUp(t *testing.T) {
	fs := vfs.NewMem()
	fail := true
	db := mustOpen(t, fs, Options{Failpoint: func(s string) error {
		if fail && s == StepBeforeManifest {
			return errors.New("crash")
		}
		return nil
	}})
	if _, err := db.Checkpoint(1, nil); err == nil {
		t.Fatal("failpoint ignored")
	}
	if len(db.Checkpoints()) != 0 {
		t.Fatal("incomplete checkpoint in history")
	}
	fail = false
	if _, err := db.Checkpoint(1, nil); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if _, err := db.Checkpoint(2, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if err := fs.MkdirAll(ckptPath(fs, "job", 3), 0o755); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, fs, Options{})
	defer db.Close()
	if _, err := fs.Stat(ckptPath(fs, "job", 3)); err == nil {
		t.Fatal("incomplete checkpoint 3 not removed")
	}
	if len(db.Checkpoints()) != 2 {
		t.Fatalf("history %+v", db.Checkpoints())
	}
}

// A crash at each step of Restore (of the latest or of an older epoch)
// leaves a state from which Restore, run again, gives the same result.
func TestRestoreCrashAtEachStep(t *testing.T) {
	steps := []string{StepRestoreBeforeRewind, StepRestoreBeforeCopy, StepRestoreBeforeSwap, StepRestoreBeforeOpen}
	seed := testutil.Seed(t)
	for _, target := range []uint64{Latest, 1} {
		for _, step := range steps {
			t.Run(fmt.Sprintf("epoch=%d/%s", target, step), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, uint64(len(step))))
				fs := vfs.NewCrashableMem()
				db := mustOpen(t, fs, Options{})
				m := model{}
				var at []model
				for e := uint64(1); e <= 2; e++ {
					writeRandom(t, db, m, rng, 300)
					if _, err := db.Checkpoint(e, []byte(fmt.Sprint(e))); err != nil {
						t.Fatal(err)
					}
					at = append(at, m.clone())
				}
				writeRandom(t, db, m, rng, 100)
				clone := fs.CrashClone(vfs.CrashCloneCfg{})
				db.Close()

				crash := errors.New("crash")
				fail := func(s string) error {
					if s == step {
						return crash
					}
					return nil
				}
				if _, _, _, err := Restore("job", target, Options{FS: clone, Failpoint: fail}); !errors.Is(err, crash) {
					t.Fatalf("Restore at failpoint: %v", err)
				}
				again := clone.CrashClone(vfs.CrashCloneCfg{})
				rdb, info, meta, err := Restore("job", target, Options{FS: again})
				if err != nil {
					t.Fatal(err)
				}
				defer rdb.Close()
				want := uint64(2)
				if target != Latest {
					want = target
				}
				if info.Epoch != want || string(meta) != fmt.Sprint(want) {
					t.Fatalf("restored epoch %d meta %q, want %d", info.Epoch, meta, want)
				}
				checkModel(t, rdb, at[want-1])
			})
		}
	}
}
