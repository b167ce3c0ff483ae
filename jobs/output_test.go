package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/sinks"
)

func outRows(n, from int) []sinks.Row {
	rows := make([]sinks.Row, n)
	for i := range rows {
		rows[i] = sinks.Row{Value: map[string]any{"n": from + i}}
	}
	return rows
}

func seqs(rows []OutputRow) []uint64 {
	out := make([]uint64, len(rows))
	for i, r := range rows {
		out[i] = r.Seq
	}
	return out
}

// TestOutputRing checks the numbering a reader of a sink's output relies
// on: rows after N, the next N to ask for, and how many left the ring.
func TestOutputRing(t *testing.T) {
	ctx := context.Background()
	o := newOutput(4)
	if rows, next, missed := o.Read(ctx, 0, 0, 0); len(rows) != 0 || next != 0 || missed != 0 {
		t.Fatalf("empty ring: %v next %d missed %d", rows, next, missed)
	}
	o.write(outRows(3, 1), false)
	rows, next, _ := o.Read(ctx, 0, 0, 0)
	if fmt.Sprint(seqs(rows)) != "[1 2 3]" || next != 3 {
		t.Fatalf("after 3 rows: %v next %d", seqs(rows), next)
	}
	if rows[2].Value.(map[string]any)["n"] != 3 {
		t.Fatalf("row 3 holds %v", rows[2].Value)
	}
	o.write(outRows(3, 4), false) // rows 4..6; 1 and 2 leave the ring
	rows, next, missed := o.Read(ctx, 1, 0, 0)
	if fmt.Sprint(seqs(rows)) != "[3 4 5 6]" || next != 6 || missed != 1 {
		t.Fatalf("after 1 with 6 written into 4: %v next %d missed %d", seqs(rows), next, missed)
	}
	rows, next, _ = o.Read(ctx, 4, 1, 0)
	if fmt.Sprint(seqs(rows)) != "[5]" || next != 5 {
		t.Fatalf("limit 1 after 4: %v next %d", seqs(rows), next)
	}
	rows, next, _ = o.Read(ctx, 6, 0, 0)
	if len(rows) != 0 || next != 6 {
		t.Fatalf("nothing new: %v next %d", seqs(rows), next)
	}
	// Past the end (a reader from an earlier server process): from the
	// oldest kept.
	rows, _, _ = o.Read(ctx, 100, 0, 0)
	if fmt.Sprint(seqs(rows)) != "[3 4 5 6]" {
		t.Fatalf("after 100: %v", seqs(rows))
	}
	// A batch bigger than the ring keeps its last rows.
	o.write(outRows(10, 7), false)
	rows, _, missed = o.Read(ctx, 6, 0, 0)
	if fmt.Sprint(seqs(rows)) != "[13 14 15 16]" || missed != 6 || rows[3].Value.(map[string]any)["n"] != 16 {
		t.Fatalf("after a 10-row batch: %v missed %d", seqs(rows), missed)
	}
}

// TestOutputTransactional checks that a transactional sink's rows show
// once their checkpoint commits, and that rows of a run that ended before
// its checkpoint committed never show.
func TestOutputTransactional(t *testing.T) {
	ctx := context.Background()
	o := newOutput(10)
	o.write(outRows(2, 1), true)
	o.preCommit(1)
	o.write(outRows(1, 3), true)
	if rows, _, _ := o.Read(ctx, 0, 0, 0); len(rows) != 0 {
		t.Fatalf("rows before any commit: %v", seqs(rows))
	}
	o.preCommit(2)
	o.commit(1)
	rows, next, _ := o.Read(ctx, 0, 0, 0)
	if fmt.Sprint(seqs(rows)) != "[1 2]" || next != 2 {
		t.Fatalf("after commit 1: %v", seqs(rows))
	}
	o.commit(2)
	rows, _, _ = o.Read(ctx, next, 0, 0)
	if len(rows) != 1 || rows[0].Value.(map[string]any)["n"] != 3 {
		t.Fatalf("after commit 2: %v", rows)
	}
	o.write(outRows(1, 4), true)
	o.dropUncommitted()
	o.preCommit(3)
	o.commit(3)
	if rows, _, _ := o.Read(ctx, 3, 0, 0); len(rows) != 0 {
		t.Fatalf("an uncommitted row of an ended run showed: %v", rows)
	}
}

// TestOutputWaits checks that a read with a wait returns as soon as a row
// comes.
func TestOutputWaits(t *testing.T) {
	o := newOutput(10)
	done := make(chan []OutputRow)
	go func() {
		rows, _, _ := o.Read(context.Background(), 0, 0, time.Minute)
		done <- rows
	}()
	o.write(outRows(1, 1), false)
	if rows := <-done; len(rows) != 1 {
		t.Fatalf("waiting read got %v", rows)
	}
}

const outputJob = `name: out
source:
  generator: {rate: max, keys: 3, count: 40}
operators:
  - {id: tag, map: "r => ({page: r.page, n: 1})"}
sinks:
  - {id: printed, input: tag, log: {}}
  - {id: copied, input: tag, stream: {name: out-copy}}
  - {id: saved, input: tag, file: {path: out.jsonl}}
checkpoint: {every: 100ms}
`

// TestManagerOutputOfEverySink checks that the rows of a log, a stream and
// a file sink of a server job can be read from the manager.
func TestManagerOutputOfEverySink(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	defer m.Close()
	if _, err := m.Submit([]byte(outputJob)); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, sink := range []string{"printed", "copied", "saved"} {
		var got []OutputRow
		var after uint64
		testutil.Within(20*time.Second, func() bool {
			page, err := m.Output(ctx, "out", sink, after, 0, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, page.Rows...)
			after = page.Next
			return len(got) >= 40
		})
		if len(got) != 40 {
			t.Fatalf("sink %s: %d rows, want 40", sink, len(got))
		}
		if v, ok := got[0].Value.(map[string]any); !ok || v["page"] == nil {
			t.Fatalf("sink %s: row %v", sink, got[0].Value)
		}
	}
	page, err := m.Output(ctx, "out", "", 0, 5, 0)
	if err != nil || page.Sink != "printed" || page.Kind != SinkLog || len(page.Rows) != 5 {
		t.Fatalf("default sink: %+v %v", page, err)
	}
	if _, err := m.Output(ctx, "out", "nope", 0, 0, 0); err == nil {
		t.Fatal("a sink the job does not have was read")
	}
}

// TestFileSinkWritesWhileRunning checks that a running job's JSON lines
// file sink has its rows in the file after a checkpoint, not only when the
// job stops.
func TestFileSinkWritesWhileRunning(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	defer m.Close()
	job := "name: slow\nsource:\n  generator: {rate: 20, keys: 2}\nsinks:\n  - {id: saved, file: {path: slow.jsonl}}\ncheckpoint: {every: 100ms}\n"
	if _, err := m.Submit([]byte(job)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "files", "slow.jsonl")
	var b []byte
	if !testutil.Within(20*time.Second, func() bool {
		b, _ = os.ReadFile(path)
		return strings.Count(string(b), "\n") >= 3
	}) {
		in, _ := m.Get("slow")
		t.Fatalf("the running job's file holds %d bytes after 20s (state %s %s)", len(b), in.State, in.Reason)
	}
	if in, _ := m.Get("slow"); in.State != "running" {
		t.Fatalf("job %s: %s", in.State, in.Reason)
	}
}
