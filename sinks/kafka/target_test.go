package kafka

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
)

// A job restored with its sink's topic changed (a deploy from a savepoint
// with a new job file) commits the checkpoint's staged epoch to the topic
// it was staged for, once, whether or not the first run committed it; the
// new topic gets only what the new run writes.
func TestRestoreCommitsToStagedTopic(t *testing.T) {
	for _, committed := range []bool{true, false} {
		brokers := testsrv.Kafka(t, 1, "old", "new")
		j := newJob(t, Config{Brokers: brokers, Topic: "old", Job: "j", Sink: "k"})
		j.Start()
		j.Epoch(1, committed, row("a", 1), row("b", 2))
		j.Crash()
		j.cfg.Topic = "new"
		j.Start()
		j.Epoch(2, true, row("c", 3))
		j.Crash()
		wantOld := []string{`a:{"key":"a","n":1}`, `b:{"key":"b","n":2}`}
		if got := consume(t, brokers, "old", kgo.ReadCommitted()); !slices.Equal(got, wantOld) {
			t.Errorf("committed=%v: topic old holds %v, want %v", committed, got, wantOld)
		}
		wantNew := []string{`c:{"key":"c","n":3}`}
		if got := consume(t, brokers, "new", kgo.ReadCommitted()); !slices.Equal(got, wantNew) {
			t.Errorf("committed=%v: topic new holds %v, want %v", committed, got, wantNew)
		}
	}
}

// Rows staged for a topic deleted since fail OpenState with
// sinks.ErrStagedTargetGone naming the topic; nothing reaches the new one.
func TestRestoreStagedTopicGone(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "old", "new")
	j := newJob(t, Config{Brokers: brokers, Topic: "old", Job: "j", Sink: "k"})
	j.Start()
	j.Epoch(1, false, row("a", 1))
	j.Crash()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	res, err := kadm.NewClient(cl).DeleteTopics(context.Background(), "old")
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	j.cfg.Topic = "new"
	err = j.Open()
	j.Crash()
	if !errors.Is(err, sinks.ErrStagedTargetGone) || !strings.Contains(err.Error(), `"old"`) {
		t.Fatalf("OpenState: %v, want ErrStagedTargetGone naming topic old", err)
	}
	if got := consume(t, brokers, "new", kgo.ReadCommitted()); len(got) != 0 {
		t.Fatalf("topic new holds %v, want nothing", got)
	}
}
