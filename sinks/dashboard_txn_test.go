package sinks

import (
	"context"
	"errors"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/runnel-dev/runnel/state"
)

// dashJob holds a dashboard's state DB across simulated crashes.
type dashJob struct {
	t   *testing.T
	dir string
	cfg DashboardConfig
	fs  vfs.FS // nil: the OS filesystem
	db  *state.DB
	d   *Dashboard
}

func newDashJob(t *testing.T, cfg DashboardConfig) *dashJob {
	return newDashJobFS(t, cfg, nil)
}

func newDashJobFS(t *testing.T, cfg DashboardConfig, fs vfs.FS) *dashJob {
	j := &dashJob{t: t, dir: filepath.Join(t.TempDir(), "state"), cfg: cfg, fs: fs}
	db, err := state.Open(j.dir, state.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	j.db = db
	t.Cleanup(func() {
		if j.db != nil {
			j.db.Close()
		}
	})
	j.open()
	return j
}

// open makes a new dashboard over the DB's space.
func (j *dashJob) open() {
	d, err := NewDashboard(j.cfg)
	if err != nil {
		j.t.Fatal(err)
	}
	if err := d.OpenState(context.Background(), j.space()); err != nil {
		j.t.Fatal(err)
	}
	j.d = d
}

func (j *dashJob) space() *state.Space {
	sp, err := j.db.Namespace("dashboard", "0")
	if err != nil {
		j.t.Fatal(err)
	}
	return sp
}

// crash drops the dashboard and the DB, restores the latest checkpoint
// (or starts afresh without one) and opens a new dashboard on it.
func (j *dashJob) crash() {
	j.d.Close()
	if err := j.db.Close(); err != nil {
		j.t.Fatal(err)
	}
	opts := state.Options{FS: j.fs}
	db, _, _, err := state.Restore(j.dir, state.Latest, opts)
	if errors.Is(err, state.ErrNoCheckpoint) {
		// No checkpoint yet: the job starts afresh.
		fs := j.fs
		if fs == nil {
			fs = vfs.Default
		}
		if err = fs.RemoveAll(j.dir); err == nil {
			db, err = state.Open(j.dir, opts)
		}
	}
	if err != nil {
		j.t.Fatal(err)
	}
	j.db = db
	j.open()
}

func (j *dashJob) write(rows []Row) {
	if err := j.d.Write(context.Background(), rows); err != nil {
		j.t.Fatal(err)
	}
}

// checkpoint runs a checkpoint through the sink: PreCommit, then rows
// after the barrier (written before the snapshot, as the runtime may),
// the snapshot, Commit.
func (j *dashJob) checkpoint(epoch uint64, after []Row) {
	ctx := context.Background()
	if err := j.d.PreCommit(ctx, epoch); err != nil {
		j.t.Fatal(err)
	}
	if len(after) > 0 {
		j.write(after)
	}
	if _, err := j.db.Checkpoint(epoch, nil); err != nil {
		j.t.Fatal(err)
	}
	if err := j.d.Commit(ctx, epoch); err != nil {
		j.t.Fatal(err)
	}
}

func (j *dashJob) retainedBatches() int {
	j.d.mu.Lock()
	defer j.d.mu.Unlock()
	return len(j.d.mu.batches)
}

func (j *dashJob) keys() int {
	n := 0
	if err := j.space().Scan(nil, func(k, v []byte) error { n++; return nil }); err != nil {
		j.t.Fatal(err)
	}
	return n
}

// dashRow is row n of a dashboard test: key k<n%3>, views n.
func dashRow(n int) Row {
	return windowRow(int64(n)*1000, "k"+strconv.Itoa(n%3), int64(n), float64(n)/2)
}

func dashRows(from, to int) []Row {
	var out []Row
	for n := from; n < to; n++ {
		out = append(out, dashRow(n))
	}
	return out
}

// checkDash asserts the dashboard retains exactly rows [from, to) and
// reports to as written.
func checkDash(t *testing.T, d *Dashboard, from, to int) {
	t.Helper()
	var want []map[string]any
	for n := from; n < to; n++ {
		want = append(want, wantJSON(int64(n)*1000, "k"+strconv.Itoa(n%3), int64(n), float64(n)/2))
	}
	got := d.JSONRows()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows:\n got %v\nwant %v (rows %d..%d)", got, want, from, to)
	}
	if r, w := d.Rows(); r != to-from || w != int64(to) {
		t.Fatalf("Rows() = %d retained, %d written; want %d, %d", r, w, to-from, to)
	}
}

func TestDashboardTxnRestoreHoldsCheckpointRows(t *testing.T) {
	j := newDashJob(t, DashboardConfig{Columns: aggCols})
	j.write(dashRows(0, 3))
	j.write(dashRows(3, 5))
	j.checkpoint(1, dashRows(5, 6)) // row 5 comes after the barrier
	j.write(dashRows(6, 8))
	checkDash(t, j.d, 0, 8) // visible at once
	j.crash()
	checkDash(t, j.d, 0, 5)
	// The replay adds each later row once.
	j.write(dashRows(5, 6))
	j.write(dashRows(6, 8))
	checkDash(t, j.d, 0, 8)
	j.checkpoint(2, nil)
	j.write(dashRows(8, 9))
	j.crash()
	checkDash(t, j.d, 0, 8)
}

// A new job's dashboard is empty, and so is one restored from a
// checkpoint taken before any row.
func TestDashboardTxnNewJobIsEmpty(t *testing.T) {
	j := newDashJob(t, DashboardConfig{Columns: aggCols})
	checkDash(t, j.d, 0, 0)
	j.checkpoint(1, nil)
	j.crash()
	checkDash(t, j.d, 0, 0)
}

func TestDashboardTxnTrimSurvivesRestore(t *testing.T) {
	const maxRows = 5
	j := newDashJob(t, DashboardConfig{Columns: aggCols, MaxRows: maxRows})
	j.write(dashRows(0, 3))
	j.write(dashRows(3, 6)) // trims row 0, slices the first batch
	j.checkpoint(1, dashRows(6, 7))
	checkDash(t, j.d, 2, 7)
	j.crash()
	checkDash(t, j.d, 1, 6)
	j.write(dashRows(6, 9))
	j.write(dashRows(9, 10))
	j.checkpoint(2, nil)
	checkDash(t, j.d, 5, 10)
	j.crash()
	checkDash(t, j.d, 5, 10)
	// Rows 5 (of the batch 3..5), 6..8 and 9: three batches and the head.
	if n := j.keys(); n != 4 {
		t.Errorf("%d keys stored for 5 rows in 3 batches and the head", n)
	}
}

// Random batches, checkpoints and crashes against a model: after a crash
// the dashboard holds the last MaxRows rows of its checkpoint.
func TestDashboardTxnRandomCrashes(t *testing.T) {
	for seed := range 20 {
		rng := rand.New(rand.NewPCG(uint64(seed), 11))
		maxRows := 1 + rng.IntN(12)
		// In memory: this test is about the model, not the disk.
		j := newDashJobFS(t, DashboardConfig{Columns: aggCols, MaxRows: maxRows}, vfs.NewMem())
		// Batch boundaries are fixed, as a replay repeats them.
		var bounds []int
		for n := 0; n < 200; {
			n += 1 + rng.IntN(6)
			bounds = append(bounds, min(n, 200))
		}
		retained := func(to int) (int, int) { return max(0, to-maxRows), to }
		ckpt := 0   // rows written as of the latest checkpoint's barrier
		ckptB := -1 // index of the last batch before it
		epoch := uint64(0)
		for b := 0; b < len(bounds); b++ {
			from := 0
			if b > 0 {
				from = bounds[b-1]
			}
			j.write(dashRows(from, bounds[b]))
			switch r := rng.IntN(10); {
			case r < 3:
				epoch++
				var after []Row
				if b+1 < len(bounds) && rng.IntN(2) == 0 {
					after = dashRows(bounds[b], bounds[b+1])
				}
				j.checkpoint(epoch, after)
				ckpt, ckptB = bounds[b], b
				if after != nil {
					b++
				} else if keys, batches := j.keys(), j.retainedBatches(); keys != batches+1 {
					t.Fatalf("seed %d: %d keys stored for %d batches and the head", seed, keys, batches)
				}
			case r < 4:
				j.crash()
				lo, hi := retained(ckpt)
				checkDash(t, j.d, lo, hi)
				b = ckptB
			}
			if keys := j.keys(); keys > maxRows+2 {
				t.Fatalf("seed %d: %d keys stored for at most %d rows", seed, keys, maxRows)
			}
		}
		lo, hi := retained(200)
		checkDash(t, j.d, lo, hi)
		j.d.Close()
		j.db.Close()
		j.db = nil
	}
}

func TestDashboardTxnInferredSchemaSurvivesRestore(t *testing.T) {
	j := newDashJob(t, DashboardConfig{})
	j.write(dashRows(0, 2))
	schema := j.d.Schema()
	j.checkpoint(1, nil)
	j.crash()
	if !j.d.Schema().Equal(schema) {
		t.Fatalf("schema after restore %v, want %v", j.d.Schema(), schema)
	}
	// A row with an extra field keeps the restored schema.
	extra := dashRow(2)
	extra.Value.(map[string]any)["aaa"] = "x"
	j.write([]Row{extra})
	if !j.d.Schema().Equal(schema) {
		t.Fatalf("schema after a new row %v, want %v", j.d.Schema(), schema)
	}
	checkDash(t, j.d, 0, 3)
}

func TestDashboardTxnOpenStateReplacesRowsAndEndsSubscriptions(t *testing.T) {
	j := newDashJob(t, DashboardConfig{Columns: aggCols})
	j.write(dashRows(0, 2))
	j.checkpoint(1, nil)
	d, err := NewDashboard(DashboardConfig{Columns: aggCols})
	if err != nil {
		t.Fatal(err)
	}
	sub := d.Subscribe(4)
	defer sub.Close()
	if err := d.Write(context.Background(), dashRows(0, 7)); err != nil {
		t.Fatal(err)
	}
	(<-sub.C()).Release()
	if err := d.OpenState(context.Background(), j.space()); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(sub.Err(), ErrRestored) {
		t.Fatalf("subscription ended with %v, want ErrRestored", sub.Err())
	}
	checkDash(t, d, 0, 2)
	if err := d.OpenState(context.Background(), j.space()); err == nil {
		t.Fatal("second OpenState: no error")
	}
}

func TestDashboardTxnColumnsChanged(t *testing.T) {
	j := newDashJob(t, DashboardConfig{Columns: aggCols})
	j.write(dashRows(0, 2))
	j.checkpoint(1, nil)
	d, _ := NewDashboard(DashboardConfig{Columns: WindowColumns(Column{Name: "views", Type: Int64})})
	if err := d.OpenState(context.Background(), j.space()); err == nil {
		t.Fatal("OpenState with other columns than stored: no error")
	}
}

func FuzzDashboardHead(f *testing.F) {
	enc, _ := encodeDashHead(dashHead{head: 3, written: 9, cols: aggCols})
	f.Add(enc)
	enc, _ = encodeDashHead(dashHead{})
	f.Add(enc)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := decodeDashHead(b)
		if err != nil {
			return
		}
		again, err := encodeDashHead(h)
		if err != nil {
			t.Fatal(err)
		}
		h2, err := decodeDashHead(again)
		if err != nil || h2.head != h.head || h2.written != h.written || !reflect.DeepEqual(h2.cols, h.cols) {
			t.Fatalf("head %+v does not round-trip: %+v, %v", h, h2, err)
		}
	})
}
