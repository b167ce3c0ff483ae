package state

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
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

// maxFlushBackoff bounds the pause after each failed flush for want of
// space. Pebble tries a failed flush again at once, without a pause, so a
// full disk would otherwise keep a core busy with attempts (thousands a
// second); the pause runs under Pebble's DB mutex, so commits wait for it
// too, which is why it stays short.
const maxFlushBackoff = 100 * time.Millisecond

// flushWatch follows Pebble's flushes through its event listener: whether
// the last one failed for want of space, so that a caller waiting for a
// flush learns it will not end while the disk stays full.
type flushWatch struct {
	log *slog.Logger
	dir string

	mu struct {
		sync.Mutex
		full    error         // the last flush's no-space error; nil once one succeeds
		fails   int           // consecutive no-space failures
		changed chan struct{} // closed and replaced when full is set
	}
}

func newFlushWatch(log *slog.Logger, dir string) *flushWatch {
	w := &flushWatch{log: log, dir: dir}
	w.mu.changed = make(chan struct{})
	return w
}

// listener is the pebble.EventListener of a DB's live store.
func (w *flushWatch) listener() *pebble.EventListener {
	return &pebble.EventListener{
		BackgroundError: w.backgroundError,
		FlushEnd:        w.flushEnd,
	}
}

func (w *flushWatch) backgroundError(err error) {
	if !isNoSpace(err) {
		w.log.Error("pebble: background error: " + err.Error())
		return
	}
	w.mu.Lock()
	first := w.mu.full == nil
	w.mu.full = err
	w.mu.fails++
	pause := min(time.Millisecond<<min(w.mu.fails, 10), maxFlushBackoff)
	close(w.mu.changed)
	w.mu.changed = make(chan struct{})
	w.mu.Unlock()
	if first {
		w.log.Error("state: the disk is full: the job's state cannot be flushed, so its checkpoints fail until space is freed (nothing is lost; Pebble retries)", "dir", w.dir, "err", err)
	}
	time.Sleep(pause)
}

func (w *flushWatch) flushEnd(info pebble.FlushInfo) {
	if info.Err != nil && isNoSpace(info.Err) {
		return // backgroundError records it
	}
	w.mu.Lock()
	was := w.mu.full != nil
	w.mu.full, w.mu.fails = nil, 0
	w.mu.Unlock()
	if was {
		w.log.Info("state: disk space is back: the job's state flushes again", "dir", w.dir)
	}
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
func (db *DB) flush() error {
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
