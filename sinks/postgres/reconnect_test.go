package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testsrv"
)

// terminateBackends ends every client connection to the cluster but the
// one it uses, as an administrator, a failover or a pooler's idle
// timeout does.
func terminateBackends(t *testing.T, pg *testsrv.Postgres) {
	t.Helper()
	conn := pg.Connect(t)
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no backend to terminate: the sink holds no connection")
	}
}

// TestCommitAfterBackendTerminated commits an epoch after the server ended
// the sink's connection between two checkpoints: the sink connects again
// and commits it, once.
func TestCommitAfterBackendTerminated(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	j := newJob(t, Config{DSN: pg.DSN, Table: "views", CreateTable: true, Columns: windowCols, Job: "j", Sink: "out"})
	j.Start()
	defer j.Crash()
	j.Epoch(1, true, row(0, "a", 1))
	terminateBackends(t, pg)
	if err := j.EpochErr(2, true, row(1000, "b", 2)); err != nil {
		t.Fatalf("commit after the connection was terminated: %v", err)
	}
	j.Epoch(3, true, row(2000, "c", 3))
	want := []string{"a@0=1", "b@1000=2", "c@2000=3"}
	if got := tableRows(t, pg, "views"); !equal(got, want) {
		t.Fatalf("table: %v, want %v", got, want)
	}
}

// TestCommitWaitsForDatabaseRestart stops the cluster hard before a
// commit and starts it again while the commit runs: the commit waits for
// it and writes the epoch once.
func TestCommitWaitsForDatabaseRestart(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	j := newJob(t, Config{DSN: pg.DSN, Table: "views", CreateTable: true, Columns: windowCols, Job: "j", Sink: "out"})
	j.Start()
	defer j.Crash()
	j.Epoch(1, true, row(0, "a", 1))
	pg.Stop(t)
	started := make(chan struct{})
	go func() {
		defer close(started)
		time.Sleep(time.Second) // the commit finds the database down
		pg.Start(t)
	}()
	err := j.EpochErr(2, true, row(1000, "b", 2))
	<-started
	if err != nil {
		t.Fatalf("commit across a database restart: %v", err)
	}
	want := []string{"a@0=1", "b@1000=2"}
	if got := tableRows(t, pg, "views"); !equal(got, want) {
		t.Fatalf("table: %v, want %v", got, want)
	}
}
