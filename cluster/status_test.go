package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/jobs"
)

// A worker's Status shows its tasks of both stages and, once the input
// is processed, every partition committed to its end.
func TestStatusShowsTasksAndLag(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake and a worker")
	}
	brokers := testsrv.Kafka(t, 2, "in", "out")
	addr := strings.Join(brokers, ",")
	spec, err := jobs.Parse([]byte(fmt.Sprintf(`name: st
source:
  kafka: {brokers: [%[1]s], topics: [in]}
  event_time: "r => r.ts"
operators:
  - id: per-k
    window: {key: "r => r.k", tumbling: 1s, aggregate: {n: count}}
sinks:
  - {id: o, input: per-k, kafka: {brokers: [%[1]s], topic: out}}
`, addr)))
	if err != nil {
		t.Fatal(err)
	}
	m := NewMetrics()
	w, err := New(Config{Brokers: brokers, Spec: spec, ID: "w1", SessionTimeout: 6 * time.Second, Metrics: m,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("worker: %v", err)
		}
	})
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	for i := range 200 {
		b, _ := json.Marshal(map[string]any{"k": fmt.Sprint("k", i%7), "ts": 1_700_000_000_000 + int64(i)*50})
		if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: "in", Key: []byte(fmt.Sprint(i)), Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	var st *Status
	var last string
	ok := testutil.Within(time.Minute, func() bool {
		defer func() { last = fmt.Sprintf("%+v, %v", st, err) }()
		st, err = w.Status(context.Background())
		if err != nil || len(st.Workers) != 1 || len(st.Partitions) != 4 {
			return false
		}
		for _, p := range st.Partitions {
			if p.Lag != 0 || p.End <= 0 {
				return false
			}
		}
		return true
	})
	if !ok {
		t.Fatalf("status never showed 4 partitions drained: %s", last)
	}
	if got := len(st.Workers[0].Tasks); st.Workers[0].ID != "w1" || got != 4 {
		t.Errorf("workers %+v, want w1 with 4 tasks", st.Workers)
	}
}
