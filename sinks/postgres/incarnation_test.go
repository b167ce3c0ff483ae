package postgres

import (
	"context"
	"testing"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks/epochs"
	"github.com/runnel-dev/runnel/sinks/internal/sinktest"
)

// A fresh start of a job under a used name and sink id (a new state
// store: the job deleted and submitted again, replaced without a
// savepoint, a new data directory) counts its epochs from 1 again; the
// earlier run's progress row must not make the sink skip them.
func TestFreshStartIsNotSkipped(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	cfg := Config{DSN: pg.DSN, Table: "views", CreateTable: true, Columns: windowCols, Job: "j", Sink: "out"}
	old := newJob(t, cfg)
	old.Start()
	for e := uint64(1); e <= 3; e++ {
		old.Epoch(e, true, row(int64(e)*1000, "old", int(e)))
	}
	old.Crash()
	fresh := newJob(t, cfg)
	fresh.Start()
	fresh.Epoch(1, true, row(0, "new", 1))
	fresh.Epoch(2, true, row(1000, "new", 2))
	fresh.Crash()
	fresh.Start() // restored: epoch 2, staged again, is skipped
	fresh.Epoch(3, true, row(2000, "new", 3))
	fresh.Crash()
	want := []string{"new@0=1", "new@1000=2", "new@2000=3", "old@1000=1", "old@2000=2", "old@3000=3"}
	if got := tableRows(t, pg, "views"); !equal(got, want) {
		t.Fatalf("table holds %v, want %v", got, want)
	}
}

// A checkpoint taken before sinks kept an incarnation restores against
// the progress row of that time (job column the job's name): a restored
// epoch committed before is skipped, one not committed is committed once,
// and the epochs after go on under a new incarnation.
func TestLegacyProgressRowRestores(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	cfg := Config{DSN: pg.DSN, Table: "views", CreateTable: true, Columns: windowCols, Job: "j", Sink: "out"}
	j := newJob(t, cfg)
	stage := func(e uint64) []epochs.Row {
		r := row(int64(e)*1000, "a", int(e))
		return []epochs.Row{{Value: r.Value}}
	}
	// Before the upgrade: epochs 1 and 2 committed (progress row at 2),
	// and checkpoint 3 holds epochs 2 (its commit done, not yet
	// forgotten) and 3 (not committed).
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for e := uint64(1); e <= 2; e++ {
		if err := s.commitRows(context.Background(), e, values(stage(e))); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()
	sinktest.StageLegacy(t, j.Dir, "out", 2, stage(2)...)
	sinktest.StageLegacy(t, j.Dir, "out", 3, stage(3)...)
	j.Start() // skips epoch 2, commits epoch 3
	j.Crash()
	j.Start() // the same checkpoint again: both skipped
	j.Epoch(4, true, row(4000, "a", 4))
	j.Crash()
	j.Start() // checkpoint 4, with the incarnation: epoch 4 skipped
	j.Epoch(5, true, row(5000, "a", 5))
	j.Crash()
	want := []string{"a@1000=1", "a@2000=2", "a@3000=3", "a@4000=4", "a@5000=5"}
	if got := tableRows(t, pg, "views"); !equal(got, want) {
		t.Fatalf("table holds %v, want %v", got, want)
	}
}
