package jobs

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

const benchFunctionJob = `name: fn-bench
source: {stream: in, start: trim_horizon}
operators:
  - id: handle
    function:
      handler: "(batch) => ({records: [{partitionKey: 'n', data: batch.length}]})"
      batch_size: %d
sinks:
  - {id: out, log: {}}
`

// BenchmarkFunctionJob runs a trivial function (one output per batch)
// over 100,000 records already in a 4-shard stream, per batch size, and
// reports records/s and batches/s (wall time) and the process's CPU time
// per record.
func BenchmarkFunctionJob(b *testing.B) {
	st := streamstest.Open(b, streams.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), SyncInterval: time.Second}, "in", 4)
	const n = 100_000
	last := map[string]string{}
	for i := 0; i < n; i += 500 {
		recs := make([]streams.PutRecord, 500)
		for k := range recs {
			recs[k] = streams.PutRecord{PartitionKey: fmt.Sprintf("u-%d", (i+k)%997), Data: fmt.Appendf(nil, `{"n":%d,"page":"/p/%d"}`, i+k, (i+k)%50)}
		}
		res, err := st.Put(context.Background(), "in", recs)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			last[r.ShardID] = r.SequenceNumber()
		}
	}
	for _, size := range []int{100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", size), func(b *testing.B) {
			spec, err := Parse(fmt.Appendf(nil, benchFunctionJob, size))
			if err != nil {
				b.Fatal(err)
			}
			if err := spec.Validate(); err != nil {
				b.Fatal(err)
			}
			var batches int64
			var elapsed, cpu time.Duration
			for b.Loop() {
				built, err := Build(spec, Env{Store: st, Log: io.Discard})
				if err != nil {
					b.Fatal(err)
				}
				start, cpu0 := time.Now(), cpuclock.Process()
				j, err := engine.Start(context.Background(), built.Graph, engine.Options{})
				if err != nil {
					b.Fatal(err)
				}
				for !caughtUp(j.Status(), last) {
					if s := j.Status(); s.State == engine.Failed {
						b.Fatal(s.Reason)
					}
					time.Sleep(time.Millisecond)
				}
				elapsed, cpu = elapsed+time.Since(start), cpu+cpuclock.Since(cpu0)
				for _, o := range j.Status().Operators {
					if o.ID == "handle" {
						batches += o.GojaBatches
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				j.Stop(ctx)
				cancel()
			}
			b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(batches)/elapsed.Seconds(), "batches/s")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(n*b.N), "cpu-ns/record")
			b.ReportMetric(0, "ns/op")
		})
	}
}

// caughtUp reports whether every shard's position is its last record's.
func caughtUp(s engine.Status, last map[string]string) bool {
	done := 0
	for _, sh := range s.Shards {
		if sh.Position != "" && sh.Position == last[sh.Shard] {
			done++
		}
	}
	return done == len(last)
}
