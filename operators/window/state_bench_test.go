package window

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/state"
)

// BenchmarkWindowState is BenchmarkWindow (keyed tumbling 1 s count +
// sum, 1,000 keys, 512-record batches, a watermark after each) with the
// state in memory and in Pebble behind the cache: all keys cached; the
// same with a SnapshotState every 64 batches (32,768 records); and a cache
// of 256 entries, a quarter of the live windows, so keys are evicted and
// reloaded all the time.
func BenchmarkWindowState(b *testing.B) {
	cases := []struct {
		name          string
		durable       bool
		cache, snapEv int
	}{
		{"memory", false, 0, 0},
		{"cached", true, 0, 0},
		{"cached+snapshots", true, 0, 64},
		{"evicting+snapshots", true, 256, 64},
	}
	recs := keyedBenchRecords(1 << 16)
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			comp, err := Compile(Config{Job: "bench", ID: "w", Kind: Tumbling, Size: time.Second, StateCacheEntries: c.cache,
				Aggregates: []aggregate.Spec{{Name: "views", Func: aggregate.Count}, {Name: "total_ms", Func: aggregate.Sum, Field: "ms"}}})
			if err != nil {
				b.Fatal(err)
			}
			var db *state.DB
			if c.durable {
				if db, err = state.Open(b.TempDir(), state.Options{}); err != nil {
					b.Fatal(err)
				}
				defer db.Close()
			}
			task := 0
			newOp := func() *Operator {
				op, err := comp.New()
				if err != nil {
					b.Fatal(err)
				}
				if db != nil {
					task++
					sp, err := db.Namespace("w", strconv.Itoa(task))
					if err != nil {
						b.Fatal(err)
					}
					if err := op.OpenState(sp); err != nil {
						b.Fatal(err)
					}
				}
				return op
			}
			op := newOp()
			out := operators.EmitterFunc(func(operators.Record) {})
			ctx := context.Background()
			b.ResetTimer()
			cpu0 := cpuclock.Process()
			n, batches := 0, 0
			for n < b.N {
				for i := 0; i < len(recs) && n < b.N; i += 512 {
					batch := &operators.Batch{Records: recs[i:min(i+512, len(recs))]}
					if err := op.Process(ctx, batch, out); err != nil {
						b.Fatal(err)
					}
					op.OnWatermark(ctx, batch.Records[len(batch.Records)-1].EventTime, out)
					n += len(batch.Records)
					if batches++; c.snapEv > 0 && batches%c.snapEv == 0 {
						if err := op.SnapshotState(); err != nil {
							b.Fatal(err)
						}
					}
				}
				op.OnWatermark(ctx, math.MaxInt64, out)
				op.Close()
				op = newOp()
			}
			b.ReportMetric(float64(cpuclock.Since(cpu0))/float64(n), "cpu-ns/record")
			b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "records/s")
		})
	}
}

// BenchmarkWindowCheckpoint times the checkpoint of a window holding
// 100,000 keys (one 1-minute window each: count, sum, p95), with every
// key changed since the last checkpoint, or 10% of them: SnapshotState,
// then db.Checkpoint. pause-ms is how long the runtime holds its sources:
// SnapshotState plus Info.Paused (max-pause-ms the longest, max-snapshot-ms
// the longest SnapshotState).
func BenchmarkWindowCheckpoint(b *testing.B) {
	for _, changed := range []int{100, 10} {
		b.Run(fmt.Sprintf("changed=%d%%", changed), func(b *testing.B) {
			const keys = 100_000
			op, err := New(Config{Job: "bench", ID: "w", Kind: Tumbling, Size: time.Minute,
				Aggregates: []aggregate.Spec{{Name: "n", Func: aggregate.Count}, {Name: "total", Func: aggregate.Sum, Field: "v"},
					{Name: "p95", Func: aggregate.P95, Field: "v"}}})
			if err != nil {
				b.Fatal(err)
			}
			db, err := state.Open(b.TempDir(), state.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			openOpState(b, db, op)
			ctx, out := context.Background(), operators.EmitterFunc(func(operators.Record) {})
			feed := func(from, n int) {
				batch := make([]operators.Record, 0, 1024)
				for i := range n {
					k := (from + i) % keys
					batch = append(batch, operators.Record{Key: fmt.Sprintf("user-%06d", k), EventTime: int64(i % 1000),
						Value: map[string]any{"v": float64(k % 500)}})
					if len(batch) == cap(batch) || i == n-1 {
						if err := op.Process(ctx, &operators.Batch{Records: batch}, out); err != nil {
							b.Fatal(err)
						}
						batch = batch[:0]
					}
				}
			}
			feed(0, keys)
			if err := op.SnapshotState(); err != nil {
				b.Fatal(err)
			}
			var snap, paused, total, worstPause, worstSnap time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				feed(i*keys*changed/100, keys*changed/100)
				b.StartTimer()
				t0 := time.Now()
				if err := op.SnapshotState(); err != nil {
					b.Fatal(err)
				}
				s := time.Since(t0)
				info, err := db.Checkpoint(uint64(i+1), []byte("positions"))
				if err != nil {
					b.Fatal(err)
				}
				snap += s
				paused += s + info.Paused
				worstPause = max(worstPause, s+info.Paused)
				worstSnap = max(worstSnap, s)
				total += s + info.Duration
			}
			ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
			b.ReportMetric(ms(snap), "snapshot-ms")
			b.ReportMetric(float64(worstSnap.Microseconds())/1000, "max-snapshot-ms")
			b.ReportMetric(ms(paused), "pause-ms")
			b.ReportMetric(float64(worstPause.Microseconds())/1000, "max-pause-ms")
			b.ReportMetric(ms(total), "total-ms")
		})
	}
}

// BenchmarkWindowRestart times a window task's restart over a large
// state: state.Restore of the latest checkpoint, a new operator's
// OpenState, and the first record processed (its key's windows read from
// Pebble). The state is 64 MiB (65,536 keys of ~1 KiB) with an 8 MiB
// block cache, or 1 GiB with a 64 MiB block cache and a 65,536-entry
// window cache with RUNNEL_STATE_LARGE=1. Building the state is not timed.
func BenchmarkWindowRestart(b *testing.B) {
	total, cache := int64(64<<20), int64(8<<20)
	if os.Getenv("RUNNEL_STATE_LARGE") != "" {
		total, cache = 1<<30, 64<<20
	}
	const pad = 1000
	keys := int(total / pad)
	cfg := Config{Job: "bench", ID: "w", Kind: Tumbling, Size: time.Minute, StateCacheEntries: 1 << 16,
		Aggregates: []aggregate.Spec{{Name: "n", Func: aggregate.Count},
			{Name: "blob", Func: aggregate.Custom, Type: aggregate.Int64,
				Object: `{init: () => "", add: (a, r) => a, merge: (a, b) => a + b, result: a => a.length}`}}}
	comp, err := Compile(cfg)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	opts := state.Options{CacheSize: cache}
	size := buildWindowState(b, comp, dir, opts, keys, pad)
	key := func(i int) string { return fmt.Sprintf("user-%09d", i) }
	rng := rand.New(rand.NewPCG(1, 2))
	var restore, open, first time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		db, _, _, err := state.Restore(dir, state.Latest, opts)
		if err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		op, err := comp.New()
		if err != nil {
			b.Fatal(err)
		}
		openOpState(b, db, op)
		t2 := time.Now()
		k := rng.IntN(keys)
		var fired []operators.Record
		out := operators.EmitterFunc(func(r operators.Record) { fired = append(fired, r) })
		rec := operators.Record{Key: key(k), EventTime: 30_000, Value: map[string]any{}}
		if err := op.Process(context.Background(), &operators.Batch{Records: []operators.Record{rec}}, out); err != nil {
			b.Fatal(err)
		}
		t3 := time.Now()
		restore, open, first = restore+t1.Sub(t0), open+t2.Sub(t1), first+t3.Sub(t2)
		b.StopTimer()
		// The record joined the restored window: count k+1, the blob kept.
		if st := must(op.store.Get(key(k), Window{0, 60_000})); st == nil {
			b.Fatalf("window of %s not restored", key(k))
		} else if r := op.aggs.Results(st.Accs); r[0] != int64(k%1000+1) || r[1] != int64(pad) {
			b.Fatalf("window of %s restored as %v", key(k), r)
		}
		op.Close()
		db.Close()
		b.StartTimer()
	}
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(b.N) }
	b.ReportMetric(ms(restore), "restore-ms")
	b.ReportMetric(ms(open), "openstate-ms")
	b.ReportMetric(ms(first), "first-record-ms")
	b.ReportMetric(ms(restore+open+first), "restart-ms")
	b.ReportMetric(float64(size)/(1<<20), "checkpoint-MiB")
}

// buildWindowState writes keys windows [0, 60000) of ~pad bytes each
// (count k%1000, a blob of random letters) as the operator's SnapshotState
// would, checkpoints them and closes the DB. It returns the checkpoint's
// size.
func buildWindowState(b *testing.B, comp *Compiled, dir string, opts state.Options, keys, pad int) int64 {
	db, err := state.Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sp, err := db.Namespace("w", "0")
	if err != nil {
		b.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/"
	w := Window{0, 60_000}
	batch := sp.NewBatch()
	for k := range keys {
		// aggregate.Instance.Marshal: per accumulator a length and its
		// bytes; count is a varint, a custom accumulator JSON.
		count := binary.AppendVarint(nil, int64(k%1000))
		blob := make([]byte, pad+2)
		blob[0], blob[pad+1] = '"', '"'
		for i := 1; i <= pad; i++ {
			blob[i] = letters[rng.IntN(len(letters))]
		}
		v := binary.AppendUvarint(nil, uint64(len(count)))
		v = append(v, count...)
		v = binary.AppendUvarint(v, uint64(len(blob)))
		v = append(v, blob...)
		key := fmt.Sprintf("user-%09d", k)
		batch.Set(windowKey(key, w), v)
		batch.Set(endKey(key, w), nil)
		if batch.Len() >= 20_000 {
			if err := batch.Commit(); err != nil {
				b.Fatal(err)
			}
			batch = sp.NewBatch()
		}
	}
	batch.Set(metaKey, encodeMeta(opMeta{wm: 0, windows: keys}))
	if err := batch.Commit(); err != nil {
		b.Fatal(err)
	}
	info, err := db.Checkpoint(1, nil)
	if err != nil {
		b.Fatal(err)
	}
	return info.Size
}
