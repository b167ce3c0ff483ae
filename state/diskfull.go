package state

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrDiskFull is wrapped by the error of a Flush or Checkpoint that could
// not write the memtable out because the disk (or the quota) is full. It
// is retryable: nothing was lost, and Pebble keeps trying to flush; once
// space is freed a later Flush or Checkpoint succeeds.
var ErrDiskFull = errors.New("state: the disk is full")

// isNoSpace reports whether err says the disk (or the quota) is full.
func isNoSpace(err error) bool {
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT)
}

// maxFlushBackoff bounds the pause after each failed flush or compaction.
// Pebble tries a failed flush again at once, without a pause, so a full
// disk (or no file descriptors left) would otherwise keep a core busy
// with attempts (thousands a second); the pause runs under Pebble's DB
// mutex, so commits wait for it too, which is why it stays short.
const maxFlushBackoff = 100 * time.Millisecond

// minFreeToSwitchLog is the free space below which flush starts no flush:
// a flush switches Pebble's log, writing out the old log's buffered tail
// (up to half a megabyte), and Pebble panics if that write fails.
const minFreeToSwitchLog = 1 << 20

// flushWatch follows Pebble's flushes through its event listener: whether
// the last one failed for want of space, so that a caller waiting for a
// flush learns it will not end while the disk stays full.
type flushWatch struct {
	log *slog.Logger
	dir string
	fs  vfs.FS
	// sleep pauses after a background error (time.Sleep).
	sleep func(time.Duration)

	// free caches the free space of dir's file system for writes, read
	// at most every freeCheckEvery (a statfs per write would cost more
	// than the write).
	free struct {
		sync.Mutex
		at    time.Time
		bytes uint64
		ok    bool // the file system reports its usage
	}

	mu struct {
		sync.Mutex
		full     error         // the last flush's no-space error; nil once one succeeds
		failures int           // consecutive background errors
		changed  chan struct{} // closed and replaced when full is set
		// wal is the error of a write of Pebble's log that failed. Pebble
		// keeps it until the store is reopened and panics when it next
		// switches logs (a full memtable, a flush), so the DB takes no
		// more writes and starts no more flushes once it is set.
		wal error
	}
}

func newFlushWatch(log *slog.Logger, fs vfs.FS, dir string) *flushWatch {
	w := &flushWatch{log: log, dir: dir, fs: fs, sleep: time.Sleep}
	w.mu.changed = make(chan struct{})
	return w
}

// listener is the pebble.EventListener of a DB's live store.
func (w *flushWatch) listener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: w.backgroundError,
		FlushEnd:        w.flushEnd,
		CompactionEnd:   w.compactionEnd,
	}
}

// backgroundError logs Pebble's background errors and pauses after each:
// Pebble retries a failed flush or compaction at once, so a cause that
// lasts (a full disk, no file descriptors left, a failing device) would
// otherwise keep a core busy with attempts. One for want of space is a
// flush's (flushEnd recorded it) or a compaction's. A compaction's does
// not make the store refuse writes: only a flush that fails says the
// memtable cannot be written out, and only one that succeeds would clear
// it, which a store refusing writes and flushes never gets to (writable's
// check of the free space still guards the log).
func (w *flushWatch) backgroundError(err error) {
	w.mu.Lock()
	flushing := w.mu.full != nil
	w.mu.failures++
	n := w.mu.failures
	pause := min(time.Millisecond<<min(n, 10), maxFlushBackoff)
	w.mu.Unlock()
	switch {
	case !isNoSpace(err):
		w.log.Error("pebble: background error: "+err.Error(), "consecutive", n)
	case n == 1 && !flushing:
		w.log.Error("state: the disk is full: a compaction of the job's state failed (Pebble retries it)", "dir", w.dir, "err", err)
	}
	w.sleep(pause)
}

// flushEnd records whether a flush failed for want of space: while one
// does, the store refuses writes and starts no flush, until one succeeds.
func (w *flushWatch) flushEnd(info pebble.FlushInfo) {
	if info.Err != nil && isNoSpace(info.Err) {
		w.mu.Lock()
		first := w.mu.full == nil
		w.mu.full = info.Err
		close(w.mu.changed)
		w.mu.changed = make(chan struct{})
		w.mu.Unlock()
		if first {
			w.log.Error("state: the disk is full: the job's state cannot be flushed, so its checkpoints fail until space is freed (nothing is lost; Pebble retries)", "dir", w.dir, "err", info.Err)
		}
		return
	}
	if !flushSucceeded(info.Err) {
		// Failed otherwise (out of descriptors, an I/O error): nothing was
		// written out, so a store refusing writes goes on refusing them
		// until a retry succeeds.
		return
	}
	w.mu.Lock()
	was := w.mu.full != nil
	w.mu.full, w.mu.failures = nil, 0
	w.mu.Unlock()
	if was {
		w.log.Info("state: disk space is back: the job's state flushes again", "dir", w.dir)
	}
}

// flushSucceeded reports whether a flush that ended with err wrote its
// memtables out: Pebble ends one that had nothing left to write (no
// table) with an error of its own, "pebble: empty table".
func flushSucceeded(err error) bool { return err == nil || err.Error() == "pebble: empty table" }

// compactionEnd ends the pauses after failed compactions once one
// succeeds.
func (w *flushWatch) compactionEnd(info pebble.CompactionInfo) {
	if info.Err != nil {
		return
	}
	w.mu.Lock()
	if w.mu.full == nil {
		w.mu.failures = 0
	}
	w.mu.Unlock()
}

// logFailed records that writing Pebble's log failed with err and returns
// the error writes get from now on.
func (w *flushWatch) logFailed(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mu.wal != nil {
		return w.mu.wal
	}
	if isNoSpace(err) {
		err = fmt.Errorf("%w: the state's log could not be written; the state takes no more writes until it is restored from its last checkpoint, once space is freed: %w", ErrDiskFull, err)
	} else {
		err = fmt.Errorf("state: the state's log could not be written; the state takes no more writes until it is restored from its last checkpoint: %w", err)
	}
	w.mu.wal = err
	w.log.Error("state: writing the state's log failed: the job's state takes no more writes; the job must restart from its last checkpoint", "dir", w.dir, "err", err)
	return err
}

// walErr returns the error recorded by logFailed, or nil.
func (w *flushWatch) walErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.wal
}

// writable returns the error a write to the store gets now: the log's
// failure, or while flushes fail for want of space an error wrapping
// ErrDiskFull. Writes on a full disk would go to the log until a write of
// it fails, and the next switch of logs (a full memtable) would then
// panic and end the process; refused, they fail the task instead, and the
// job restarts from its last checkpoint.
//
// A write that finds the memtable full switches logs itself, writing out
// the old log's tail then, so writes are refused as well while fewer than
// minFreeToSwitchLog bytes are free.
func (w *flushWatch) writable() error {
	w.mu.Lock()
	wal, full := w.mu.wal, w.mu.full
	w.mu.Unlock()
	switch {
	case wal != nil:
		return wal
	case full != nil:
		return fmt.Errorf("%w: the job's state takes no writes until space is freed: %w", ErrDiskFull, full)
	}
	if free, ok := w.freeBytes(); ok && free < minFreeToSwitchLog {
		return fmt.Errorf("%w: the job's state takes no writes until space is freed: %d bytes free in %s", ErrDiskFull, free, w.dir)
	}
	return nil
}

// freeCheckEvery is how long freeBytes trusts the free space it last read.
const freeCheckEvery = 20 * time.Millisecond

// freeBytes returns the free space of the store's file system, read at
// most every freeCheckEvery, and whether the file system reports it.
func (w *flushWatch) freeBytes() (uint64, bool) {
	w.free.Lock()
	defer w.free.Unlock()
	if now := time.Now(); now.Sub(w.free.at) >= freeCheckEvery {
		u, err := w.fs.GetDiskUsage(w.dir)
		w.free.at, w.free.bytes, w.free.ok = now, u.AvailBytes, err == nil
	}
	return w.free.bytes, w.free.ok
}

// state returns the no-space error of the last flush (nil when it did not
// fail for want of space) and a channel closed when another one fails.
func (w *flushWatch) state() (error, <-chan struct{}) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.mu.full, w.mu.changed
}

// flush writes the memtable out and waits for it, like pebble.DB.Flush,
// except that it returns an error wrapping ErrDiskFull as soon as a flush
// fails for want of space, instead of waiting for the disk to have room.
// While an earlier flush is failing for want of space it starts none
// (Pebble retries that one by itself), and after a failed write of
// Pebble's log it switches to no new log: Pebble panics when the log it
// leaves had a failed write.
func (db *DB) flush() error {
	if err := db.flushes.walErr(); err != nil {
		return err
	}
	if full, _ := db.flushes.state(); full != nil {
		return fmt.Errorf("%w: flush %s: %w", ErrDiskFull, db.dir, full)
	}
	if u, err := db.opts.FS.GetDiskUsage(db.dir); err == nil && u.AvailBytes < minFreeToSwitchLog {
		return fmt.Errorf("%w: flush %s: %d bytes free, too few to switch Pebble's log safely", ErrDiskFull, db.dir, u.AvailBytes)
	}
	done, err := db.pdb.AsyncFlush()
	if err != nil {
		return err
	}
	for {
		full, changed := db.flushes.state()
		if full != nil {
			select {
			case <-done:
				return nil
			default:
			}
			return fmt.Errorf("%w: flush %s: %w", ErrDiskFull, db.dir, full)
		}
		select {
		case <-done:
			return nil
		case <-changed:
		}
	}
}

// logWatchFS is the filesystem of a DB's live store: it tells the DB's
// flushWatch when a write or sync of Pebble's log fails. Pebble keeps that
// error to itself until it switches logs or syncs one, and then panics.
type logWatchFS struct {
	vfs.FS
	w *flushWatch
}

func (fs logWatchFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	return fs.watch(name, f), err
}

func (fs logWatchFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	return fs.watch(newname, f), err
}

func (fs logWatchFS) Unwrap() vfs.FS { return fs.FS }

func (fs logWatchFS) watch(name string, f vfs.File) vfs.File {
	if f == nil || !strings.HasSuffix(name, ".log") {
		return f
	}
	return logFile{File: f, w: fs.w}
}

// logFile is one of Pebble's log files, its write errors reported.
type logFile struct {
	vfs.File
	w *flushWatch
}

func (f logFile) failed(err error) error {
	if err != nil {
		f.w.logFailed(err)
	}
	return err
}

func (f logFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	return n, f.failed(err)
}

func (f logFile) WriteAt(p []byte, off int64) (int, error) {
	n, err := f.File.WriteAt(p, off)
	return n, f.failed(err)
}

func (f logFile) Sync() error { return f.failed(f.File.Sync()) }

func (f logFile) SyncData() error { return f.failed(f.File.SyncData()) }

func (f logFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.failed(err)
}
