package window

import (
	"math"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/state"
)

// The cached store answers every operation like the in-memory store, with
// caches small enough that keys are evicted and reloaded all the time, and
// with random flushes and reopens over what was flushed (with the counts
// recorded, or counting by scan).
func TestCachedStoreMatchesMemStore(t *testing.T) {
	keys := []string{"", "a", "a\x00", "a\x00b", "ab", "b", "\x00", "\xff", "k\x01", "k2", "k3", "k4"}
	times := []int64{math.MinInt64, -1000, -1, 0, 1, 5, 10, 999, math.MaxInt64 - 1, math.MaxInt64}
	copyStore := func(from Store) Store {
		to := NewMemStore()
		for _, k := range keys {
			for _, w := range must(from.Windows(k)) {
				noErr(to.Put(k, w, testState(stateValue(must(from.Get(k, w))))))
			}
		}
		return to
	}
	for _, seed := range testutil.Seeds(t, 12, 6) {
		rng := rand.New(rand.NewPCG(seed, 6))
		fs := vfs.NewMem()
		db, err := state.Open("job", state.Options{FS: fs})
		if err != nil {
			t.Fatal(err)
		}
		space := newTestSpace(t, db, "0")
		bound, maxDirty := 1+rng.IntN(12), 1+rng.IntN(16)
		cs, err := openCachedStore(space, testCodec{}, bound, maxDirty, -1)
		if err != nil {
			t.Fatal(err)
		}
		ms := NewMemStore()
		randWindow := func() Window {
			a, b := times[rng.IntN(len(times))], times[rng.IntN(len(times))]
			return Window{min(a, b), max(a, b)}
		}
		pickWindow := func(key string) Window {
			if ws := must(ms.Windows(key)); len(ws) > 0 && rng.IntN(2) == 0 {
				return ws[rng.IntN(len(ws))]
			}
			return randWindow()
		}
		var checkpointed Store // the state as of the last checkpoint
		epoch := uint64(0)
		for op := range 1500 {
			key := keys[rng.IntN(len(keys))]
			switch r := rng.IntN(40); {
			case r < 16:
				w, v := pickWindow(key), rng.Int64N(1000)
				noErr(cs.Put(key, w, testState(v)))
				noErr(ms.Put(key, w, testState(v)))
			case r < 22:
				w := pickWindow(key)
				noErr(cs.Delete(key, w))
				noErr(ms.Delete(key, w))
			case r < 26:
				w := pickWindow(key)
				if got, want := stateValue(must(cs.Get(key, w))), stateValue(must(ms.Get(key, w))); got != want {
					t.Fatalf("seed %d op %d: Get(%q,%v) = %d, want %d", seed, op, key, w, got, want)
				}
			case r < 30:
				if got, want := sortedWindows(must(cs.Windows(key))), sortedWindows(must(ms.Windows(key))); !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d op %d: Windows(%q) = %v, want %v", seed, op, key, got, want)
				}
			case r < 38:
				a, b := times[rng.IntN(len(times))], times[rng.IntN(len(times))]
				lo, hi := min(a, b), max(a, b)
				got, want := flatten(must(cs.Range(lo, hi))), flatten(must(ms.Range(lo, hi)))
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d op %d: Range(%d,%d] =\n%v\nwant\n%v", seed, op, lo, hi, got, want)
				}
			case r < 39:
				b := space.NewBatch()
				if err := cs.flush(b); err != nil {
					t.Fatal(err)
				}
				if cs.ndirty != 0 {
					t.Fatalf("seed %d op %d: %d dirty entries after a flush", seed, op, cs.ndirty)
				}
				b.Set(metaKey, encodeMeta(opMeta{windows: cs.n}))
				if err := b.Commit(); err != nil {
					t.Fatal(err)
				}
				epoch++
				if _, err := db.Checkpoint(epoch, nil); err != nil {
					t.Fatal(err)
				}
				checkpointed = copyStore(ms)
				// Pebble now holds exactly the state, in pebbleStore's layout.
				ps := must(NewPebbleStore(space, testCodec{}))
				if got, want := flatten(must(ps.Range(math.MinInt64, math.MaxInt64))), flatten(must(ms.Range(math.MinInt64, math.MaxInt64))); ps.Len() != ms.Len() || !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d op %d: after a flush Pebble holds %d windows\n%v\nwant %d\n%v", seed, op, ps.Len(), got, ms.Len(), want)
				}
			default:
				if checkpointed == nil {
					continue
				}
				// Restore the last checkpoint: changes since then
				// (evictions included) are lost, in both stores.
				db.Close()
				if db, _, _, err = state.Restore("job", state.Latest, state.Options{FS: fs}); err != nil {
					t.Fatal(err)
				}
				space = newTestSpace(t, db, "0")
				windows := -1
				if rng.IntN(2) == 0 { // else count by scan
					raw, _, err := space.Get(metaKey)
					if err != nil {
						t.Fatal(err)
					}
					m, err := decodeMeta(raw)
					if err != nil {
						t.Fatal(err)
					}
					windows = m.windows
				}
				if cs, err = openCachedStore(space, testCodec{}, bound, maxDirty, windows); err != nil {
					t.Fatal(err)
				}
				ms = copyStore(checkpointed)
			}
			if cs.Len() != ms.Len() {
				t.Fatalf("seed %d op %d: Len %d, want %d", seed, op, cs.Len(), ms.Len())
			}
			outside := 0
			for _, k := range keys {
				if _, cached := cs.keys[k]; !cached {
					outside += len(must(ms.Windows(k)))
				}
			}
			if cs.outside != outside {
				t.Fatalf("seed %d op %d: store counts %d windows of keys not cached, there are %d", seed, op, cs.outside, outside)
			}
			if cs.ndirty < 0 || cs.ndirty > maxDirty+1 {
				t.Fatalf("seed %d op %d: %d dirty entries, bound %d", seed, op, cs.ndirty, maxDirty)
			}
			if cs.size > bound && len(cs.keys) > 1 {
				t.Fatalf("seed %d op %d: cache holds %d entries over %d keys, bound %d", seed, op, cs.size, len(cs.keys), bound)
			}
		}
		db.Close()
	}
}

func TestStateMetaRoundTrip(t *testing.T) {
	for _, m := range []opMeta{{}, {wm: math.MinInt64}, {wm: math.MaxInt64, windows: 1 << 40}, {wm: -5, windows: 7}} {
		got, err := decodeMeta(encodeMeta(m))
		if err != nil || got != m {
			t.Fatalf("decodeMeta(encodeMeta(%+v)) = %+v, %v", m, got, err)
		}
	}
	for _, bad := range [][]byte{nil, {metaVersion}, {2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, append(encodeMeta(opMeta{}), 0)} {
		if _, err := decodeMeta(bad); err == nil {
			t.Fatalf("decodeMeta(%x) accepted", bad)
		}
	}
}

// FuzzStateMeta: the operator's state record decoder never panics, and
// what it accepts re-encodes to the same bytes.
func FuzzStateMeta(f *testing.F) {
	f.Add(encodeMeta(opMeta{wm: 12, windows: 3}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		if got := encodeMeta(m); string(got) != string(b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, m, got)
		}
	})
}
