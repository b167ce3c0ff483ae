package postgres

import (
	"context"
	"sync"
	"testing"

	"github.com/runnel-dev/runnel/internal/testsrv"
)

// Sinks of one job opened at the same moment (workers starting together)
// all create the missing progress table and target without error, and
// the first rows committed at the same moment by sinks that do not know
// their columns create the table once.
func TestConcurrentSinksCreateTablesOnce(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	ctx := context.Background()
	const n = 6
	open := func(table string, cols bool) []*Sink {
		out := make([]*Sink, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				cfg := Config{DSN: pg.DSN, Table: table, CreateTable: true, Job: "j", Sink: "s"}
				if cols {
					cfg.Columns = windowCols
				}
				out[i], errs[i] = New(ctx, cfg)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("sink %d of %d opened at once: %v", i, n, err)
			}
		}
		t.Cleanup(func() {
			for _, s := range out {
				s.Close()
			}
		})
		return out
	}
	open("known", true)
	sinks := open("inferred", false)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, s := range sinks {
		wg.Go(func() {
			_, errs[i] = s.CommitAt(ctx, "outbox/"+string(rune('a'+i)), 0, 1, []any{row(1000, "k", i).Value})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("first commit of sink %d of %d at once: %v", i, n, err)
		}
	}
	if got := tableRows(t, pg, "inferred"); len(got) != n {
		t.Errorf("table rows %v, want %d", got, n)
	}
}

// CommitAt writes a range once: a second commit from the same position
// writes nothing and answers where the progress row is.
func TestCommitAtSkipsCommittedRange(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	ctx := context.Background()
	s, err := New(ctx, Config{DSN: pg.DSN, Table: "views", CreateTable: true, Columns: windowCols, Job: "j", Sink: "s"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	vals := []any{row(1000, "a", 1).Value, row(1000, "b", 2).Value}
	for range 2 {
		if done, err := s.CommitAt(ctx, "outbox/0", 0, 7, vals); err != nil || done != 7 {
			t.Fatalf("CommitAt(0, 7) = %d, %v; want 7", done, err)
		}
	}
	if pos, err := s.Position(ctx, "outbox/0"); err != nil || pos != 7 {
		t.Errorf("Position = %d, %v; want 7", pos, err)
	}
	if _, err := s.CommitAt(ctx, "0", 0, 1, vals); err == nil {
		t.Error("CommitAt accepted the checkpoint epochs' task")
	}
	if got, want := tableRows(t, pg, "views"), []string{"a@1000=1", "b@1000=2"}; !equal(got, want) {
		t.Errorf("table rows %v, want %v", got, want)
	}
}
