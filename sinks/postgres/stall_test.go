package postgres

import (
	"context"
	"log/slog"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/internal/sinktest"
)

// warnings hands the WARN records logged to it to a channel (dropping
// those the reader has not taken yet).
type warnings chan slog.Record

func (h warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (h warnings) Handle(_ context.Context, r slog.Record) error {
	select {
	case h <- r:
	default:
	}
	return nil
}
func (h warnings) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h warnings) WithGroup(string) slog.Handler      { return h }

// TestPausedDatabaseIsSaid pauses every process of the cluster (SIGSTOP)
// before a commit: the commit waits, and while it waits the sink logs a
// WARN naming the sink and table and lists the call as stalled; after
// SIGCONT the commit completes, and the epoch is in the table once.
func TestPausedDatabaseIsSaid(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	warns := make(warnings, 64)
	cfg := Config{DSN: pg.DSN, Table: "views", CreateTable: true, Columns: windowCols, Job: "paused-db", Sink: "out", Logger: slog.New(warns)}
	j := &job{T: t, Dir: t.TempDir(), Sink: cfg.Sink, New: func() (*Sink, error) {
		s, err := New(context.Background(), cfg)
		if err == nil {
			s.watch = s.watch.WithAfter(50 * time.Millisecond)
		}
		return s, err
	}}
	j.Start()
	defer j.Crash()
	j.Epoch(1, true, row(0, "a", 1))
	// On a loaded machine epoch 1's commit may itself have waited past the
	// watchdog's 50 ms: its WARN and count are not the pause's.
	for len(warns) > 0 {
		<-warns
	}
	before := sinks.StalledCalls()[sinks.StallKey{Job: "paused-db", Sink: "out", Kind: "postgres"}]

	sinktest.Epoch(t, j.S, j.DB, 2, row(1000, "b", 2))
	pids := pg.Processes()
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGSTOP)
	}
	resumed := false
	resume := func() {
		if !resumed {
			resumed = true
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGCONT)
			}
		}
	}
	defer resume()
	committed := make(chan error, 1)
	go func() { committed <- j.S.Commit(context.Background(), 2) }()

	var warn slog.Record
	attrs := map[string]string{}
	for !strings.Contains(attrs["call"], "epoch 2") {
		select {
		case warn = <-warns:
		case err := <-committed:
			t.Fatalf("the commit returned (%v) while the database was paused", err)
		case <-time.After(time.Minute):
			t.Fatal("no WARN in a minute of a commit waiting for the paused database")
		}
		clear(attrs)
		warn.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.String(); return true })
	}
	if attrs["sink"] != "out" || attrs["target"] != "table views" || attrs["job"] != "paused-db" {
		t.Errorf("WARN %q %v: want job, sink and table named", warn.Message, attrs)
	}
	if st := sinks.Stalled("paused-db"); len(st) != 1 || st[0].Sink != "out" {
		t.Errorf("stalled calls of the job while the database is paused: %v", st)
	}
	if n := sinks.StalledCalls()[sinks.StallKey{Job: "paused-db", Sink: "out", Kind: "postgres"}]; n != before+1 {
		t.Errorf("stalled calls counted %d, want %d", n, before+1)
	}
	resume()
	if err := <-committed; err != nil {
		t.Fatalf("commit after the database resumed: %v", err)
	}
	if st := sinks.Stalled("paused-db"); len(st) != 0 {
		t.Errorf("still stalled after the commit returned: %v", st)
	}
	want := []string{"a@0=1", "b@1000=2"}
	if got := tableRows(t, pg, "views"); !equal(got, want) {
		t.Fatalf("table: %v, want %v", got, want)
	}
}
