package window

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/state"
)

// testAcc is an accumulator holding one number, so store tests can tell
// states apart without compiling aggregates.
type testAcc struct{ v int64 }

func (a *testAcc) Add(any) error                       { a.v++; return nil }
func (a *testAcc) Merge(o aggregate.Accumulator) error { a.v += o.(*testAcc).v; return nil }
func (a *testAcc) Result() any                         { return a.v }
func (a *testAcc) MarshalBinary() ([]byte, error)      { return binary.AppendVarint(nil, a.v), nil }
func (a *testAcc) UnmarshalBinary(b []byte) error {
	v, n := binary.Varint(b)
	if n <= 0 {
		return errors.New("bad varint")
	}
	a.v = v
	return nil
}

// testCodec encodes a State of testAccs, padded to pad bytes to stand for
// bigger aggregates.
type testCodec struct{ pad int }

func (c testCodec) Marshal(s *State) ([]byte, error) {
	b := binary.AppendUvarint(nil, uint64(len(s.Accs)))
	for _, a := range s.Accs {
		b = binary.AppendVarint(b, a.(*testAcc).v)
	}
	return append(b, make([]byte, c.pad)...), nil
}

func (c testCodec) Unmarshal(b []byte) (*State, error) {
	n, k := binary.Uvarint(b)
	if k <= 0 {
		return nil, errors.New("bad state")
	}
	b = b[k:]
	s := &State{}
	for range n {
		v, k := binary.Varint(b)
		if k <= 0 {
			return nil, errors.New("bad state")
		}
		b = b[k:]
		s.Accs = append(s.Accs, &testAcc{v})
	}
	return s, nil
}

func testState(v int64) *State { return &State{Accs: []aggregate.Accumulator{&testAcc{v}}} }

func stateValue(s *State) int64 {
	if s == nil {
		return -1
	}
	return s.Accs[0].(*testAcc).v
}

func newTestDB(t testing.TB, opts state.Options) *state.DB {
	t.Helper()
	if opts.FS == nil {
		opts.FS = vfs.NewMem()
	}
	db, err := state.Open("job", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newTestSpace(t testing.TB, db *state.DB, task string) *state.Space {
	t.Helper()
	s, err := db.Namespace("window", task)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type flatEntry struct {
	Key   string
	W     Window
	Value int64
}

func flatten(es []Entry) []flatEntry {
	out := make([]flatEntry, 0, len(es))
	for _, e := range es {
		out = append(out, flatEntry{e.Key, e.Window, stateValue(e.State)})
	}
	return out
}

func sortedWindows(ws []Window) []Window {
	ws = slices.Clone(ws)
	slices.SortFunc(ws, func(a, b Window) int {
		return cmp.Or(cmp.Compare(a.Start, b.Start), cmp.Compare(a.End, b.End))
	})
	if ws == nil {
		ws = []Window{}
	}
	return ws
}

// The Pebble store answers every operation like the in-memory store, over
// random keys (with NUL bytes and prefixes of each other) and negative and
// extreme times.
func TestPebbleStoreMatchesMemStore(t *testing.T) {
	keys := []string{"", "a", "a\x00", "a\x00b", "ab", "b", "\x00", "\xff", "k\x01"}
	times := []int64{math.MinInt64, -1000, -1, 0, 1, 5, 10, 999, math.MaxInt64 - 1, math.MaxInt64}
	for _, seed := range testutil.Seeds(t, 20, 20) {
		rng := rand.New(rand.NewPCG(seed, 5))
		db := newTestDB(t, state.Options{})
		ps := must(NewPebbleStore(newTestSpace(t, db, fmt.Sprint(seed)), testCodec{}))
		ms := NewMemStore()
		randWindow := func() Window {
			a, b := times[rng.IntN(len(times))], times[rng.IntN(len(times))]
			return Window{min(a, b), max(a, b)}
		}
		for op := range 2000 {
			key := keys[rng.IntN(len(keys))]
			switch r := rng.IntN(10); {
			case r < 4:
				w, v := randWindow(), rng.Int64N(1000)
				noErr(ps.Put(key, w, testState(v)))
				noErr(ms.Put(key, w, testState(v)))
			case r < 6:
				w := randWindow()
				if ws := must(ms.Windows(key)); len(ws) > 0 && rng.IntN(2) == 0 {
					w = ws[rng.IntN(len(ws))]
				}
				noErr(ps.Delete(key, w))
				noErr(ms.Delete(key, w))
			case r < 7:
				w := randWindow()
				if got, want := stateValue(must(ps.Get(key, w))), stateValue(must(ms.Get(key, w))); got != want {
					t.Fatalf("seed %d op %d: Get(%q,%v) = %d, want %d", seed, op, key, w, got, want)
				}
			case r < 8:
				if got, want := sortedWindows(must(ps.Windows(key))), sortedWindows(must(ms.Windows(key))); !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d op %d: Windows(%q) = %v, want %v", seed, op, key, got, want)
				}
			default:
				a, b := times[rng.IntN(len(times))], times[rng.IntN(len(times))]
				lo, hi := min(a, b), max(a, b)
				got, want := flatten(must(ps.Range(lo, hi))), flatten(must(ms.Range(lo, hi)))
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("seed %d op %d: Range(%d,%d] =\n%v\nwant\n%v", seed, op, lo, hi, got, want)
				}
			}
			if ps.Len() != ms.Len() {
				t.Fatalf("seed %d op %d: Len %d, want %d", seed, op, ps.Len(), ms.Len())
			}
		}
	}
}

// A store over restored state holds the checkpoint's windows and counts
// them.
func TestPebbleStoreRestored(t *testing.T) {
	fs := vfs.NewMem()
	db, err := state.Open("job", state.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	space := newTestSpace(t, db, "0")
	s := must(NewPebbleStore(space, testCodec{}))
	for i := range int64(50) {
		noErr(s.Put(fmt.Sprint("k", i%7), Window{i * 10, i*10 + 10}, testState(i)))
	}
	if _, err := db.Checkpoint(1, nil); err != nil {
		t.Fatal(err)
	}
	noErr(s.Put("late", Window{0, 1}, testState(1))) // after the checkpoint
	want := flatten(must(s.Range(math.MinInt64, math.MaxInt64)))
	db.Close()

	rdb, _, _, err := state.Restore("job", state.Latest, state.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	r := must(NewPebbleStore(newTestSpace(t, rdb, "0"), testCodec{}))
	got := flatten(must(r.Range(math.MinInt64, math.MaxInt64)))
	want = slices.DeleteFunc(want, func(e flatEntry) bool { return e.Key == "late" })
	if r.Len() != 50 || !reflect.DeepEqual(got, want) {
		t.Fatalf("restored Len %d, entries equal: %v", r.Len(), reflect.DeepEqual(got, want))
	}
}

// The window package's randomized equivalence test, with every instance's
// state in a Pebble store.
func TestRandomEquivalencePebble(t *testing.T) {
	for _, seed := range testutil.Seeds(t, 60, 15) {
		rng := rand.New(rand.NewPCG(seed, 1234))
		cfg := randomConfig(rng)
		combine := rng.IntN(2) == 0
		db := newTestDB(t, state.Options{CacheSize: 1 << 20})
		var task atomic.Int64
		cfg.NewStore = func(c Codec) Store {
			return must(NewPebbleStore(newTestSpace(t, db, fmt.Sprint(task.Add(1))), c))
		}
		t.Run(fmt.Sprintf("seed=%d/%s/combine=%v", seed, cfg.Kind, combine), func(t *testing.T) {
			runEquivalence(t, rng, cfg, combine)
		})
	}
}

// State eight times the block cache is stored and read back intact,
// including after a checkpoint and restore (the scaled-down form of the
// larger-than-cache benchmark).
func TestPebbleStoreLargerThanCache(t *testing.T) {
	const keys, pad = 8192, 1024 // 8 MiB of state over a 1 MiB cache
	dir := t.TempDir()
	opts := state.Options{CacheSize: 1 << 20}
	db, err := state.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	s := must(NewPebbleStore(newTestSpace(t, db, "0"), testCodec{pad: pad}))
	for i := range int64(keys) {
		noErr(s.Put(fmt.Sprint("k", i), Window{i, i + 100}, testState(i)))
	}
	if _, err := db.Checkpoint(1, nil); err != nil {
		t.Fatal(err)
	}
	db.Close()
	rdb, _, _, err := state.Restore(dir, state.Latest, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	r := must(NewPebbleStore(newTestSpace(t, rdb, "0"), testCodec{pad: pad}))
	if r.Len() != keys {
		t.Fatalf("Len %d", r.Len())
	}
	for i := range int64(keys) {
		if v := stateValue(must(r.Get(fmt.Sprint("k", i), Window{i, i + 100}))); v != i {
			t.Fatalf("key %d holds %d", i, v)
		}
	}
	if es := must(r.Range(99, 199)); len(es) != 100 || es[0].Window.End != 100 || stateValue(es[99].State) != 99 {
		t.Fatalf("Range(99,199] has %d entries", len(es))
	}
}

// BenchmarkPebbleStoreCheckpoint fills a store with 100,000 keys of window
// state and times a checkpoint of it, while a writer keeps putting; it
// reports the checkpoint's time and the longest a writer was blocked.
func BenchmarkPebbleStoreCheckpoint(b *testing.B) {
	dir := b.TempDir()
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	space := newTestSpace(b, db, "0")
	s := must(NewPebbleStore(space, testCodec{pad: 64}))
	const keys = 100_000
	for i := range int64(keys) {
		noErr(s.Put(fmt.Sprintf("user-%06d", i), Window{0, 60_000}, testState(i)))
	}
	writer := must(NewPebbleStore(newTestSpace(b, db, "1"), testCodec{pad: 64}))
	var maxStall, ckTotal, paused time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		stop := make(chan struct{})
		done := make(chan time.Duration)
		go func() {
			var worst time.Duration
			for n := 0; ; n++ {
				select {
				case <-stop:
					done <- worst
					return
				default:
				}
				t0 := time.Now()
				noErr(writer.Put(fmt.Sprint("w", n%1000), Window{0, 1}, testState(int64(n))))
				worst = max(worst, time.Since(t0))
			}
		}()
		info, err := db.Checkpoint(uint64(i+1), []byte("positions"))
		close(stop)
		stall := <-done
		if err != nil {
			b.Fatal(err)
		}
		ckTotal += info.Duration
		paused = max(paused, info.Paused)
		maxStall = max(maxStall, stall)
	}
	b.ReportMetric(float64(ckTotal.Milliseconds())/float64(b.N), "ms/checkpoint")
	b.ReportMetric(float64(paused.Microseconds())/1000, "max-paused-ms")
	b.ReportMetric(float64(maxStall.Microseconds())/1000, "max-writer-stall-ms")
}

// BenchmarkPebbleStoreLargerThanCache puts then reads window state several
// times the block cache: 64 MiB of state over an 8 MiB cache, or 1 GiB over
// 64 MiB with RUNNEL_STATE_LARGE=1. It reports ops/s of random Get+Put.
func BenchmarkPebbleStoreLargerThanCache(b *testing.B) {
	total, cache := int64(64<<20), int64(8<<20)
	if os.Getenv("RUNNEL_STATE_LARGE") != "" {
		total, cache = 1<<30, 64<<20
	}
	const pad = 1000
	keys := total / pad
	db, err := state.Open(b.TempDir(), state.Options{CacheSize: cache})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	s := must(NewPebbleStore(newTestSpace(b, db, "0"), testCodec{pad: pad}))
	key := func(i int64) string { return fmt.Sprintf("user-%09d", i) }
	for i := range keys {
		noErr(s.Put(key(i), Window{0, 60_000}, testState(i)))
	}
	rng := rand.New(rand.NewPCG(1, 1))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		k := key(rng.Int64N(keys))
		st := must(s.Get(k, Window{0, 60_000}))
		if st == nil {
			b.Fatalf("%s missing", k)
		}
		st.Accs[0].(*testAcc).v++
		noErr(s.Put(k, Window{0, 60_000}, st))
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
	b.ReportMetric(float64(keys), "keys")
}

// FuzzPebbleKey: the key encoding round-trips, keeps string order, and its
// decoder never panics on arbitrary bytes.
func FuzzPebbleKey(f *testing.F) {
	f.Add("a", "a\x00", []byte("a\x00\x01"))
	f.Add("", "\x00\xff", []byte{0, 0xff, 0})
	f.Fuzz(func(t *testing.T, a, b string, raw []byte) {
		ea, eb := appendKey(nil, a), appendKey(nil, b)
		if got, rest, err := readKey(append(ea, 'x')); err != nil || got != a || string(rest) != "x" {
			t.Fatalf("readKey(appendKey(%q)) = %q %q %v", a, got, rest, err)
		}
		if c := cmp.Compare(string(ea), string(eb)); c != cmp.Compare(a, b) {
			t.Fatalf("order of %q and %q not kept", a, b)
		}
		_, _, _ = readKey(raw)
	})
}
