package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sources"
)

// goneWait bounds a read that must fail because its topic is gone: a
// reader that sits silent past it fails the test (the client notices
// within seconds).
const goneWait = 90 * time.Second

// readErr reads from r until it fails, and returns the error; records
// before it fail the test, as does a read that is still silent after
// goneWait.
func readErr(t *testing.T, r sources.Reader) error {
	t.Helper()
	recs, err := readUntilErr(t, r)
	if len(recs) != 0 {
		t.Fatalf("read %d records before %v; want only an error", len(recs), err)
	}
	return err
}

// readUntilErr reads from r until it fails, and returns the records read
// and the error; a reader still silent after goneWait fails the test.
func readUntilErr(t *testing.T, r sources.Reader) ([]sources.Record, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), goneWait)
	defer cancel()
	var out []sources.Record
	buf := make([]sources.Record, 8)
	for {
		n, err := r.Read(ctx, buf)
		out = append(out, buf[:n]...)
		if ctx.Err() != nil {
			t.Fatalf("the reader stayed silent for %v after %d records: %v", goneWait, len(out), err)
		}
		if err != nil {
			return out, err
		}
	}
}

func deleteTopic(t *testing.T, brokers []string, topic string) {
	t.Helper()
	if _, err := admin(t, brokers).DeleteTopic(context.Background(), topic); err != nil {
		t.Fatal(err)
	}
}

func createTopic(t *testing.T, brokers []string, topic string, partitions int32) {
	t.Helper()
	if _, err := admin(t, brokers).CreateTopic(context.Background(), partitions, 1, nil, topic); err != nil {
		t.Fatal(err)
	}
}

// TestRecreatedWhileReading: with discovery off nothing lists the topics
// again, so the reader itself notices that its topic was deleted and
// created again: its read fails saying so, with the records it had not
// read, and the restore reads the new topic from its first record.
func TestRecreatedWhileReading(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "t")
	for range 3 { // a batch each: a fetch returns one
		produceN(t, brokers, "t", 1)
	}
	s, _ := New(Config{Brokers: brokers, Topics: []string{"t"}, DiscoverEvery: -1}, nil)
	s.opts = append(s.opts, kgo.FetchMaxPartitionBytes(1))
	r := open(t, s, "t/0", "")
	readN(t, r, 1) // the fetch saw 3
	bound := s.Bindings()
	deleteTopic(t, brokers, "t")
	createTopic(t, brokers, "t", 1)
	produceN(t, brokers, "t", 5)
	// The client may have fetched more before the delete; those are read.
	more, err := readUntilErr(t, r)
	lost := "the job had read all the records its fetches reported"
	if k := 1 + len(more); k < 3 {
		lost = fmt.Sprintf("at least %d records from there on (offsets %d to 2) that the job had not read are lost", 3-k, k)
	}
	if !errors.Is(err, ErrTopicGone) || !strings.Contains(err.Error(), "topic t was deleted and created again (topic ID "+bound["t"]) ||
		!strings.Contains(err.Error(), lost) || !strings.Contains(err.Error(), "resume the job: it reads the new topic from its first record") {
		t.Fatalf("read: %v; want the topic deleted and created again, and %q", err, lost)
	}
	t.Logf("read %d more records before the error: %v", len(more), err)
	s2, _ := New(Config{Brokers: brokers, Topics: []string{"t"}, DiscoverEvery: -1}, nil)
	if got := check(t, s2, map[string]string{"t/0": "1"}, bound); len(got) != 1 || got[0].Resume["t/0"] != "" {
		t.Fatalf("restore: %+v; want t/0 read from its first record", got)
	}
	if got := readN(t, open(t, s2, "t/0", ""), 5); got[0].Position != "0" {
		t.Fatalf("the new topic read from %s", got[0].Position)
	}
}

// TestRegexTopicDeleted: a topic a regex source reads is deleted and not
// created again. The reader's read fails saying so; the restore drops the
// topic's offsets, saying which, and reads on the other topics.
func TestRegexTopicDeleted(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "t1", "t2")
	produceN(t, brokers, "t1", 2)
	produceN(t, brokers, "t2", 2)
	s, _ := New(Config{Brokers: brokers, TopicRegex: "t.*"}, nil)
	r := open(t, s, "t1/0", "")
	readN(t, r, 2)
	readN(t, open(t, s, "t2/0", ""), 2)
	bound := s.Bindings()
	deleteTopic(t, brokers, "t1")
	err := readErr(t, r)
	if !errors.Is(err, ErrTopicGone) || !strings.Contains(err.Error(), "topic t1 was deleted while the job read it, before offset 2") ||
		!strings.Contains(err.Error(), "resume the job: it reads on without the topic") {
		t.Fatalf("read: %v; want the topic deleted", err)
	}
	s2, _ := New(Config{Brokers: brokers, TopicRegex: "t.*"}, nil)
	got := check(t, s2, map[string]string{"t1/0": "1", "t2/0": "1"}, bound)
	if len(got) != 1 || len(got[0].Resume) != 1 || got[0].Resume["t1/0"] != "" ||
		!strings.Contains(got[0].Problem, "topic t1 no longer exists (it was deleted since): the job no longer reads it; "+
			"records written to it after the checkpoint's offsets (t1/0 after 1)") {
		t.Fatalf("restore: %+v; want t1's offsets dropped, saying so", got)
	}
	if shards, err := s2.Shards(context.Background()); err != nil || len(shards) != 1 || shards[0].ID != "t2/0" {
		t.Fatalf("shards after the delete: %v, %v", shards, err)
	}
}

// TestWithoutTopicIDs: a broker without topic IDs (Kafka before 2.8;
// here the client asks for 2.7's versions) gives the range checks only.
// A deleted topic is still told from its fetch errors, and one created
// again whose log ends before the reader's offset.
func TestWithoutTopicIDs(t *testing.T) {
	for _, recreate := range []bool{false, true} {
		brokers := testsrv.Kafka(t, 1, "t")
		produceN(t, brokers, "t", 3)
		s, _ := New(Config{Brokers: brokers, TopicRegex: "t"}, nil)
		s.opts = append(s.opts, kgo.MaxVersions(kversion.V2_7_0()))
		r := open(t, s, "t/0", "")
		readN(t, r, 3)
		if b := s.Bindings(); len(b) != 0 {
			t.Fatalf("bindings %v without topic IDs", b)
		}
		deleteTopic(t, brokers, "t")
		if recreate {
			createTopic(t, brokers, "t", 1)
			produceN(t, brokers, "t", 1)
		}
		// Created again, the topic may be told by the checks of the
		// fetch errors while it was gone, or by its first fetch at the
		// old offset, which is past its log's end.
		err := readErr(t, r)
		if !(errors.Is(err, ErrTopicGone) && strings.Contains(err.Error(), "topic t was deleted while the job read it")) &&
			!(recreate && errors.Is(err, ErrTopicGone) && strings.Contains(err.Error(), "the partition's log ends at offset 1, before offset 3 the job reads next")) &&
			!(recreate && errors.Is(err, kerr.OffsetOutOfRange) && strings.Contains(err.Error(), "fetch at offset 3") &&
				strings.Contains(err.Error(), "or the topic was deleted and created again (a broker without topic IDs cannot tell)")) {
			t.Fatalf("recreate %v: read: %v", recreate, err)
		}
		t.Logf("recreate %v: %v", recreate, err)
	}
}

// TestGoneNeedsChecksInARow: a fetch that says the topic is unknown makes
// the reader ask the broker; a topic that is there passes (the same
// errors come right after a topic is created), and a gone one is said
// only once goneChecks checks in a row agree.
func TestGoneNeedsChecksInARow(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "t")
	s, _ := New(Config{Brokers: brokers, TopicRegex: "t"}, nil)
	r := open(t, s, "t/0", "").(*reader)
	ctx := context.Background()
	for range goneChecks + 1 {
		if err := r.checkTopic(ctx); err != nil || r.goneChecks != 0 {
			t.Fatalf("the topic is there: %v, %d checks", err, r.goneChecks)
		}
	}
	deleteTopic(t, brokers, "t")
	for i := range goneChecks - 1 {
		if err := r.checkTopic(ctx); err != nil || r.goneChecks != i+1 {
			t.Fatalf("check %d of a gone topic: %v, %d checks; want nil until %d agree", i+1, err, r.goneChecks, goneChecks)
		}
	}
	if err := r.checkTopic(ctx); !errors.Is(err, ErrTopicGone) {
		t.Fatalf("check %d of a gone topic: %v", goneChecks, err)
	}
}
