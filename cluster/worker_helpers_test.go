package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/jobs"
)

// windowJob parses a job named name that counts records per key r.k in
// one-second windows, from topic in to topic out of the given brokers.
func windowJob(t *testing.T, name string, brokers []string) *jobs.Spec {
	t.Helper()
	addr := strings.Join(brokers, ",")
	spec, err := jobs.Parse([]byte(fmt.Sprintf(`name: %[2]s
source:
  kafka: {brokers: [%[1]s], topics: [in]}
  event_time: "r => r.ts"
operators:
  - id: per-k
    window: {key: "r => r.k", tumbling: 1s, aggregate: {n: count}}
sinks:
  - {id: o, input: per-k, kafka: {brokers: [%[1]s], topic: out}}
`, addr, name)))
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
