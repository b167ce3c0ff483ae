package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// A worker's Status shows its tasks of both stages and, once the input
// is processed, every partition committed to its end.
func TestStatusShowsTasksAndLag(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake and a worker")
	}
	brokers := testsrv.Kafka(t, 2, "in", "out")
	w, _ := runWorker(t, Config{Brokers: brokers, Spec: windowJob(t, "st", brokers)})
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
