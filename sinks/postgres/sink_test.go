package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/internal/sinktest"
)

var windowCols = sinks.WindowColumns(sinks.Column{Name: "views", Type: sinks.Int64}, sinks.Column{Name: "avg_ms", Type: sinks.Float64})

func row(start int64, key string, views int) sinks.Row {
	return sinks.Row{Key: key, Value: map[string]any{"window_start": float64(start), "window_end": float64(start + 1000),
		"key": key, "views": float64(views), "avg_ms": float64(views) / 2}}
}

// tableRows returns "key@start=views" for every row of the table, in key
// order: a duplicate shows twice.
func tableRows(t *testing.T, pg *testsrv.Postgres, table string) []string {
	t.Helper()
	conn := pg.Connect(t)
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT key, (extract(epoch from window_start) * 1000)::bigint, views FROM `+table+` ORDER BY key, window_start, views`)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var k string
		var start, views int64
		if err := rows.Scan(&k, &start, &views); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s@%d=%d", k, start, views))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// job opens the sink on a state store restored from the latest
// checkpoint (or a fresh one), as a restarted job does.
type job = sinktest.Job[*Sink]

func newJob(t *testing.T, cfg Config) *job {
	return &job{T: t, Dir: t.TempDir(), Sink: cfg.Sink, New: func() (*Sink, error) { return New(context.Background(), cfg) }}
}

// TestExactlyOnceAcrossCrashes crashes the sink at each point of an
// epoch's life: before its checkpoint (rows replayed by the source, not
// the sink), after the checkpoint but before Commit (OpenState commits
// it), and after Commit before the next checkpoint forgets it (OpenState
// must skip it). In insert mode any duplicate would show.
func TestExactlyOnceAcrossCrashes(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	j := newJob(t, Config{DSN: pg.DSN, Table: "views", CreateTable: true, Columns: windowCols, Job: "j", Sink: "out"})
	j.Start()
	j.Epoch(1, true, row(0, "a", 1), row(0, "b", 2))
	// Crash before the checkpoint of epoch 2: its rows are lost to the
	// sink and the source replays them.
	if err := j.S.Write(context.Background(), []sinks.Row{row(1000, "a", 3)}); err != nil {
		t.Fatal(err)
	}
	j.Crash()
	j.Start()
	j.Epoch(2, false, row(1000, "a", 3)) // checkpointed, commit cut short
	j.Crash()
	j.Start() // commits epoch 2
	want := []string{"a@0=1", "a@1000=3", "b@0=2"}
	if got := tableRows(t, pg, "views"); !equal(got, want) {
		t.Fatalf("after recovering a cut-short commit: %v, want %v", got, want)
	}
	j.Epoch(3, true, row(2000, "c", 4)) // committed, but the checkpoint that forgets it never comes
	j.Crash()
	j.Start() // epoch 3 is staged again: the progress row skips it
	j.Epoch(4, true, row(3000, "a", 5))
	want = []string{"a@0=1", "a@1000=3", "a@3000=5", "b@0=2", "c@2000=4"}
	if got := tableRows(t, pg, "views"); !equal(got, want) {
		t.Fatalf("after replaying a committed epoch: %v, want %v", got, want)
	}
	j.Crash()
}

func TestUpsertKeepsLastRowPerKey(t *testing.T) {
	pg := testsrv.StartPostgres(t)
	j := newJob(t, Config{DSN: pg.DSN, Table: "latest", CreateTable: true, Columns: windowCols,
		Key: []string{"key", "window_start"}, Job: "j", Sink: "up"})
	j.Start()
	defer j.Crash()
	j.Epoch(1, true, row(0, "a", 1), row(0, "a", 2), row(0, "b", 1))
	j.Epoch(2, true, row(0, "a", 7), row(1000, "b", 1))
	want := []string{"a@0=7", "b@0=1", "b@1000=1"}
	if got := tableRows(t, pg, "latest"); !equal(got, want) {
		t.Fatalf("upserts: %v, want %v", got, want)
	}
}

func TestValidateRefusesInlinePasswords(t *testing.T) {
	for _, dsn := range []string{"postgres://u:secret@h/db", "host=h user=u password=secret", "postgres://u@h/db?password=x"} {
		c := Config{DSN: dsn, Table: "t", Job: "j", Sink: "s"}
		if err := c.Validate(); !errors.Is(err, sinks.ErrConfig) {
			t.Errorf("Validate(%q) = %v, want a configuration error", dsn, err)
		}
	}
	for _, c := range []Config{{DSN: "host=h", Table: "a;drop", Job: "j", Sink: "s"}, {DSN: "host=h", Table: "t", Key: []string{"k k"}, Job: "j", Sink: "s"}} {
		if err := c.Validate(); !errors.Is(err, sinks.ErrConfig) {
			t.Errorf("Validate(%+v) = %v, want a configuration error", c, err)
		}
	}
}
