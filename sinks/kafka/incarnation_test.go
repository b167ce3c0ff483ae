package kafka

import (
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks/epochs"
	"github.com/runnel-dev/runnel/sinks/internal/sinktest"
)

// A fresh start of a job under a used name and sink id counts its epochs
// from 1 again; the earlier run's progress must not make the sink skip
// them. Within the new incarnation a replayed epoch is still skipped.
func TestFreshStartIsNotSkipped(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "out")
	cfg := Config{Brokers: brokers, Topic: "out", Job: "j", Sink: "k"}
	old := newJob(t, cfg)
	old.Start()
	for e := uint64(1); e <= 3; e++ {
		old.Epoch(e, true, row("old", int(e)))
	}
	old.S.Close()
	old.DB.Close()
	fresh := newJob(t, cfg)
	fresh.Start()
	fresh.Epoch(1, true, row("new", 1))
	fresh.Epoch(2, true, row("new", 2))
	fresh.crash()
	fresh.Start() // restored: epoch 2, staged again, is skipped
	fresh.Epoch(3, true, row("new", 3))
	fresh.S.Close()
	fresh.DB.Close()
	want := []string{`old:{"key":"old","n":1}`, `old:{"key":"old","n":2}`, `old:{"key":"old","n":3}`,
		`new:{"key":"new","n":1}`, `new:{"key":"new","n":2}`, `new:{"key":"new","n":3}`}
	if got := consume(t, brokers, "out", kgo.ReadCommitted()); !slices.Equal(got, want) {
		t.Fatalf("read_committed consumer saw\n%v\nwant\n%v", got, want)
	}
}

// A checkpoint taken before sinks kept an incarnation restores against
// the progress group of that time (runnel-sink.JOB.SINK): restored twice,
// its epoch is committed once, and the epochs after go on under a new
// incarnation.
func TestLegacyProgressGroupRestores(t *testing.T) {
	brokers := testsrv.Kafka(t, 1, "out")
	j := newJob(t, Config{Brokers: brokers, Topic: "out", Job: "j", Sink: "k"})
	r := row("a", 1)
	sinktest.StageLegacy(t, j.Dir, "k", 1, epochs.Row{Key: r.Key, Value: r.Value})
	j.Start() // commits epoch 1 under the legacy group
	if inc := j.S.txn.Incarnation(); len(inc) != epochs.IncarnationLen {
		t.Fatalf("incarnation after the restore %q, want a new one", inc)
	}
	j.crash()
	j.Start() // the same checkpoint again: epoch 1 skipped
	j.Epoch(2, true, row("a", 2))
	j.crash()
	j.Start() // checkpoint 2, with the incarnation: epoch 2 skipped
	j.Epoch(3, true, row("a", 3))
	j.S.Close()
	j.DB.Close()
	want := []string{`a:{"key":"a","n":1}`, `a:{"key":"a","n":2}`, `a:{"key":"a","n":3}`}
	if got := consume(t, brokers, "out", kgo.ReadCommitted()); !slices.Equal(got, want) {
		t.Fatalf("read_committed consumer saw\n%v\nwant\n%v", got, want)
	}
}
