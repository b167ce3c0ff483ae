package streams

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Options configure a Store. The zero value is the durable default.
type Options struct {
	// FS is the filesystem; vfs.Default unless a test injects another.
	FS vfs.FS
	// Logger receives recovery and corruption reports.
	Logger *slog.Logger
	// Now is the clock for arrival times and retention.
	Now func() time.Time
	// SyncInterval, when > 0, acknowledges appends once written and fsyncs
	// every interval instead: a crash of the machine (not of the process)
	// can then lose up to one interval of acknowledged records. 0 (the
	// default) fsyncs before every acknowledgement.
	SyncInterval time.Duration
	// SegmentBytes and SegmentAge bound an active segment before it rolls.
	SegmentBytes int64
	SegmentAge   time.Duration
	// RetentionCheck is how often expired segments are deleted.
	RetentionCheck time.Duration
	// UpdateVisibility keeps a resharded stream reporting UPDATING this
	// long, as Kinesis does (0: the change is instant).
	UpdateVisibility time.Duration
	// MaxStreams caps the streams of the store and MaxOpenShards the open
	// shards of all of them together (0: DefaultMaxStreams,
	// DefaultMaxOpenShards). Creating or resharding past them fails with
	// ErrLimitExceeded; a store opened with more keeps them.
	MaxStreams    int
	MaxOpenShards int
	// MaxOpenFiles caps the segment files kept open (0:
	// DefaultMaxOpenFiles); idle ones are closed, least recently used
	// first.
	MaxOpenFiles int
	// DurableInterval is how often each shard's last durable position is
	// recorded in the metadata when it moved (0: DefaultDurableInterval).
	// Records acknowledged before the last record are known to exist: a
	// log found shorter at the next start is reported as lost records.
	DurableInterval time.Duration
	// DiskRetry is how often a shard stopped by a full disk tries to write
	// again (0: one second).
	DiskRetry time.Duration
	// PrefillBytes is how far ahead of its last record the active segment
	// is kept filled with zeros at most, so that group commits overwrite
	// written blocks instead of growing the file (see prefill.go). 0:
	// DefaultPrefillBytes; negative: off.
	PrefillBytes int64
}

// Limits.
const (
	DefaultRetentionHours = 24
	MinRetentionHours     = 24
	MaxRetentionHours     = 8760
	MaxShards             = 1024
	MaxReadRecords        = 10000
	MaxReadBytes          = 10 << 20
)

var streamNameRE = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,128}$`)

// Store is the log of every stream in a data directory.
type Store struct {
	fs    vfs.FS
	dir   string
	opts  Options
	log   *slog.Logger
	lock  io.Closer
	files *fileCache // open segment files, bounded
	// prefillGroup is prefillGroupBytes; tests lower it to switch
	// between prefilling and appending within a segment.
	prefillGroup int64

	// diskFullWrites counts writes refused for a full disk, shardsFull the
	// shards refusing writes now.
	diskFullWrites atomic.Int64
	shardsFull     atomic.Int64
	// spareBytes is the capacity of the group buffers shards keep for
	// reuse, at most spareBudget (spare.go).
	spareBytes  atomic.Int64
	spareBudget int64
	// writes counts group writes and syncs (WriteStats).
	writes writeCounters

	stop chan struct{}
	wg   sync.WaitGroup

	// metaMu guards every streamMeta and the metadata file. Lock order:
	// stream.mu, then metaMu, then mu.
	metaMu sync.Mutex

	mu struct {
		sync.Mutex
		streams     map[string]*stream
		closed      bool
		corruptions []CorruptionError
		problems    []Problem
		// lastMeta is the metadata file as last written (or read): it
		// becomes the previous copy at the next change.
		lastMeta []byte
		// lossFound: Open found lost records; durableFailing: the last
		// attempt to record durable positions failed.
		lossFound, durableFailing bool
	}
}

type stream struct {
	name string
	// mu is read-locked by appends and write-locked by resharding and
	// deletion, so that routing sees a consistent set of open shards.
	mu      sync.RWMutex
	meta    *streamMeta // guarded by Store.metaMu
	shards  map[int]*shard
	open    []*shard // open shards sorted by hash range
	ranges  []HashRange
	deleted bool
	// puts counts Put calls on the stream between appending and their
	// acknowledgement: a shard's writer lingers for more appends when
	// other puts are under way (see shard.linger).
	puts atomic.Int64
}

// Open opens (creating if needed) the store in dir, recovering every shard:
// torn tails are truncated to the last valid record, damaged records in the
// middle are reported and skipped.
func Open(dir string, opts Options) (*Store, error) {
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = 64 << 20
	}
	if opts.SegmentAge <= 0 {
		opts.SegmentAge = time.Hour
	}
	if opts.RetentionCheck <= 0 {
		opts.RetentionCheck = time.Minute
	}
	if opts.MaxStreams <= 0 {
		opts.MaxStreams = DefaultMaxStreams
	}
	if opts.MaxOpenShards <= 0 {
		opts.MaxOpenShards = DefaultMaxOpenShards
	}
	if opts.DurableInterval <= 0 {
		opts.DurableInterval = DefaultDurableInterval
	}
	if opts.DiskRetry <= 0 {
		opts.DiskRetry = time.Second
	}
	if opts.PrefillBytes == 0 {
		opts.PrefillBytes = DefaultPrefillBytes
		if !prefillSupported {
			opts.PrefillBytes = -1
		}
	}
	s := &Store{fs: opts.FS, dir: dir, opts: opts, log: opts.Logger, stop: make(chan struct{})}
	s.files = newFileCache(opts.FS, opts.MaxOpenFiles)
	s.prefillGroup = prefillGroupBytes
	s.spareBudget = defaultSpareBudget
	s.mu.streams = map[string]*stream{}
	if err := mkdirAllSynced(s.fs, s.fs.PathJoin(dir, "streams")); err != nil {
		return nil, fmt.Errorf("create data directory %s: %w", dir, err)
	}
	lock, err := s.fs.Lock(s.fs.PathJoin(dir, "LOCK"))
	if err != nil {
		return nil, fmt.Errorf("lock data directory %s (is another runnel using it?): %w", dir, err)
	}
	s.lock = lock
	m, raw, err := s.loadMeta()
	if err != nil {
		lock.Close()
		return nil, err
	}
	s.mu.lastMeta = raw
	dropped, tombs, err := s.tidyStreamDirs(m)
	if err != nil {
		lock.Close()
		return nil, err
	}
	for _, sm := range m.Streams {
		st, err := s.recoverStream(sm)
		if err != nil {
			// No writer has started yet: closing the files is enough.
			s.closeFiles()
			lock.Close()
			return nil, err
		}
		s.mu.streams[sm.Name] = st
	}
	for _, st := range s.mu.streams {
		for _, sh := range st.shards {
			if !sh.mu.closed {
				s.startShard(sh)
			}
		}
	}
	if s.noteDurable(true) || dropped {
		// Losses found, or the metadata came from its copy: write it now,
		// so that what was found is on record even if no change follows.
		// (Writers have not started: the positions are those found.)
		s.metaMu.Lock()
		err := s.persist()
		s.metaMu.Unlock()
		if err != nil {
			s.log.Error("record stream metadata after opening", "err", err)
			tombs = nil // a dropped stream's tombstone stands for its delete
		}
	}
	s.removeTombstones(tombs)
	s.wg.Add(2)
	go s.every(s.opts.RetentionCheck, s.EnforceRetention)
	go s.every(s.opts.DurableInterval, s.recordDurable)
	return s, nil
}

// recoverStream opens every shard of a stream; on error it closes what it
// opened. Writers are started by the caller once every stream is open.
func (s *Store) recoverStream(sm *streamMeta) (*stream, error) {
	st := &stream{name: sm.Name, meta: sm, shards: map[int]*shard{}}
	for _, m := range sm.Shards {
		sh := newShard(s, sm.Name, s.fs.PathJoin(s.dir, "streams", sm.Dir, ShardID(m.Index)), m.Index, sm.SeqTag)
		sh.streamPuts = &st.puts
		sh.known, sh.durableHint = m.Lost, m.DurableSeq
		if err := sh.recover(); err != nil {
			sh.closeFiles()
			for _, o := range st.shards {
				o.closeFiles()
			}
			return nil, err
		}
		s.checkDurable(sm, m, sh)
		if m.EndingSeq != nil {
			// Counters up to the ending one are spent even when the records
			// were never made durable (a crash right after the reshard).
			sh.mu.closed = true
			sh.mu.nextSeq = max(sh.mu.nextSeq, *m.EndingSeq+1)
			sh.mu.visible = max(sh.mu.visible, *m.EndingSeq)
			sh.stopped()
		}
		st.shards[m.Index] = sh
	}
	st.rebuildOpen()
	return st, nil
}

// startShard starts a shard's writer, unless the store is closing (a
// reshard racing Close): then the shard takes no writes.
func (s *Store) startShard(sh *shard) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		sh.stopped()
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sh.run(s.opts.SyncInterval)
	}()
}

// rebuildOpen recomputes the routing table from metadata. Caller holds
// st.mu for writing (or owns st exclusively).
func (st *stream) rebuildOpen() {
	st.open, st.ranges = st.open[:0], st.ranges[:0]
	ms := slices.Clone(st.meta.Shards)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Range.Start.Cmp(ms[j].Range.Start) < 0 })
	for _, m := range ms {
		if m.EndingSeq == nil {
			st.open = append(st.open, st.shards[m.Index])
			st.ranges = append(st.ranges, m.Range)
		}
	}
}

// Close flushes every shard, stops the background work and releases the
// data directory.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return nil
	}
	s.mu.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.closeShards()
	s.wg.Wait()
	s.recordDurable()
	s.closeFiles()
	return s.lock.Close()
}

func (s *Store) closeFiles() {
	for _, sh := range s.allShards() {
		sh.closeFiles()
	}
}

func (s *Store) closeShards() {
	for _, sh := range s.allShards() {
		sh.stopWriter()
	}
}

// streamList returns the store's streams as they are now, in no order,
// for a caller that then takes each stream's own lock: the locks go in
// their order (stream, then store), so s.mu is not held meanwhile.
func (s *Store) streamList() []*stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Collect(maps.Values(s.mu.streams))
}

// allShards snapshots every shard of every stream, taking the locks in
// their order (stream, then store) one at a time.
func (s *Store) allShards() []*shard {
	sts := s.streamList()
	var out []*shard
	for _, st := range sts {
		st.mu.RLock()
		for _, sh := range st.shards {
			out = append(out, sh)
		}
		st.mu.RUnlock()
	}
	return out
}

// Corruptions lists the damaged regions found since Open.
func (s *Store) Corruptions() []CorruptionError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.mu.corruptions)
}

func (s *Store) noteCorruption(e *CorruptionError) {
	s.mu.Lock()
	s.mu.corruptions = append(s.mu.corruptions, *e)
	s.mu.Unlock()
}

func (s *Store) get(op, name string) (*stream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.closed {
		return nil, ErrClosed
	}
	st, ok := s.mu.streams[name]
	if !ok {
		return nil, notFound(op, name)
	}
	return st, nil
}

// persist writes the metadata of every stream: the contents last written
// go to the previous copy first, then the new contents replace the main
// file, each atomically. A full disk makes it fail with ErrUnavailable.
// Caller holds metaMu.
func (s *Store) persist() error {
	s.mu.Lock()
	m := metaFile{Version: metaVersion}
	for _, st := range s.mu.streams {
		m.Streams = append(m.Streams, st.meta)
	}
	last := s.mu.lastMeta
	s.mu.Unlock()
	sort.Slice(m.Streams, func(i, j int) bool { return m.Streams[i].Name < m.Streams[j].Name })
	b, err := json.MarshalIndent(&m, "", " ")
	if err != nil {
		return err
	}
	path := s.fs.PathJoin(s.dir, metaFileName)
	if last != nil && !bytes.Equal(last, b) {
		err = WriteFileAtomic(s.fs, path+".prev", last)
	}
	if err == nil {
		// A copy: b stays the contents last written, and a vfs.File may
		// change what it was given (Pebble's MemFS does in race builds).
		err = WriteFileAtomic(s.fs, path, slices.Clone(b))
	}
	if err != nil {
		if isNoSpace(err) {
			return &Error{Op: "write stream metadata", Err: ErrUnavailable, Msg: fmt.Sprintf("the disk is full; retry once space is freed (%v)", err)}
		}
		return err
	}
	s.mu.Lock()
	s.mu.lastMeta = b
	s.mu.Unlock()
	return nil
}

// ValidateStreamName checks a stream name against the allowed pattern.
func ValidateStreamName(name string) error {
	if !streamNameRE.MatchString(name) || name == "." || name == ".." {
		return invalid("stream name", "name", "%q must be 1-128 characters of letters, digits, '_', '.', '-' (and not '.' or '..')", name)
	}
	return nil
}

// CreateOptions are the optional parts of a new stream.
type CreateOptions struct {
	RetentionHours int               // default 24
	Tags           map[string]string // initial tags
	Attrs          map[string]string // API-layer attributes (stream mode, ...)
	// Activation delays ACTIVE: the stream reports CREATING and takes no
	// records for this long, as Kinesis streams do. 0 means active at once.
	Activation time.Duration
}

// CreateStream creates a stream with n shards splitting the hash-key space
// evenly.
func (s *Store) CreateStream(name string, n int, o CreateOptions) (StreamInfo, error) {
	const op = "create stream"
	if err := ValidateStreamName(name); err != nil {
		return StreamInfo{}, err
	}
	if n < 1 || n > MaxShards {
		return StreamInfo{}, invalid(op, "shards", "%d is out of range: a stream has 1 to %d shards", n, MaxShards)
	}
	if o.RetentionHours == 0 {
		o.RetentionHours = DefaultRetentionHours
	}
	if err := validateRetention(op, o.RetentionHours); err != nil {
		return StreamInfo{}, err
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	s.mu.Lock()
	if s.mu.closed {
		s.mu.Unlock()
		return StreamInfo{}, ErrClosed
	}
	if _, ok := s.mu.streams[name]; ok {
		s.mu.Unlock()
		return StreamInfo{}, &Error{Op: op, Field: "name", Err: ErrStreamExists, Msg: fmt.Sprintf("stream %q already exists", name)}
	}
	s.mu.Unlock()
	if err := s.checkLimits(op, nil, true, n); err != nil {
		return StreamInfo{}, err
	}
	now := s.opts.Now().UTC()
	sm := &streamMeta{
		Name: name, Dir: fmt.Sprintf("%s-%d", sanitize(name), now.UnixNano()), Created: now, SeqTag: newSeqTag(),
		RetentionHours: o.RetentionHours, Tags: cloneMap(o.Tags), Attrs: cloneMap(o.Attrs), NextShardIndex: n,
	}
	if o.Activation > 0 {
		sm.Pending, sm.PendingUntil = StatusCreating, now.Add(o.Activation)
	}
	st := &stream{name: name, meta: sm, shards: map[int]*shard{}}
	// The directory name only needs to be unique; a clock that stands
	// still (tests) or goes back must not make a new stream adopt the files
	// of a deleted one.
	for i := 1; !isNotExist(s.fs, s.fs.PathJoin(s.dir, "streams", sm.Dir)) || !isNotExist(s.fs, s.fs.PathJoin(s.dir, "streams", sm.Dir+tombstoneSuffix)); i++ {
		sm.Dir = fmt.Sprintf("%s-%d-%d", sanitize(name), now.UnixNano(), i)
	}
	for i, r := range EvenRanges(n) {
		sm.Shards = append(sm.Shards, &shardMeta{Index: i, Range: r, Created: now})
		sh, err := s.makeShard(st, sm, i)
		if err != nil {
			return StreamInfo{}, fmt.Errorf("%s %s: %w", op, name, err)
		}
		st.shards[i] = sh
	}
	st.rebuildOpen()
	s.mu.Lock()
	s.mu.streams[name] = st
	s.mu.Unlock()
	if err := s.persist(); err != nil {
		s.mu.Lock()
		delete(s.mu.streams, name)
		s.mu.Unlock()
		_ = s.fs.RemoveAll(s.fs.PathJoin(s.dir, "streams", sm.Dir))
		return StreamInfo{}, fmt.Errorf("%s %s: %w", op, name, err)
	}
	for _, sh := range st.shards {
		s.startShard(sh)
	}
	return s.infoLocked(st), nil
}

func sanitize(name string) string {
	return strings.Map(func(r rune) rune {
		if r == '.' {
			return '_'
		}
		return r
	}, name)
}

func (s *Store) makeShard(st *stream, sm *streamMeta, index int) (*shard, error) {
	dir := s.fs.PathJoin(s.dir, "streams", sm.Dir, ShardID(index))
	if err := mkdirAllSynced(s.fs, dir); err != nil {
		return nil, fmt.Errorf("create shard directory: %w", err)
	}
	sh := newShard(s, sm.Name, dir, index, sm.SeqTag)
	sh.streamPuts = &st.puts
	return sh, nil
}

func validateRetention(op string, h int) error {
	if h < MinRetentionHours || h > MaxRetentionHours {
		return invalid(op, "retention_hours", "%d is out of range: retention is %d to %d hours", h, MinRetentionHours, MaxRetentionHours)
	}
	return nil
}

// every calls f every interval until the Store stops; the Store owns it
// (the periodic retention check and the recording of durable positions).
func (s *Store) every(interval time.Duration, f func()) {
	defer s.wg.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			f()
		}
	}
}

// EnforceRetention deletes every whole segment whose newest record is older
// than its stream's retention. It runs periodically; tests call it directly.
func (s *Store) EnforceRetention() {
	sts := s.streamList()
	now := s.opts.Now()
	for _, st := range sts {
		s.metaMu.Lock()
		cutoff := now.Add(-time.Duration(st.meta.RetentionHours) * time.Hour).UnixMilli()
		s.metaMu.Unlock()
		st.mu.RLock()
		shards := make([]*shard, 0, len(st.shards))
		for _, sh := range st.shards {
			shards = append(shards, sh)
		}
		st.mu.RUnlock()
		for _, sh := range shards {
			if err := sh.expire(cutoff); err != nil {
				s.log.Error("retention", "stream", st.name, "shard", sh.id, "err", err)
			}
		}
	}
}
