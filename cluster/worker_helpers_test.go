package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testsrv/kfakegroup"
	"github.com/runnel-dev/runnel/jobs"
)

// windowJob parses a job named name that counts records per key r.k in
// one-second windows, from topic in to topic out of the given brokers.
func windowJob(t *testing.T, name string, brokers []string) *jobs.Spec {
	t.Helper()
	return windowJobFrom(t, name, fmt.Sprintf("kafka: {brokers: [%s], topics: [in]}", strings.Join(brokers, ",")), brokers)
}

// windowJobFrom parses a job named name that counts records per key r.k
// in one-second windows (event time r.ts), from source (the job file's
// source entry, one line) to topic out of the given brokers.
func windowJobFrom(t *testing.T, name, source string, brokers []string) *jobs.Spec {
	t.Helper()
	spec, err := jobs.Parse([]byte(fmt.Sprintf(`name: %[2]s
source:
  %[3]s
  event_time: "r => r.ts"
operators:
  - id: per-k
    window: {key: "r => r.k", tumbling: 1s, aggregate: {n: count}}
sinks:
  - {id: o, input: per-k, kafka: {brokers: [%[1]s], topic: out}}
`, strings.Join(brokers, ","), name, source)))
	if err != nil {
		t.Fatal(err)
	}
	return spec
}

// runWorker runs a worker of cfg (ID w1, a 6 s session timeout, logs
// discarded, where cfg leaves them unset) until the returned stop is
// called or the test ends; stop fails the test on the worker's error.
func runWorker(t *testing.T, cfg Config) (w *Worker, stop func()) {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "w1"
	}
	if cfg.SessionTimeout == 0 {
		cfg.SessionTimeout = 6 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	w, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	}
	t.Cleanup(stop)
	return w, stop
}

// kafkaCluster starts an in-process kfake cluster, seeding topics with
// parts partitions each, and returns it (for a test that controls its
// requests) with its brokers. It stops when the test ends. Unlike
// testsrv.Kafka, it does not time out the group members kfake forgets
// to (expireGroupMembers does).
func kafkaCluster(t *testing.T, parts int32, topics ...string) (*kfake.Cluster, []string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(parts, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, c.ListenAddrs()
}

// expireGroupMembers times out the group members c forgets to (package
// kfakegroup), writing what it does to the test's log, until the test
// ends.
func expireGroupMembers(t *testing.T, c *kfake.Cluster) {
	t.Helper()
	stop, err := kfakegroup.Start(c, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
}

// commitHold holds one transaction's commit on a kfake cluster: the
// first EndTxn after armed is set (and ready, if given, says so) sleeps
// for the hold before kfake answers it. held is closed when the hold
// begins, released when it ends.
type commitHold struct {
	armed          atomic.Bool
	held, released chan struct{}
}

func holdCommit(c *kfake.Cluster, hold time.Duration, ready func() bool) *commitHold {
	h := &commitHold{held: make(chan struct{}), released: make(chan struct{})}
	c.ControlKey(kmsg.EndTxn.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		if (ready != nil && !ready()) || !h.armed.CompareAndSwap(true, false) {
			return nil, nil, false
		}
		close(h.held)
		c.SleepControl(func() { time.Sleep(hold) })
		close(h.released)
		return nil, nil, false
	})
	return h
}

// windowRow is a row of windowJob's output topic.
type windowRow struct {
	Start int64  `json:"window_start"`
	Key   string `json:"key"`
	N     int    `json:"n"`
}

// eachWindow polls out (a client of windowJob's output topic) for up to
// 200 ms and calls fn with each row it reads; a row that does not decode
// fails the test.
func eachWindow(t *testing.T, out *kgo.Client, fn func(windowRow)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	out.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
		var row windowRow
		if err := json.Unmarshal(r.Value, &row); err != nil {
			t.Errorf("output %q: %v", r.Value, err)
			return
		}
		fn(row)
	})
}

// recordProducer returns a function that puts a record {"k": k, "ts": ts}
// to partition p of topic in of brokers; the client closes when the test
// ends.
func recordProducer(t *testing.T, brokers []string) func(p int32, ts int64, k string) {
	t.Helper()
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	return func(p int32, ts int64, k string) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"k": k, "ts": ts})
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Partition: p, Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}
