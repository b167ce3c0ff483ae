package jobs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

const benchCkptJob = `name: ckpt
source:
  stream: keys
  shards: 4
  event_time: "r => r.ts"
operators:
  - id: per-key
    window:
      key: "r => r.k"
      tumbling: 1h
      aggregate: {n: count, total: sum(v)}
sinks:
  - {id: board, dashboard: {}}
`

// BenchmarkJobCheckpoint measures whole-job checkpoints: a job whose
// window holds one open window per key for RUNNEL_CKPT_KEYS keys (default
// 100,000; fewer with -short) in a 4-shard stream, every key touched since
// the last checkpoint (the worst case: every cached entry dirty). It
// reports the time the sources were held (the processing pause), the
// whole checkpoint, its size, and the time a restart takes from the
// checkpoint to the first new record processed.
func BenchmarkJobCheckpoint(b *testing.B) {
	keys := 100_000
	if testing.Short() {
		keys = 10_000
	}
	if v := os.Getenv("RUNNEL_CKPT_KEYS"); v != "" {
		keys, _ = strconv.Atoi(v)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	dir := b.TempDir()
	st, err := streams.Open(dir, streams.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	spec, err := Parse([]byte(benchCkptJob))
	if err != nil {
		b.Fatal(err)
	}
	put := func(round int) {
		ts := int64(1_700_000_000_000)
		for i := 0; i < keys; i += 500 {
			var recs []streams.PutRecord
			for k := i; k < min(i+500, keys); k++ {
				key := "key-" + strconv.Itoa(k)
				recs = append(recs, streams.PutRecord{PartitionKey: key, Data: fmt.Appendf(nil, `{"k":%q,"v":%d,"ts":%d}`, key, round, ts)})
			}
			if _, err := st.Put(context.Background(), "keys", recs); err != nil {
				b.Fatal(err)
			}
		}
	}
	stateDir := dir + "/state"
	start := func(db *state.DB, snap *engine.Snapshot) *engine.Job {
		built, err := Build(spec, Env{Store: st})
		if err != nil {
			b.Fatal(err)
		}
		j, err := engine.Start(context.Background(), built.Graph, engine.Options{State: db, Restore: snap})
		if err != nil {
			b.Fatal(err)
		}
		return j
	}
	waitIn := func(j *engine.Job, n int64) {
		if testutil.Within(5*time.Minute, func() bool {
			for _, o := range j.Status().Operators {
				if o.ID == "per-key" && o.In >= n {
					return true
				}
			}
			return false
		}) {
			return
		}
		b.Fatalf("the job did not process %d records", n)
	}
	db, err := state.Open(stateDir, state.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	// The stream is created by the first Build.
	j := start(db, nil)
	put(0)
	waitIn(j, int64(keys))
	var held, total, aligned, paused time.Duration
	var size int64
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		put(i + 1)
		waitIn(j, int64(keys)*int64(i+2))
		b.StartTimer()
		res, err := j.Checkpoint(context.Background(), engine.CheckpointOptions{})
		if err != nil {
			b.Fatal(err)
		}
		held += res.Held
		total += res.Duration
		aligned += res.Aligned
		paused += res.Paused
		size = res.Size
	}
	b.StopTimer()
	b.ReportMetric(float64(held.Milliseconds())/float64(b.N), "held-ms/ckpt")
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "total-ms/ckpt")
	b.ReportMetric(float64(aligned.Milliseconds())/float64(b.N), "align-ms/ckpt")
	b.ReportMetric(float64(paused.Milliseconds())/float64(b.N), "store-pause-ms/ckpt")
	b.ReportMetric(float64(size)/(1<<20), "MiB")
	b.ReportMetric(float64(keys), "keys")

	// Crash (no final checkpoint), then restart from the last checkpoint
	// and time until a new record was processed.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	j.Stop(ctx)
	cancel()
	db.Close()
	begin := time.Now()
	db, _, meta, err := state.Restore(stateDir, state.Latest, state.Options{Logger: log})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	snap, err := engine.ParseSnapshot(meta)
	if err != nil {
		b.Fatal(err)
	}
	j = start(db, snap)
	if _, err := st.Put(context.Background(), "keys", []streams.PutRecord{{PartitionKey: "key-0", Data: []byte(`{"k":"key-0","v":1,"ts":1700000000000}`)}}); err != nil {
		b.Fatal(err)
	}
	waitIn(j, 1)
	b.ReportMetric(float64(time.Since(begin).Milliseconds()), "restart-ms")
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	j.Stop(ctx)
}
