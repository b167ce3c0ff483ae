package sinks

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/confine"
)

// A dashboard's state is its retained rows, not output staged for a
// target: a job restored with the dashboard's title and row limit changed
// shows the checkpoint's newest rows, within the new limit, under the new
// title, and keeps counting from the checkpoint's written count.
func TestDashboardRestoreWithNewConfig(t *testing.T) {
	j := newDashJob(t, DashboardConfig{Title: "old", MaxRows: 10, Columns: []Column{{Name: "n", Type: Int64}}})
	for i := range 6 {
		j.write([]Row{{Value: map[string]any{"n": int64(i)}}})
	}
	j.checkpoint(1, nil)
	j.cfg = DashboardConfig{Title: "new", MaxRows: 4, Columns: j.cfg.Columns}
	j.crash()
	retained, written := j.d.Rows()
	if j.d.Title() != "new" || retained != 4 || written != 6 {
		t.Fatalf("restored dashboard %q retains %d rows of %d written, want \"new\", 4 of 6", j.d.Title(), retained, written)
	}
	rows := j.d.JSONRows()
	if len(rows) != 4 || rows[0]["n"] != int64(2) || rows[3]["n"] != int64(5) {
		t.Fatalf("retained rows %v, want n 2..5", rows)
	}
}

// A file sink stages nothing: a checkpoint's rows are in the file it
// wrote them to once PreCommit returns. A job restored with another path
// leaves them there and writes only its own rows to the new path.
func TestFileRestoreWithNewPath(t *testing.T) {
	dir := t.TempDir()
	root, err := confine.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	db, sp := openSinkSpace(t, filepath.Join(t.TempDir(), "state"), false)
	defer db.Close()
	run := func(path string, resume bool, rows ...Row) {
		f, err := NewFile(FileConfig{Path: path, Root: root, Resume: resume})
		if err != nil {
			t.Fatal(err)
		}
		stageRows(t, f, sp, rows)
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	run("old.jsonl", false, Row{Value: map[string]any{"n": 1}}, Row{Value: map[string]any{"n": 2}})
	run("new.jsonl", true, Row{Value: map[string]any{"n": 3}})
	for name, want := range map[string]int{"old.jsonl": 2, "new.jsonl": 1} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Count(string(b), "\n"); got != want {
			t.Errorf("%s holds %d lines, want %d:\n%s", name, got, want, b)
		}
	}
}
