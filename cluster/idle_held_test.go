package cluster

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestHeldCommitDoesNotIdlePartitions holds a worker in its transaction's
// commit (the broker answers EndTxn late) for longer than the idle
// timeout. Its loop reads nothing meanwhile, so the time does not count
// toward any partition's idleness: partition 1, whose next record comes
// a moment after the commit let go, was never idle. Were it counted so,
// the next stage's watermark would follow partition 0, far ahead, and
// partition 1's record would be late for its window, which fired
// without it.
func TestHeldCommitDoesNotIdlePartitions(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake and a worker")
	}
	c, brokers := kafkaCluster(t, 2, "in", "out")
	expireGroupMembers(t, c)

	// The commit that the test holds: the first EndTxn after armed is
	// set sleeps for hold, then kfake answers it.
	const idle = 2500 * time.Millisecond
	const hold = 4 * time.Second // longer than idle
	h := holdCommit(c, hold, nil)

	spec := windowJob(t, "idle-held", brokers)
	// A session timeout well above the hold: heartbeats share the held
	// request's connection.
	runWorker(t, Config{Brokers: brokers, Spec: spec, IdleTimeout: idle, CommitInterval: 100 * time.Millisecond,
		SessionTimeout: 15 * time.Second})
	produce := recordProducer(t, brokers)
	const base = int64(1_700_000_000_000)
	put := func(p int32, ts int64, k string) { t.Helper(); produce(p, base+ts, k) }
	rep := testsrv.ReadCommitted(t, "idle-held.per-k.repartition", brokers...)
	defer rep.Close()
	committed := func(k string, ts int64) { t.Helper(); waitRepartitioned(t, rep, k, base+ts) }

	put(0, 100, "a")
	put(1, 150, "b")
	put(1, 160, "b")
	committed("b", 160)
	// Partition 1's last record is read; the next commit is held, and
	// partition 0's record far ahead is read before or after it.
	h.armed.Store(true)
	put(0, 20_000, "a")
	<-h.held
	<-h.released
	// Not a timed assertion: any pause shorter than the idle timeout
	// after the commit let go (and longer than a commit interval) shows
	// the fault; partition 1's reads waited no longer than the pause.
	time.Sleep(500 * time.Millisecond)
	put(1, 200, "b")
	put(1, 20_000, "b")

	// a@100; b@150, b@160, b@200: the windows before 20 s.
	if counted := countWindows(t, brokers, base, 20_000, 4); counted["b@0"] != 3 {
		t.Fatalf("windows %v, want b@0 counting 3: partition 1 was taken for idle while the worker was held in its commit, and its record came late", counted)
	}
	// Nor was partition 1 announced idle before its record b@200 (in the
	// repartition partition of key b).
	if idleBefore(t, brokers, "idle-held.per-k.repartition", partitionOf("b", 2), "in/1", base+200) {
		t.Error("partition 1 was announced idle before its record b@200")
	}
}

// logWriter writes each line to the test's log.
type logWriter struct{ t *testing.T }

func (l logWriter) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// waitRepartitioned waits until rep (a read-committed client of a
// repartition topic) shows a record of key k at event time et: its
// source record was read and committed.
func waitRepartitioned(t *testing.T, rep *kgo.Client, k string, et int64) {
	t.Helper()
	want := fmt.Sprint(et)
	if !testutil.Within(time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		hit := false
		rep.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if e, ok := header(r, hdrTime); ok && e == want && string(r.Key) == k {
				hit = true
			}
		})
		return hit
	}) {
		t.Fatalf("the record %s@%d was not committed to the repartition topic", k, et)
	}
}

// countWindows reads the committed windows of topic out until those
// starting before before (ms after base) count want records, or 30 s
// passed; it fails the test unless they count want, each written once,
// and returns their counts by key@start (ms after base).
func countWindows(t *testing.T, brokers []string, base, before int64, want int) map[string]int {
	t.Helper()
	out := testsrv.ReadCommitted(t, "out", brokers...)
	defer out.Close()
	counted := map[string]int{}
	total := 0
	testutil.Within(30*time.Second, func() bool {
		eachWindow(t, out, func(row windowRow) {
			if row.Start-base >= before {
				return
			}
			id := fmt.Sprint(row.Key, "@", row.Start-base)
			if _, dup := counted[id]; dup {
				t.Errorf("window %s written twice", id)
			}
			counted[id] = row.N
			total += row.N
		})
		return total >= want
	})
	if total != want {
		t.Errorf("windows %v count %d records, want %d (a record read after its window fired is lost as late)", counted, total, want)
	}
	return counted
}

// idleBefore reads partition p of repartition topic topic (committed
// records) up to the record at event time et, and reports whether an
// idle record of producer came before it.
func idleBefore(t *testing.T, brokers []string, topic string, p int32, producer string, et int64) bool {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	at := fmt.Sprint(et)
	idle, found := false, false
	if !testutil.Within(30*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if found {
				return
			}
			if w, ok := header(r, hdrWatermark); ok && w == producer && string(r.Value) == idleValue {
				idle = true
			}
			if e, ok := header(r, hdrTime); ok && e == at {
				found = true
			}
		})
		return found
	}) {
		t.Fatalf("no record at event time %d in %s/%d", et, topic, p)
	}
	return idle
}
