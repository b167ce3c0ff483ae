package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
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

// A worker started again under its name shows the failures of its
// earlier life: its status report in the status topic is read before it
// writes its first one.
func TestStatusKeepsEarlierFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake and a worker")
	}
	brokers := testsrv.Kafka(t, 2, "in", "out")
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	if _, err := kadm.NewClient(prod).CreateTopic(context.Background(), 1, -1, nil, StatusTopic); err != nil {
		t.Fatal(err)
	}
	// Reports of other workers and jobs first, so the one that counts is
	// not alone in the topic.
	var reports []*kgo.Record
	for i := range 200 {
		b, _ := json.Marshal(report{Job: "other", Worker: fmt.Sprint("w", i), At: time.Now().UTC()})
		reports = append(reports, &kgo.Record{Topic: StatusTopic, Key: []byte(fmt.Sprint("other/w", i)), Value: b})
	}
	earlier := Failure{Kind: "snapshot_upload", Text: "the snapshot of task out/1 was not uploaded: the store refused it"}
	b, _ := json.Marshal(report{Job: "st", Worker: "w1", At: time.Now().UTC(), Failures: []Failure{earlier}})
	reports = append(reports, &kgo.Record{Topic: StatusTopic, Key: []byte("st/w1"), Value: b})
	if err := prod.ProduceSync(context.Background(), reports...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	w, _ := runWorker(t, Config{Brokers: brokers, Spec: windowJob(t, "st", brokers)})
	var st *Status
	ok := testutil.Within(time.Minute, func() bool {
		st, err = w.Status(context.Background())
		return err == nil && len(st.Workers) == 1 && len(st.Workers[0].Failures) > 0
	})
	if !ok {
		t.Fatalf("the restarted worker shows no failures: %+v, %v", st, err)
	}
	if got := st.Workers[0].Failures[0]; got.Kind != earlier.Kind || got.Text != earlier.Text {
		t.Errorf("failure %+v, want the earlier life's %+v", got, earlier)
	}
	// Its own report, written since, carries the failure too.
	read, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(StatusTopic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer read.Close()
	var last report
	n := 0
	testutil.Within(time.Minute, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		read.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			if string(r.Key) == "st/w1" {
				n++
				_ = json.Unmarshal(r.Value, &last)
			}
		})
		return n >= 2
	})
	if n < 2 || len(last.Failures) == 0 || last.Failures[0].Text != earlier.Text {
		t.Errorf("the worker's latest report (of %d) has failures %+v, want the earlier life's", n, last.Failures)
	}
}
