package state

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrClosed is returned by operations on a closed DB.
var ErrClosed = errors.New("state: closed")

// Options configure a DB.
type Options struct {
	// FS is the filesystem; nil means the OS filesystem. Tests pass
	// vfs.NewMem or vfs.NewCrashableMem.
	FS vfs.FS
	// CacheSize is Pebble's block cache in bytes; 0 means 64 MiB. State
	// larger than the cache is read from disk.
	CacheSize int64
	// Retain is how many complete checkpoints are kept; 0 means 3.
	Retain int
	// ManifestSize is the size past which Pebble starts a new MANIFEST
	// (written from the current state) instead of appending to it; 0
	// means 1 MiB. Every checkpoint appends to the manifest and copies
	// it, so without a small bound a job's checkpoints grow by the
	// manifest's edits (Pebble's own default is 128 MiB) for as long as
	// it runs, even when its state does not change.
	ManifestSize int64
	// Logger receives Pebble's messages (at debug/error) and the DB's own.
	// nil discards them.
	Logger *slog.Logger
	// Failpoint, if set, is called at each step of Checkpoint with the
	// step's name (the Step* constants). A non-nil error stops the
	// checkpoint there and is returned, leaving the files as a crash at
	// that point would. Tests only.
	Failpoint func(step string) error
}

// Validate reports options that cannot work.
func (o Options) Validate() error {
	if o.CacheSize < 0 {
		return fmt.Errorf("state: CacheSize %d is negative", o.CacheSize)
	}
	if o.Retain < 0 {
		return fmt.Errorf("state: Retain %d is negative", o.Retain)
	}
	if o.ManifestSize < 0 {
		return fmt.Errorf("state: ManifestSize %d is negative", o.ManifestSize)
	}
	return nil
}

// EnsureDefaults fills the fields left zero with their defaults (the OS
// filesystem, a 64 MiB cache, a 1 MiB manifest, 3 checkpoints kept, a
// discarding logger) and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.FS == nil {
		o.FS = vfs.Default
	}
	if o.CacheSize == 0 {
		o.CacheSize = 64 << 20
	}
	if o.ManifestSize == 0 {
		o.ManifestSize = 1 << 20
	}
	if o.Retain == 0 {
		o.Retain = 3
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// DB is one job's operator state. It is safe for concurrent use; each
// Space is meant to be written by one task.
type DB struct {
	dir  string
	opts Options
	pdb  *pebble.DB
	// flushes follows Pebble's flushes, to fail a flush the disk has no
	// room for instead of waiting for room.
	flushes *flushWatch

	// writeMu is held shared by every read and write and exclusively while
	// Pebble takes a checkpoint (so a checkpoint holds exactly the writes
	// that returned before it started) and by Close.
	writeMu sync.RWMutex
	// closed is set by Close under writeMu; Space operations check it.
	closed atomic.Bool

	mu struct {
		sync.Mutex
		closed  bool
		history []Info // complete checkpoints, oldest first
	}
}

// Open opens (or creates) the state under dir as it was last written. After
// a crash use Restore instead: unsynced writes may be lost, so the live
// store is only trusted up to the last checkpoint.
func Open(dir string, opts Options) (*DB, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.EnsureDefaults()
	fs := opts.FS
	if err := mkdirAllSynced(fs, fs.PathJoin(dir, checkpointsDir)); err != nil {
		return nil, fmt.Errorf("state: open %s: %w", dir, err)
	}
	// A damaged newest manifest stops Open: checkpointing on would lose
	// track of the older ones. Restore of an older epoch clears it.
	history, err := readHistory(fs, dir)
	if err != nil {
		opts.Logger.Error("state: cannot read the newest checkpoint manifest", "dir", dir, "err", err)
		return nil, fmt.Errorf("state: open %s: %w", dir, err)
	}
	if err := removeIncomplete(fs, dir, history); err != nil {
		return nil, fmt.Errorf("state: open %s: %w", dir, err)
	}
	return openLive(dir, opts, history)
}

func openLive(dir string, opts Options, history []Info) (*DB, error) {
	cache := pebble.NewCache(opts.CacheSize)
	defer cache.Unref()
	flushes := newFlushWatch(opts.Logger, opts.FS, dir)
	popts := &pebble.Options{
		FS:                  logWatchFS{FS: opts.FS, w: flushes},
		Cache:               cache,
		Logger:              pebbleLogger{opts.Logger},
		MaxManifestFileSize: opts.ManifestSize,
		EventListener:       flushes.listener(),
	}
	// Bloom filters spare a disk read per level for keys a table does not
	// hold: window stores look up every key before writing it.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	pdb, err := pebble.Open(opts.FS.PathJoin(dir, liveDir), popts)
	if err != nil {
		return nil, fmt.Errorf("state: open pebble in %s: %w", dir, err)
	}
	db := &DB{dir: dir, opts: opts, pdb: pdb, flushes: flushes}
	db.mu.history = history
	return db, nil
}

// Close closes the DB without a checkpoint: writes since the last
// checkpoint are not guaranteed durable.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.mu.closed {
		return ErrClosed
	}
	db.mu.closed = true
	db.writeMu.Lock()
	defer db.writeMu.Unlock()
	db.closed.Store(true)
	if err := db.pdb.Close(); err != nil {
		return fmt.Errorf("state: close %s: %w", db.dir, err)
	}
	return nil
}

// Namespace returns the key space of one operator's task. op and task must
// be non-empty and may not contain a NUL byte.
func (db *DB) Namespace(op, task string) (*Space, error) {
	for _, s := range []string{op, task} {
		if s == "" || strings.IndexByte(s, 0) >= 0 {
			return nil, fmt.Errorf("state: namespace %q/%q: ids must be non-empty and free of NUL bytes", op, task)
		}
	}
	prefix := []byte(op + "\x00" + task + "\x00")
	return &Space{db: db, prefix: prefix}, nil
}

// Space is one operator task's keys. Keys and values passed in are copied;
// slices handed to callbacks are valid only during the callback.
type Space struct {
	db     *DB
	prefix []byte
}

func (s *Space) key(k []byte) []byte {
	out := make([]byte, 0, len(s.prefix)+len(k))
	return append(append(out, s.prefix...), k...)
}

// use holds the DB open for one operation; the caller must call done.
func (db *DB) use() error {
	db.writeMu.RLock()
	if db.closed.Load() {
		db.writeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (db *DB) done() { db.writeMu.RUnlock() }

// Closed reports whether Close has been called.
func (db *DB) Closed() bool { return db.closed.Load() }

// Get returns a copy of key's value and whether it exists.
func (s *Space) Get(key []byte) ([]byte, bool, error) {
	if err := s.db.use(); err != nil {
		return nil, false, err
	}
	defer s.db.done()
	v, closer, err := s.db.pdb.Get(s.key(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: get: %w", err)
	}
	out := bytes.Clone(v)
	if out == nil {
		out = []byte{}
	}
	return out, true, closer.Close()
}

// Set stores key's value (not synced).
func (s *Space) Set(key, value []byte) error {
	b := s.NewBatch()
	b.Set(key, value)
	return b.Commit()
}

// Delete removes key (not synced); an absent key is no error.
func (s *Space) Delete(key []byte) error {
	b := s.NewBatch()
	b.Delete(key)
	return b.Commit()
}

// Scan calls fn for every key with the given prefix, in key order, until fn
// returns an error (which Scan returns). fn sees the space as it was when
// Scan started and may write to it.
func (s *Space) Scan(prefix []byte, fn func(key, value []byte) error) error {
	lo := s.key(prefix)
	return s.scan(lo, prefixEnd(lo), fn)
}

// ScanRange calls fn for every key in [lo, hi), in key order; a nil hi
// means to the end of the space.
func (s *Space) ScanRange(lo, hi []byte, fn func(key, value []byte) error) error {
	upper := prefixEnd(s.prefix)
	if hi != nil {
		upper = s.key(hi)
	}
	return s.scan(s.key(lo), upper, fn)
}

// scan does not hold writeMu while it iterates: fn may write to the space,
// and a checkpoint waiting for the lock would otherwise deadlock it. The
// iterator reads a consistent view; the DB must not be closed under it.
func (s *Space) scan(lower, upper []byte, fn func(key, value []byte) error) error {
	if err := s.db.use(); err != nil {
		return err
	}
	it, err := s.db.pdb.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	s.db.done()
	if err != nil {
		return fmt.Errorf("state: scan: %w", err)
	}
	for it.First(); it.Valid(); it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			it.Close()
			return fmt.Errorf("state: scan: %w", err)
		}
		if err := fn(it.Key()[len(s.prefix):], v); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("state: scan: %w", err)
	}
	return nil
}

// prefixEnd returns the smallest key greater than every key with prefix p,
// or nil if there is none.
func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil
}

// Batch is a set of writes to one Space applied atomically by Commit.
type Batch struct {
	s *Space
	b *pebble.Batch
}

// NewBatch returns an empty batch.
func (s *Space) NewBatch() *Batch {
	return &Batch{s: s, b: s.db.pdb.NewBatch()}
}

// Set adds a write of key's value.
func (b *Batch) Set(key, value []byte) {
	// Errors from an in-memory batch only come from a closed batch; Commit
	// reports those.
	_ = b.b.Set(b.s.key(key), value, nil)
}

// Delete adds a deletion of key.
func (b *Batch) Delete(key []byte) {
	_ = b.b.Delete(b.s.key(key), nil)
}

// Len returns the number of writes in the batch.
func (b *Batch) Len() int { return int(b.b.Count()) }

// Commit applies the batch without syncing and releases it.
func (b *Batch) Commit() error { return b.commit(pebble.NoSync) }

// commit applies the batch with opts and releases it.
func (b *Batch) commit(opts *pebble.WriteOptions) error {
	if err := b.s.db.use(); err != nil {
		b.b.Close()
		return err
	}
	if err := b.s.db.flushes.writable(); err != nil {
		b.s.db.done()
		b.b.Close()
		return err
	}
	err := b.b.Commit(opts)
	b.s.db.done()
	cerr := b.b.Close()
	if err != nil {
		return fmt.Errorf("state: commit batch: %w", err)
	}
	return cerr
}

// pebbleLogger sends Pebble's messages to slog. Pebble's Fatalf must not
// return, so it panics after logging.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error("pebble: " + fmt.Sprintf(format, args...))
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.l.Error("pebble: fatal: " + msg)
	panic("pebble: " + msg)
}

// mkdirAllSynced creates path and its missing parents, syncing each parent
// whose entries changed so the directories survive a crash.
func mkdirAllSynced(fs vfs.FS, path string) error {
	if _, err := fs.Stat(path); err == nil {
		return nil
	}
	parent := fs.PathDir(path)
	if parent != path {
		if err := mkdirAllSynced(fs, parent); err != nil {
			return err
		}
	}
	if err := fs.MkdirAll(path, 0o755); err != nil {
		return err
	}
	if parent == path {
		return nil
	}
	return syncDir(fs, parent)
}

// Flush writes the memtable out to a table, writers running on. A
// Checkpoint soon after has less to flush while it blocks writers. When
// the disk has no room for the table it returns an error wrapping
// ErrDiskFull rather than wait for room.
func (db *DB) Flush() error {
	if err := db.use(); err != nil {
		return err
	}
	defer db.done()
	return db.flush()
}
