package postgres

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
)

// retargetJob is a job whose sink configuration cfg a test changes between
// runs, as a deploy from a savepoint with a new job file does.
func retargetJob(t *testing.T, cfg *Config) *job {
	return &job{T: t, Dir: t.TempDir(), Sink: cfg.Sink, New: func() (*Sink, error) { return New(context.Background(), *cfg) }}
}

// createDB creates database name in pg's cluster and returns its DSN.
func createDB(t *testing.T, pg *testsrv.Postgres, name string) string {
	conn := pg.Connect(t)
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	return strings.Replace(pg.DSN, "dbname=postgres", "dbname="+name, 1)
}

// A job restored with its sink's table or database changed commits the
// checkpoint's staged epoch where it was staged for, once, whether or not
// the first run committed it; the new target gets only the new run's rows.
func TestRestoreCommitsToStagedTable(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	for _, c := range []struct {
		name      string
		newDB     bool
		committed bool
	}{
		{"table-committed", false, true},
		{"table-staged", false, false},
		{"db-committed", true, true},
		{"db-staged", true, false},
	} {
		name := strings.ReplaceAll(c.name, "-", "_")
		oldDSN := createDB(t, pg, "old_"+name)
		newDSN := oldDSN
		if c.newDB {
			newDSN = createDB(t, pg, "new_"+name)
		}
		cfg := Config{DSN: oldDSN, Table: "old_views", CreateTable: true, Columns: windowCols, Job: "j", Sink: "out"}
		j := retargetJob(t, &cfg)
		j.Start()
		j.Epoch(1, c.committed, row(0, "a", 1), row(0, "b", 2))
		j.Crash()
		cfg.DSN, cfg.Table = newDSN, "new_views"
		j.Start()
		j.Epoch(2, true, row(1000, "c", 3))
		j.Crash()
		if got, want := dbRows(t, pg, oldDSN, "old_views"), []string{"a@0=1", "b@0=2"}; !equal(got, want) {
			t.Errorf("%s: old table holds %v, want %v", c.name, got, want)
		}
		if got, want := dbRows(t, pg, newDSN, "new_views"), []string{"c@1000=3"}; !equal(got, want) {
			t.Errorf("%s: new table holds %v, want %v", c.name, got, want)
		}
	}
}

// Rows staged for a table dropped since cannot be delivered: OpenState
// fails with sinks.ErrStagedTargetGone naming it. Had the first run
// committed them, the dropped table held them and nothing is reported.
func TestRestoreStagedTableGone(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	for _, committed := range []bool{true, false} {
		cfg := Config{DSN: pg.DSN, Table: "gone", CreateTable: true, Columns: windowCols, Job: "j", Sink: "out"}
		if committed {
			cfg.Sink = "out2"
		}
		j := retargetJob(t, &cfg)
		j.Start()
		j.Epoch(1, committed, row(0, "a", 1))
		j.Crash()
		conn := pg.Connect(t)
		if _, err := conn.Exec(context.Background(), "DROP TABLE gone"); err != nil {
			t.Fatal(err)
		}
		conn.Close(context.Background())
		cfg.Table = "kept"
		err := j.Open()
		j.Crash()
		switch {
		case committed && err != nil:
			t.Errorf("committed: OpenState: %v, want nil", err)
		case !committed && (!errors.Is(err, sinks.ErrStagedTargetGone) || !strings.Contains(err.Error(), `"gone"`)):
			t.Errorf("staged: OpenState: %v, want ErrStagedTargetGone naming table gone", err)
		}
		if got := dbRows(t, pg, pg.DSN, "kept"); len(got) != 0 {
			t.Errorf("committed=%v: table kept holds %v, want nothing", committed, got)
		}
	}
}

// dbRows is tableRows of a table in the database dsn connects to.
func dbRows(t *testing.T, pg *testsrv.Postgres, dsn, table string) []string {
	t.Helper()
	other := *pg
	other.DSN = dsn
	return tableRows(t, &other, table)
}
