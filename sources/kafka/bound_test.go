package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sources"
)

func produceN(t *testing.T, brokers []string, topic string, n int) {
	t.Helper()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Value: fmt.Appendf(nil, `%d`, i)})
	}
	produce(t, brokers, recs...)
}

func admin(t *testing.T, brokers []string) *kadm.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func check(t *testing.T, s *Source, positions, bindings map[string]string) []sources.PositionProblem {
	t.Helper()
	ps, err := s.CheckPositions(context.Background(), positions, bindings)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestCheckPositionsOutOfRange: an offset before the log start (records
// deleted by retention) resumes at the log start and says how many records
// were lost; one past the log's end is dropped; offsets in range, and
// shards that are not the source's, are left alone.
func TestCheckPositionsOutOfRange(t *testing.T) {
	brokers := testsrv.Kafka(t, 2, "t", "other")
	produce(t, brokers, &kgo.Record{Topic: "t", Partition: 0, Value: []byte(`0`)}, &kgo.Record{Topic: "t", Partition: 0, Value: []byte(`1`)},
		&kgo.Record{Topic: "t", Partition: 0, Value: []byte(`2`)}, &kgo.Record{Topic: "t", Partition: 0, Value: []byte(`3`)},
		&kgo.Record{Topic: "t", Partition: 1, Value: []byte(`0`)})
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "t", Partition: 0, At: 3})
	if _, err := admin(t, brokers).DeleteRecords(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	s, _ := New(Config{Brokers: brokers, Topics: []string{"t"}}, nil)
	got := check(t, s, map[string]string{"t/0": "0", "t/1": "20", "other/0": "50", "/abs/in.jsonl": "3"}, nil)
	if len(got) != 2 {
		t.Fatalf("problems %+v, want 2", got)
	}
	if p := got[0]; p.Resume["t/0"] != "2" || len(p.Resume) != 1 ||
		!strings.Contains(p.Problem, "partition t/0: retention deleted 2 records after the checkpoint's offset 0") {
		t.Errorf("before the log start: %+v; want a resume after offset 2 and 2 records lost", p)
	}
	if p := got[1]; p.Resume["t/1"] != "" || len(p.Resume) != 1 ||
		!strings.Contains(p.Problem, "partition t/1: the checkpoint's offset 20 is past the partition's end (offset 1)") {
		t.Errorf("past the end: %+v; want t/1 dropped", p)
	}
	// In range: the last record read (3, the log end minus one), the
	// record before the log start (2), none read yet of an empty log.
	if got := check(t, s, map[string]string{"t/0": "3", "t/1": "0"}, nil); len(got) != 0 {
		t.Errorf("offsets in range: %+v", got)
	}
	if got := check(t, s, map[string]string{"t/0": "2"}, nil); len(got) != 0 {
		t.Errorf("the offset just before the log start: %+v", got)
	}
	// A resumed reader reads on from where the problem said.
	if r := readN(t, open(t, s, "t/0", "2"), 1); r[0].Position != "3" {
		t.Errorf("resumed at %s, want 3", r[0].Position)
	}
}

// TestTopicRecreated: readers bind the source to their topic's ID; a
// checkpoint of the old topic's offsets is dropped once the topic was
// deleted and created again, and a run that sees the new topic while
// reading the old one fails its listing instead of stalling silently.
func TestTopicRecreated(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "t")
	produceN(t, brokers, "t", 3)
	s, _ := New(Config{Brokers: brokers, TopicRegex: "t"}, nil)
	readN(t, open(t, s, "t/0", ""), 3)
	bound := s.Bindings()
	if len(bound) != 1 || bound["t"] == "" || bound["t"] == (kadm.TopicID{}).String() {
		t.Fatalf("bindings %v, want t's ID", bound)
	}
	// The same topic: nothing to say, and the binding holds.
	s2, _ := New(Config{Brokers: brokers, TopicRegex: "t"}, nil)
	if got := check(t, s2, map[string]string{"t/0": "2"}, bound); len(got) != 0 {
		t.Fatalf("same topic: %+v", got)
	}
	if b := s2.Bindings(); b["t"] != bound["t"] {
		t.Fatalf("bindings after an unchanged check %v, want %v", b, bound)
	}

	adm := admin(t, brokers)
	ctx := context.Background()
	if _, err := adm.DeleteTopic(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "t"); err != nil {
		t.Fatal(err)
	}
	produceN(t, brokers, "t", 5)
	if _, err := s.Shards(ctx); err == nil || !strings.Contains(err.Error(), "topic t was deleted and created again while the job ran") {
		t.Fatalf("listing the recreated topic mid-run: %v", err)
	}
	s3, _ := New(Config{Brokers: brokers, TopicRegex: "t"}, nil)
	got := check(t, s3, map[string]string{"t/0": "2"}, bound)
	if len(got) != 1 || got[0].Resume["t/0"] != "" || len(got[0].Resume) != 1 ||
		!strings.Contains(got[0].Problem, "topic t was deleted and created again since, or is another cluster's (topic ID "+bound["t"]) {
		t.Fatalf("recreated topic: %+v", got)
	}
	if b := s3.Bindings(); len(b) != 0 {
		t.Fatalf("bindings %v: the old topic's ID must not be bound", b)
	}
	// Opened afresh, the partition binds the new topic.
	readN(t, open(t, s3, "t/0", ""), 5)
	if b := s3.Bindings(); b["t"] == bound["t"] || b["t"] == "" {
		t.Fatalf("bindings %v after reading the new topic", b)
	}
}

// TestOutOfRangeWhileReading: a reader whose next records were deleted
// (here: opened after an offset the check did not see, as a reader that
// fell behind retention while running) fails its read with an error that
// says what happened and what a resume does; the client never picks a
// reset offset of its own.
func TestOutOfRangeWhileReading(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "t")
	produceN(t, brokers, "t", 5)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "t", Partition: 0, At: 3})
	if _, err := admin(t, brokers).DeleteRecords(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	s, _ := New(Config{Brokers: brokers, Topics: []string{"t"}}, nil)
	r := open(t, s, "t/0", "0")
	n, err := r.Read(context.Background(), make([]sources.Record, 8))
	if n != 0 || !errors.Is(err, kerr.OffsetOutOfRange) || !strings.Contains(err.Error(), "kafka source t/0: fetch at offset 1") ||
		!strings.Contains(err.Error(), "resume the job") {
		t.Fatalf("read %d, %v; want OFFSET_OUT_OF_RANGE at offset 1 with what to do", n, err)
	}
}
