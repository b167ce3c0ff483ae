package cluster

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// A source partition's idle mark belongs to the life of the job it was
// written in. Here every source partition goes idle, the job stops, each
// partition then gets records (partition 0's reaching far ahead in event
// time), and the job starts again over its kept state: no window may fire
// on partition 0's watermark alone while the other partitions' records
// wait to be read, so every record is counted once and none is late.
func TestIdleMarksDoNotOutliveTheJobsLife(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake and a worker")
	}
	const parts = 3
	brokers := testsrv.Kafka(t, parts, "in", "out")
	spec := windowJob(t, "idle-restart", brokers)
	const idle = 300 * time.Millisecond
	run := func() (stop func()) {
		_, stop = runWorker(t, Config{Brokers: brokers, Spec: spec, IdleTimeout: idle})
		return stop
	}
	put := recordProducer(t, brokers)
	const base = int64(1_700_000_000_000)
	out := testsrv.ReadCommitted(t, "out", brokers...)
	defer out.Close()
	counted := 0
	seen := map[string]bool{}
	// waitCounted reads the output until its windows count want records.
	waitCounted := func(want int) {
		t.Helper()
		testutil.Within(time.Minute, func() bool {
			eachWindow(t, out, func(row windowRow) {
				id := fmt.Sprint(row.Key, "@", row.Start)
				if seen[id] {
					t.Errorf("window %s written twice", id)
				}
				seen[id] = true
				counted += row.N
			})
			return counted >= want
		})
		if counted != want {
			t.Fatalf("the output's windows count %d records, want %d (records read after their windows fired are lost as late)", counted, want)
		}
	}

	// First life: 100 records per partition, then a record per partition
	// 100 s ahead, which fires every window before it.
	stop := run()
	for p := range int32(parts) {
		for i := range 100 {
			put(p, base+int64(i)*10, fmt.Sprint("k", i%5))
		}
		put(p, base+100_000, "mark")
	}
	waitCounted(parts * 100)
	// Every source partition is announced idle (its idle record is in
	// the repartition topic), then the job stops.
	rep := testsrv.ReadCommitted(t, "idle-restart.per-k.repartition", brokers...)
	defer rep.Close()
	idleOnes := map[string]bool{}
	if !testutil.Within(time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		rep.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if producer, ok := header(r, hdrWatermark); ok && string(r.Value) == idleValue {
				idleOnes[producer] = true
			}
		})
		return len(idleOnes) == parts
	}) {
		t.Fatalf("idle records of %v only, want all %d source partitions'", idleOnes, parts)
	}
	stop()

	// While the job is stopped, partition 0 gets its records and a mark
	// far ahead first; the others get theirs after.
	for _, p := range []int32{0, 1, 2} {
		for i := range 100 {
			put(p, base+200_000+int64(i)*10, fmt.Sprint("k", i%5))
		}
		put(p, base+300_000, "mark")
	}
	run()
	waitCounted(parts*100 + parts + parts*100)
}
