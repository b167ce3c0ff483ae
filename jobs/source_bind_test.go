package jobs

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/sources"
)

// kafkaLife is a life job over a Kafka topic of one partition on a kfake
// broker.
type kafkaLife struct {
	*lifeEnv
	brokers []string
}

func newKafkaLife(t *testing.T) *kafkaLife {
	return &kafkaLife{lifeEnv: newLifeEnv(t), brokers: testsrv.Kafka(t, 1, "clicks")}
}

func (k *kafkaLife) admin() *kadm.Client {
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...))
	if err != nil {
		k.t.Fatal(err)
	}
	k.t.Cleanup(cl.Close)
	return kadm.NewClient(cl)
}

func (k *kafkaLife) produce(n int) {
	k.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.brokers...), kgo.DefaultProduceTopic("clicks"))
	if err != nil {
		k.t.Fatal(err)
	}
	defer cl.Close()
	for i := range n {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: fmt.Appendf(nil, `{"page":"/p/%d"}`, i%2)}).FirstErr(); err != nil {
			k.t.Fatal(err)
		}
	}
}

// running submits the job and waits until it read n records produced for
// it, then stops it at a final checkpoint.
func (k *kafkaLife) stoppedAfter(n int) {
	k.t.Helper()
	job := strings.Replace(lifeJob, "{stream: life-in}",
		fmt.Sprintf("{kafka: {brokers: [%s], topics: [clicks], discover_every: 0s}}", strings.Join(k.brokers, ", ")), 1)
	if _, err := k.m.Submit([]byte(job)); err != nil {
		k.t.Fatal(err)
	}
	k.produce(n)
	k.waitRead(int64(n))
	if err := k.m.Stop("life"); err != nil {
		k.t.Fatal(err)
	}
}

// waitRead waits until the job's run read n records; a failure says what
// state the job is in.
func (k *kafkaLife) waitRead(n int64) {
	k.t.Helper()
	testutil.Within(20*time.Second, func() bool { return k.read("life") >= n })
	if got := k.read("life"); got != n {
		in, _ := k.m.Get("life")
		k.t.Fatalf("job read %d records, want %d; job %s %s, warnings %q", got, n, in.State, in.Reason, in.Warnings)
	}
}

func (k *kafkaLife) warnings() string {
	in, err := k.m.Get("life")
	if err != nil {
		k.t.Fatal(err)
	}
	return strings.Join(in.Warnings, "\n")
}

// TestResumeAfterKafkaTopicRecreated: a job resumed after its topic was
// deleted and created again under the same name reads the new topic from
// its start; the checkpoint's offsets, of the old topic, would skip the
// new topic's first records.
func TestResumeAfterKafkaTopicRecreated(t *testing.T) {
	k := newKafkaLife(t)
	k.stoppedAfter(5)
	adm := k.admin()
	ctx := context.Background()
	if _, err := adm.DeleteTopic(ctx, "clicks"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "clicks"); err != nil {
		t.Fatal(err)
	}
	k.produce(8)
	if _, err := k.m.Resume("life"); err != nil {
		t.Fatal(err)
	}
	k.waitRead(8) // all of the new topic, not its records after offset 4
	if w := k.warnings(); !strings.Contains(w, "topic clicks was deleted and created again") {
		t.Fatalf("warnings %q: want one saying the topic was created again", w)
	}
}

// TestResumeKafkaAfterRetention: records deleted by retention while the
// job was stopped are skipped, and the job says how many; it does not
// fail.
func TestResumeKafkaAfterRetention(t *testing.T) {
	k := newKafkaLife(t)
	k.stoppedAfter(5)
	k.produce(5)
	del := kadm.Offsets{}
	del.Add(kadm.Offset{Topic: "clicks", Partition: 0, At: 8})
	if _, err := k.admin().DeleteRecords(context.Background(), del); err != nil {
		t.Fatal(err)
	}
	if _, err := k.m.Resume("life"); err != nil {
		t.Fatal(err)
	}
	k.waitRead(2) // offsets 8 and 9; 5, 6 and 7 are gone
	if w := k.warnings(); !strings.Contains(w, "retention deleted 3 records") {
		t.Fatalf("warnings %q: want one saying 3 records were deleted by retention", w)
	}
}

// TestRestoreDropsPositionsOfAChangedFile: a restore drops the position
// of a file whose content up to it changed (with its largest event time),
// so the file is read again from its first line, and says so in a
// warning and an ERROR log; other positions stay.
func TestRestoreDropsPositionsOfAChangedFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(path, []byte("{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := sources.NewFile(sources.FileConfig{Paths: []string{path}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(context.Background(), sources.Shard{ID: path}, "")
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]sources.Record, 2)
	if n, err := r.Read(context.Background(), buf); n != 2 || err != nil {
		t.Fatalf("read %d, %v", n, err)
	}
	r.Close()
	key := SourceID + "/" + path
	snap := &engine.Snapshot{Epoch: 7, Positions: map[string]string{key: buf[1].Position, "other/x": "1"},
		MaxEventTimes: map[string]int64{key: 5}}
	var logged strings.Builder
	m := &Manager{log: slog.New(slog.NewTextHandler(&logged, nil))}
	j := &Job{ID: "j"}

	if w, err := m.checkSourcePositions(j, src, snap); err != nil || len(w) != 0 || snap.Positions[key] != buf[1].Position {
		t.Fatalf("unchanged file: warnings %q, %v, positions %v", w, err, snap.Positions)
	}
	if err := os.WriteFile(path, []byte("{\"n\":7}\n{\"n\":8}\n{\"n\":9}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := m.checkSourcePositions(j, src, snap)
	if err != nil {
		t.Fatal(err)
	}
	if len(w) != 1 || !strings.HasPrefix(w[0], "checkpoint 7: file "+path+" changed since") {
		t.Fatalf("warnings %q", w)
	}
	if _, ok := snap.Positions[key]; ok || snap.Positions["other/x"] != "1" {
		t.Fatalf("positions %v: want the file's dropped, the others kept", snap.Positions)
	}
	if _, ok := snap.MaxEventTimes[key]; ok {
		t.Fatalf("max event times %v: want the file's dropped", snap.MaxEventTimes)
	}
	if !strings.Contains(logged.String(), "level=ERROR") || !strings.Contains(logged.String(), path) {
		t.Fatalf("log %q: want an ERROR naming the file", logged.String())
	}
}
