package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// returns runs f and reports whether it returned within a minute: a call
// that waits for the disk to have room again never does.
func returns(f func() error) (error, bool) {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err, true
	case <-time.After(time.Minute):
		return nil, false
	}
}

// A disk without room for Pebble's tables (its log still has room, as a
// recycled log file does): Flush and Checkpoint fail at once with
// ErrDiskFull instead of waiting for room (Pebble retries the flush
// without end), writes are refused, the last checkpoint stays the latest,
// and once space is back the next checkpoint holds every write, also
// those made while the disk was full but before a flush failed.
func TestCheckpointOnFullDisk(t *testing.T) {
	var full atomic.Bool
	var attempts atomic.Int64
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && strings.HasSuffix(op.Path, ".sst") && (op.Kind == errorfs.OpCreate || op.Kind == errorfs.OpFileWrite) {
			if op.Kind == errorfs.OpCreate {
				attempts.Add(1)
			}
			return syscall.ENOSPC
		}
		return nil
	}))
	db := mustOpen(t, fs, Options{})
	stuck := false // a call left waiting holds the DB: Close would wait too
	defer func() {
		if !stuck {
			db.Close()
		}
	}()
	sp := mustSpace(t, db, "w", "0")
	put := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := sp.Set(fmt.Appendf(nil, "k%04d", i), fmt.Appendf(nil, "v%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, 100)
	if _, err := db.Checkpoint(1, []byte("one")); err != nil {
		t.Fatal(err)
	}

	full.Store(true)
	put(100, 200)
	err, ok := returns(db.Flush)
	if stuck = !ok; stuck {
		t.Fatal("Flush waits for the disk to have room instead of failing")
	}
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush on a full disk: %v, want ErrDiskFull and ENOSPC", err)
	}
	err, ok = returns(func() error { _, err := db.Checkpoint(2, []byte("two")); return err })
	if stuck = !ok; stuck {
		t.Fatal("Checkpoint waits for the disk to have room instead of failing")
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Checkpoint on a full disk: %v, want ErrDiskFull", err)
	}
	if cs := db.Checkpoints(); len(cs) != 1 || cs[0].Epoch != 1 {
		t.Fatalf("checkpoints after a failed one: %+v, want epoch 1 only", cs)
	}
	// Writes would go to the log until a write of it failed, after which
	// Pebble panics: they are refused until space is back.
	if err := sp.Set([]byte("k0200"), []byte("v200")); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("a write while flushes fail for want of space: %v, want ErrDiskFull", err)
	}
	t.Logf("%d attempts to create a table while the disk was full", attempts.Load())

	full.Store(false)
	// Pebble retries its flush by itself; a checkpoint succeeds once it has.
	var epoch uint64 = 2
	testutil.Eventually(t, time.Minute, func() bool {
		epoch++
		_, err := db.Checkpoint(epoch, []byte("three"))
		if err != nil && !errors.Is(err, ErrDiskFull) {
			t.Fatalf("checkpoint once space is back: %v", err)
		}
		return err == nil
	}, "no checkpoint succeeds once space is back")
	put(200, 300)
	if _, err := db.Checkpoint(epoch+1, []byte("three")); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, _, meta, err := Restore("job", Latest, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if string(meta) != "three" {
		t.Fatalf("restored meta %q, want three", meta)
	}
	got := dump(t, mustSpace(t, db, "w", "0"))
	if len(got) != 300 {
		t.Fatalf("restored %d keys, want 300", len(got))
	}
	for i := range 300 {
		if v := got[fmt.Sprintf("k%04d", i)]; v != fmt.Sprintf("v%d", i) {
			t.Fatalf("k%04d = %q after restore", i, v)
		}
	}
}

// fullFS reports no free space while full is set.
type fullFS struct {
	vfs.FS
	full *atomic.Bool
}

func (fs fullFS) GetDiskUsage(path string) (vfs.DiskUsage, error) {
	if fs.full.Load() {
		return vfs.DiskUsage{TotalBytes: 64 << 20, UsedBytes: 64 << 20}, nil
	}
	return fs.FS.GetDiskUsage(path)
}

// A disk without room for Pebble's log: the next Flush (a checkpoint's
// first step) fails with ErrDiskFull instead of switching logs, which
// makes Pebble panic when the log it leaves had a failed write; once a
// write of the log has failed, writes fail too, and the store restored from its last checkpoint
// once space is back has every write that checkpoint holds.
func TestLogWriteOnFullDisk(t *testing.T) {
	var full atomic.Bool
	fs := fullFS{full: &full, FS: errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && (strings.HasSuffix(op.Path, ".log") || strings.HasSuffix(op.Path, ".sst")) &&
			(op.Kind == errorfs.OpCreate || op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) {
			return syscall.ENOSPC
		}
		return nil
	}))}
	db := mustOpen(t, fs, Options{})
	sp := mustSpace(t, db, "w", "0")
	set := func(i int) error { return sp.Set(fmt.Appendf(nil, "k%04d", i), fmt.Appendf(nil, "v%d", i)) }
	for i := range 100 {
		if err := set(i); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Checkpoint(1, []byte("one")); err != nil {
		t.Fatal(err)
	}
	full.Store(true)
	// Unsynced writes fill a block of the log before Pebble writes it, in
	// the background: a write fails once that write has failed.
	pad := strings.Repeat("v", 100)
	i := 100
	testutil.Eventually(t, time.Minute, func() bool {
		for range 100 {
			i++
			if err := sp.Set(fmt.Appendf(nil, "k%04d", i), []byte(pad)); err != nil {
				if !errors.Is(err, ErrDiskFull) {
					t.Fatalf("a write after a failed write of the log: %v, want ErrDiskFull", err)
				}
				return true
			}
		}
		return false
	}, "writes go on after a failed write of the log")
	if err := db.Flush(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Flush after a failed log write: %v, want ErrDiskFull", err)
	}
	if _, err := db.Checkpoint(2, []byte("two")); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Checkpoint after a failed log write: %v, want ErrDiskFull", err)
	}
	db.Close() // reports the log's error
	full.Store(false)
	db, info, meta, err := Restore("job", Latest, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if info.Epoch != 1 || string(meta) != "one" {
		t.Fatalf("restored epoch %d meta %q, want 1 and one", info.Epoch, meta)
	}
	if got := dump(t, mustSpace(t, db, "w", "0")); len(got) != 100 {
		t.Fatalf("restored %d keys, want the checkpoint's 100", len(got))
	}
}

// A restore on a full disk: checking the newest checkpoint needs room for
// a scratch copy, and finding none says nothing about the checkpoint. The
// restore fails with ErrDiskFull and changes nothing, instead of passing
// over the newest checkpoint as damaged (moving it aside and restoring
// an older one); once space is back it restores the newest.
func TestRestoreOnFullDisk(t *testing.T) {
	var full atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		// Full for the first check's copy only, as if space came back
		// right after it.
		if strings.Contains(op.Path, verifyDir) && (op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpFileWriteAt) && full.CompareAndSwap(true, false) {
			return syscall.ENOSPC
		}
		return nil
	}))
	db := mustOpen(t, fs, Options{})
	sp := mustSpace(t, db, "w", "0")
	for e := uint64(1); e <= 2; e++ {
		if err := sp.Set(fmt.Appendf(nil, "k%d", e), []byte("v")); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Checkpoint(e, fmt.Appendf(nil, "m%d", e)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	full.Store(true)
	_, _, _, rep, err := RestoreNewestGood("job", Options{FS: fs})
	if !errors.Is(err, ErrDiskFull) || rep.Problems() {
		t.Fatalf("restore on a full disk: %v (report %+v), want ErrDiskFull and nothing skipped", err, rep)
	}
	db, info, meta, rep, err := RestoreNewestGood("job", Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if info.Epoch != 2 || string(meta) != "m2" || rep.Problems() {
		t.Fatalf("restore once space is back: epoch %d meta %q report %+v, want epoch 2, m2, no problems", info.Epoch, meta, rep)
	}
}

// With under a megabyte free, writes are refused: a write that finds the
// memtable full switches Pebble's log, and Pebble panics if writing out
// the old log's tail fails. Once space is back they are taken again.
func TestWriteOnLowSpace(t *testing.T) {
	var full atomic.Bool
	db := mustOpen(t, fullFS{FS: vfs.NewMem(), full: &full}, Options{})
	defer db.Close()
	sp := mustSpace(t, db, "w", "0")
	full.Store(true)
	refused := false
	for i := 0; i < 200000 && !refused; i++ {
		err := sp.Set(fmt.Appendf(nil, "k%d", i), []byte("v"))
		if err != nil && !errors.Is(err, ErrDiskFull) {
			t.Fatalf("write with no space free: %v, want ErrDiskFull", err)
		}
		refused = err != nil
	}
	if !refused {
		t.Fatal("200000 writes taken with no space free")
	}
	full.Store(false)
	testutil.Eventually(t, time.Minute, func() bool { return sp.Set([]byte("k"), []byte("v")) == nil },
		"writes refused once space is back")
}

// A compaction that fails for want of space (Pebble reports it as a
// background error, as it does a failed flush, but ends no flush) leaves
// the store writable once space is back: only a flush that fails says that
// the memtable cannot be written out, and only a flush that succeeds would
// say otherwise, which a store refusing writes and flushes never gets to.
func TestCompactionOnFullDisk(t *testing.T) {
	// full fails the next creation of a table, once: the compaction's
	// (the memtable is empty, so the compaction flushes nothing first).
	var full atomic.Bool
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if strings.HasSuffix(op.Path, ".sst") && op.Kind == errorfs.OpCreate && full.CompareAndSwap(true, false) {
			return syscall.ENOSPC
		}
		return nil
	}))
	db := mustOpen(t, fs, Options{})
	defer db.Close()
	sp := mustSpace(t, db, "w", "0")
	for round := range 3 {
		for i := range 100 {
			if err := sp.Set(fmt.Appendf(nil, "k%04d", i), fmt.Appendf(nil, "v%d.%d", i, round)); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	full.Store(true)
	err, ok := returns(func() error { return db.pdb.Compact(context.Background(), []byte{0}, []byte{0xff}, false) })
	if !ok {
		t.Fatal("a compaction on a full disk does not return")
	}
	if full.Load() {
		t.Fatal("the compaction created no table")
	}
	if err != nil {
		t.Logf("compaction: %v", err) // Pebble may retry it (and succeed)
	}
	if err := sp.Set([]byte("k0100"), []byte("v100")); err != nil {
		t.Fatalf("a write once space is back after a compaction failed for want of it: %v", err)
	}
	err, ok = returns(func() error { _, err := db.Checkpoint(1, []byte("one")); return err })
	if !ok {
		t.Fatal("a checkpoint once space is back does not return")
	}
	if err != nil {
		t.Fatalf("a checkpoint once space is back after a compaction failed for want of it: %v", err)
	}
}

// A flush that failed for want of space and is then retried and fails
// for another reason (out of descriptors, an I/O error) has still written
// nothing out: the store keeps refusing writes, and takes them again once
// a flush succeeds.
func TestFlushFailingOtherwiseOnFullDisk(t *testing.T) {
	const (
		ok = iota
		noSpace
		ioError
	)
	var mode atomic.Int32
	var ioErrors atomic.Int64
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if !strings.HasSuffix(op.Path, ".sst") || op.Kind != errorfs.OpCreate {
			return nil
		}
		switch mode.Load() {
		case noSpace:
			return syscall.ENOSPC
		case ioError:
			ioErrors.Add(1)
			return syscall.EIO
		}
		return nil
	}))
	db := mustOpen(t, fs, Options{})
	stuck := false
	defer func() {
		if !stuck {
			db.Close()
		}
	}()
	sp := mustSpace(t, db, "w", "0")
	for i := range 100 {
		if err := sp.Set(fmt.Appendf(nil, "k%04d", i), []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	mode.Store(noSpace)
	err, returned := returns(db.Flush)
	if stuck = !returned; stuck {
		t.Fatal("Flush waits for the disk to have room instead of failing")
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Flush on a full disk: %v, want ErrDiskFull", err)
	}
	mode.Store(ioError)
	// Flushes run one at a time: a second failed attempt starts only once
	// the first has ended (and been reported).
	testutil.Eventually(t, time.Minute, func() bool { return ioErrors.Load() >= 2 }, "Pebble does not retry its flush")
	if err := sp.Set([]byte("k0100"), []byte("v")); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("a write while the memtable still cannot be flushed (the retry failed otherwise): %v, want ErrDiskFull", err)
	}
	mode.Store(ok)
	testutil.Eventually(t, time.Minute, func() bool { return sp.Set([]byte("k0100"), []byte("v")) == nil },
		"writes refused once a flush succeeds")
}

// Pebble ends a flush that had nothing left to write (a set and its
// single delete cancel out) with an error of its own: flushSucceeded
// knows it, so such a flush clears a full disk as any successful one does.
func TestEmptyFlushSucceeded(t *testing.T) {
	var errs []error
	pdb, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), EventListener: &pebble.EventListener{
		FlushEnd: func(info pebble.FlushInfo) { errs = append(errs, info.Err) },
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	if err := pdb.Set([]byte("k"), []byte("v"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := pdb.SingleDelete([]byte("k"), pebble.NoSync); err != nil {
		t.Fatal(err)
	}
	if err := pdb.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(errs) != 1 || errs[0] == nil {
		t.Fatalf("flush ends %v, want one with Pebble's empty table error", errs)
	}
	if !flushSucceeded(errs[0]) {
		t.Fatalf("flushSucceeded(%v) = false for a flush that wrote its memtable out", errs[0])
	}
	if flushSucceeded(syscall.EIO) {
		t.Fatal("flushSucceeded(EIO) = true")
	}
}

// Pebble retries a failed flush at once: every background error, not only
// one for want of space, is followed by a pause, growing while they go on
// (an attempt per pause instead of thousands a second, each logged), and
// back to the shortest once a flush succeeds.
func TestBackgroundErrorPauses(t *testing.T) {
	w := newFlushWatch(slog.New(slog.DiscardHandler), vfs.NewMem(), "job")
	var pauses []time.Duration
	w.sleep = func(d time.Duration) { pauses = append(pauses, d) }
	for _, err := range []error{syscall.EMFILE, syscall.EIO, syscall.ENOSPC, syscall.EMFILE} {
		w.backgroundError(fmt.Errorf("flush: %w", err))
	}
	if len(pauses) != 4 {
		t.Fatalf("pauses after 4 background errors: %v, want 4", pauses)
	}
	for i := 1; i < len(pauses); i++ {
		if pauses[i] <= pauses[i-1] || pauses[i] > maxFlushBackoff {
			t.Fatalf("pauses %v: want them growing, at most %v", pauses, maxFlushBackoff)
		}
	}
	w.flushEnd(pebble.FlushInfo{})
	w.backgroundError(syscall.EMFILE)
	if pauses[4] != pauses[0] {
		t.Fatalf("pause after a flush succeeded: %v, want the first one's %v", pauses[4], pauses[0])
	}
}
