package streams

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// shard is one shard's log: its segments, its writer and its readers.
//
// Appends encode frames into a pending buffer under mu and join the pending
// commit group; the shard's writer goroutine takes the whole buffer, writes
// it with one call, syncs once, then acknowledges every append in the group
// (group commit). Readers see records only once they are durable.
type shard struct {
	store  *Store
	stream string
	id     string
	index  int
	tag    uint64 // the stream's sequence tag
	dir    string
	fs     vfs.FS
	log    *slog.Logger

	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	// Traffic since the store opened, for metrics.
	bytesIn     atomic.Int64 // record data appended
	recordsRead atomic.Int64 // records returned by reads
	behindMs    atomic.Int64 // MillisBehind of the latest read

	stopOnce sync.Once

	// wmu serialises file operations: write, sync, roll, retention deletes.
	wmu sync.Mutex
	// wpath is the active (last) segment once the writer has checked it can
	// write there ("" until needed); its write handle comes from the
	// store's file cache for each write.
	wpath string
	dirty bool // written but not synced (fsync=interval mode)
	// lastAppends is how many appends the previous group held, and
	// lastSync how long its write and sync took (writer goroutine only).
	lastAppends int
	lastSync    time.Duration
	// groupBytes is a moving average of the groups' sizes, which decides
	// whether prefill pays (prefill.go; writer goroutine only).
	groupBytes int64
	// streamPuts is the stream's count of puts under way (stream.puts).
	streamPuts *atomic.Int64
	// known lists the losses recorded in the metadata (set before
	// recovery); durableHint is the recorded durable position.
	known       []LostRange
	durableHint uint64

	mu struct {
		sync.Mutex
		segs        []*segment
		nextSeq     uint64 // counter the next append gets
		clock       int64  // last arrival time handed out; arrivals never go back
		pending     []byte
		pendingLast uint64
		appends     int // appends in the pending group
		group       *commitGroup
		// spare holds written groups' buffers for reuse. Two, because the
		// next group may start while one is being written, or after it
		// is back: with one slot, the buffer returned when the other was
		// still spare was dropped, and groups kept growing new ones.
		spare   [2][]byte
		visible uint64 // highest durable counter; readers see <= visible
		durable uint64 // highest counter synced to disk (visible, unless fsync=interval)
		closed  bool   // resharded away: no more appends
		stopped bool   // the writer is stopping (store closing): no more appends
		failed  error  // a write or sync failed; the shard takes no more appends
		// full is set while the disk is full: appends are refused with
		// ErrUnavailable until retryAt, when one is let through to try.
		full     error
		retryAt  time.Time
		notify   chan struct{}
		reported map[string]bool // damaged regions already logged
	}
}

// commitGroup is the set of appends acknowledged by one write+sync.
type commitGroup struct {
	done chan struct{}
	err  error
}

// maxPending bounds the bytes waiting for the writer; appends beyond it wait.
const maxPending = 32 << 20

// maxSpare bounds the group buffer a shard keeps for reuse.
const maxSpare = 4 << 20

func newShard(st *Store, stream, dir string, index int, tag uint64) *shard {
	sh := &shard{
		store: st, stream: stream, id: ShardID(index), index: index, tag: tag, dir: dir, fs: st.fs,
		log:  st.log.With("stream", stream, "shard", ShardID(index)),
		wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	sh.mu.notify = make(chan struct{})
	sh.mu.nextSeq = 1
	sh.mu.reported = map[string]bool{}
	return sh
}

// append assigns sequence numbers to recs[i] for each i of idx (in that
// order), sets res[i] and queues their frames. The returned group is done
// once they are durable.
func (sh *shard) append(recs []PutRecord, idx []int32, now int64, res []PutResult) (*commitGroup, error) {
	sh.mu.Lock()
	for len(sh.mu.pending) > maxPending && sh.mu.group != nil && sh.mu.failed == nil && !sh.mu.closed && !sh.mu.stopped {
		g := sh.mu.group
		sh.mu.Unlock()
		<-g.done
		sh.mu.Lock()
	}
	defer sh.mu.Unlock()
	if sh.mu.closed {
		return nil, ErrShardClosed
	}
	if sh.mu.stopped {
		return nil, ErrClosed
	}
	if sh.mu.failed != nil {
		return nil, fmt.Errorf("shard %s of stream %s failed earlier, restart the server: %w", sh.id, sh.stream, sh.mu.failed)
	}
	if sh.mu.full != nil {
		if time.Now().Before(sh.mu.retryAt) {
			return nil, sh.unavailable(sh.mu.full)
		}
		sh.mu.retryAt = time.Now().Add(sh.store.opts.DiskRetry)
	}
	if now < sh.mu.clock {
		now = sh.mu.clock
	}
	sh.mu.clock = now
	size, data := 0, 0
	for _, i := range idx {
		r := &recs[i]
		size += frameSize(r.PartitionKey, r.Data)
		data += len(r.Data)
	}
	sh.bytesIn.Add(int64(data))
	if sh.mu.pending == nil {
		sh.takeSpareLocked()
	}
	sh.mu.pending = slices.Grow(sh.mu.pending, size)
	for _, i := range idx {
		r := &recs[i]
		seq := sh.mu.nextSeq
		sh.mu.nextSeq++
		sh.mu.pending = appendFrame(sh.mu.pending, seq, now, r.PartitionKey, r.Data)
		res[i] = PutResult{ShardID: sh.id, ShardIndex: sh.index, Tag: sh.tag, Seq: seq}
	}
	sh.mu.pendingLast = sh.mu.nextSeq - 1
	sh.mu.appends++
	if sh.mu.group == nil {
		sh.mu.group = &commitGroup{done: make(chan struct{})}
	}
	g := sh.mu.group
	select {
	case sh.wake <- struct{}{}:
	default:
	}
	return g, nil
}

// stopped marks a shard that never gets a writer goroutine (closed when
// opened or created): stopWriter then returns at once.
func (sh *shard) stopped() {
	sh.mu.stopped = true
	sh.stopOnce.Do(func() { close(sh.stop) })
	close(sh.done)
}

// run is the shard's writer goroutine; the Store owns it and stops it on
// Close (after a final flush).
func (sh *shard) run(interval time.Duration) {
	defer close(sh.done)
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-sh.wake:
			sh.linger()
			sh.flush()
		case <-tick:
			sh.syncDirty()
		case <-sh.stop:
			sh.flush()
			sh.syncDirty()
			sh.stopPrefill()
			return
		}
	}
}

// Group commit linger. Every group costs a write and an fdatasync, whose
// CPU time (tens to hundreds of µs on virtual disks) dwarfs the per-record
// work when groups are small. When puts are arriving concurrently — the
// previous group held appends from more than one caller, or more puts are
// under way on the stream than the pending group holds — the writer waits
// for more of them, at most as long as the previous write and sync took
// (and at most maxLinger), until lingerBytes are pending, or until every
// put under way on the stream is in the group. A lone
// producer's puts are never under way together, so it never waits.
const (
	maxLinger   = 2 * time.Millisecond
	lingerBytes = 1 << 20
)

func (sh *shard) linger() {
	if sh.store.opts.SyncInterval > 0 {
		return
	}
	sh.mu.Lock()
	appends := sh.mu.appends
	sh.mu.Unlock()
	if sh.lastAppends < 2 && (sh.streamPuts == nil || sh.streamPuts.Load() <= int64(appends)) {
		return
	}
	wait := min(sh.lastSync, maxLinger)
	if wait <= 0 {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		sh.mu.Lock()
		n, appends := len(sh.mu.pending), sh.mu.appends
		sh.mu.Unlock()
		if n >= lingerBytes {
			return
		}
		if sh.streamPuts != nil && sh.streamPuts.Load() <= int64(appends) {
			// Every put under way is in this group already: waiting
			// cannot add to it, only delay its acknowledgement.
			return
		}
		select {
		case <-sh.wake:
		case <-t.C:
			return
		case <-sh.stop:
			return
		}
	}
}

// flush writes the pending group, makes it durable and acknowledges it.
func (sh *shard) flush() {
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	sh.mu.Lock()
	buf, last, g, appends := sh.mu.pending, sh.mu.pendingLast, sh.mu.group, sh.mu.appends
	sh.mu.pending, sh.mu.group, sh.mu.appends = nil, nil, 0
	failed := sh.mu.failed
	sh.mu.Unlock()
	if g == nil {
		return
	}
	err := failed
	if err == nil {
		t0 := time.Now()
		err = sh.write(buf, last)
		sh.lastAppends, sh.lastSync = appends, time.Since(t0)
	}
	switch {
	case err == nil:
		sh.diskBack()
	case failed == nil && retryableWrite(err):
		// Nothing of this group was acknowledged, and the next write
		// starts where this one did: the shard goes on once there is room.
		sh.diskFull(err)
		err = sh.unavailable(err)
	case failed == nil && isOutOfFiles(err) && !errors.Is(err, ErrMaybeStored):
		// Opening a segment failed before anything of this group was
		// written; the next write opens it again, once descriptors are
		// free (the file cache closes idle ones, connections end).
		sh.log.Warn("no file descriptors left: the shard refused a write (clients get a retryable error); raise the open-file limit or lower --max-conns / --max-open-files", "err", err)
		err = sh.noFiles(err)
	default:
		sh.log.Error("write failed; shard stops taking writes", "err", err)
		sh.fail(err)
	}
	// The buffer is free once written: hand it to the next group before
	// waking the puts of this one, which may append again at once.
	sh.keepSpare(buf)
	g.err = err
	close(g.done)
}

// write appends buf (complete frames, counters up to last) to the active
// segment, rolling first when due, and makes it durable unless the store
// syncs on an interval. Caller holds wmu.
func (sh *shard) write(buf []byte, last uint64) error {
	first := frameSeq(buf)
	sh.mu.Lock()
	var active *segment
	if n := len(sh.mu.segs); n > 0 {
		active = sh.mu.segs[n-1]
	}
	sh.mu.Unlock()
	opts := &sh.store.opts
	name := first // the counter the new segment is named by, if one is made
	if active != nil && !active.empty() &&
		(active.size+int64(len(buf)) > opts.SegmentBytes || frameArrival(buf)-active.firstArrival > opts.SegmentAge.Milliseconds()) {
		if err := sh.seal(active); err != nil {
			return err
		}
		// Right after the sealed segment's last record, also when a full
		// disk refused the counters in between: recovery reads a gap
		// between segments as lost records.
		name = active.last + 1
		active = nil
	}
	if active == nil || sh.wpath == "" {
		seg, err := sh.openActive(active, name)
		if err != nil {
			return err
		}
		active = seg
	}
	cf, err := sh.store.files.acquire(active.path, true)
	if err != nil {
		return fmt.Errorf("open segment %s: %w", active.path, err)
	}
	if n, err := cf.f.WriteAt(buf, active.size); err != nil {
		err = sh.discardFailed(cf.f, active, int64(n), fmt.Errorf("write segment %s: %w", active.path, err))
		sh.store.files.release(cf)
		return err
	}
	sh.groupBytes += (int64(len(buf)) - sh.groupBytes) / 8
	filled, err := sh.prefill(cf.f, active, active.size+int64(len(buf)))
	if err != nil {
		err = sh.discardFailed(cf.f, active, int64(len(buf)), err)
		sh.store.files.release(cf)
		return err
	}
	sh.store.writes.groups.Add(1)
	sh.store.writes.records.Add(int64(last - first + 1))
	if opts.SyncInterval == 0 {
		sh.store.writes.syncs.Add(1)
		if err := cf.f.SyncData(); err != nil {
			err = sh.discardFailed(cf.f, active, int64(len(buf)), fmt.Errorf("sync segment %s: %w", active.path, err))
			sh.store.files.release(cf)
			return err
		}
	} else {
		sh.dirty = true
	}
	sh.store.files.release(cf)
	sh.mu.Lock()
	off := active.size
	for p := 0; p < len(buf); {
		n := frameLen(buf[p:])
		active.accept(frameSeq(buf[p:]), off+int64(p), frameArrival(buf[p:]))
		p += n
	}
	active.size += int64(len(buf))
	active.filled = filled
	sh.mu.visible = last
	if opts.SyncInterval == 0 {
		sh.mu.durable = last
	}
	close(sh.mu.notify)
	sh.mu.notify = make(chan struct{})
	sh.mu.Unlock()
	return nil
}

// openActive opens the write handle: on the existing active segment when it
// is still usable, otherwise on a new segment starting at first.
func (sh *shard) openActive(active *segment, first uint64) (*segment, error) {
	if active == nil {
		seg, err := sh.createSegment(first)
		if err != nil {
			return nil, err
		}
		active = seg
	}
	sh.wpath = active.path
	return active, nil
}

// createSegment makes a new, durable, empty segment file and adds it to the
// shard. Caller holds wmu.
func (sh *shard) createSegment(first uint64) (*segment, error) {
	path := sh.fs.PathJoin(sh.dir, segmentName(first))
	seg, err := sh.createSegmentFile(path, first)
	if err != nil && (isNoSpace(err) || isOutOfFiles(err)) {
		// The disk is full or descriptors ran out: the write is retried
		// later with other counters, so a half-made file named by these
		// would be left behind, empty, and look damaged at the next start.
		_ = sh.fs.Remove(path)
	}
	return seg, err
}

func (sh *shard) createSegmentFile(path string, first uint64) (*segment, error) {
	f, err := sh.fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		return nil, fmt.Errorf("create segment %s: %w", path, err)
	}
	if _, err := f.Write([]byte(segmentMagic)); err != nil {
		f.Close()
		return nil, fmt.Errorf("write segment header %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, fmt.Errorf("sync segment %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if err := syncDir(sh.fs, sh.dir); err != nil {
		return nil, err
	}
	seg := &segment{first: first, path: path, files: sh.store.files, size: int64(len(segmentMagic)), last: first - 1}
	sh.mu.Lock()
	sh.mu.segs = append(sh.mu.segs, seg)
	sh.mu.Unlock()
	return seg, nil
}

// seal finishes the active segment: cut it back to its records, sync, write
// its index sidecar, drop the write handle. Caller holds wmu.
func (sh *shard) seal(seg *segment) error {
	sh.mu.Lock()
	prefilled := seg.filled > seg.size
	sh.mu.Unlock()
	if sh.wpath != "" || prefilled {
		// Also when the writer has not opened it since a restart: a crash
		// may have left it prefilled.
		if err := sh.cutBack(seg); err != nil {
			return err
		}
		sh.dirty = false
		sh.store.files.drop(seg.path)
		sh.wpath = ""
	}
	sh.mu.Lock()
	idx := seg.encodeIndex()
	sh.mu.Unlock()
	if err := WriteFileAtomic(sh.fs, seg.path[:len(seg.path)-4]+".idx", idx); err != nil {
		sh.log.Warn("write segment index; it will be rebuilt on open", "segment", seg.path, "err", err)
	}
	return nil
}

func (sh *shard) syncDirty() {
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	if sh.dirty && sh.wpath != "" {
		sh.mu.Lock()
		written := sh.mu.visible
		sh.mu.Unlock()
		cf, err := sh.store.files.acquire(sh.wpath, true)
		if err != nil && isOutOfFiles(err) {
			// No descriptor to sync with now: the written records wait,
			// not yet durable, for the next interval's try.
			sh.log.Warn("no file descriptors left: the interval sync waits for the next interval; raise the open-file limit or lower --max-conns / --max-open-files", "err", err)
			return
		}
		if err == nil {
			sh.store.writes.syncs.Add(1)
			err = cf.f.SyncData()
			sh.store.files.release(cf)
		}
		if err != nil {
			sh.log.Error("interval sync failed; shard stops taking writes", "err", err)
			sh.fail(err)
		} else {
			sh.mu.Lock()
			sh.mu.durable = max(sh.mu.durable, written)
			sh.mu.Unlock()
		}
		sh.dirty = false
	}
}

// diskFull notes a write refused for want of space. The first one is
// logged; appends are refused until the retry time.
func (sh *shard) diskFull(err error) {
	sh.mu.Lock()
	first := sh.mu.full == nil
	sh.mu.full = err
	sh.mu.retryAt = time.Now().Add(sh.store.opts.DiskRetry)
	sh.mu.Unlock()
	sh.store.diskFullWrites.Add(1)
	if first {
		sh.store.shardsFull.Add(1)
		sh.log.Error("disk full: the shard refuses writes (clients get a retryable error) until space is freed", "err", err)
	}
}

// diskBack clears the disk-full state after a write succeeded.
func (sh *shard) diskBack() {
	sh.mu.Lock()
	was := sh.mu.full != nil
	sh.mu.full = nil
	sh.mu.Unlock()
	if was {
		sh.store.shardsFull.Add(-1)
		sh.log.Info("disk space is back: the shard takes writes again")
	}
}

func (sh *shard) unavailable(cause error) error {
	return &Error{Op: "put", Err: ErrUnavailable,
		Msg: fmt.Sprintf("stream %s shard %s: the disk is full, the shard stored none of this request's records; retry once space is freed (%v)", sh.stream, sh.id, cause)}
}

// noFiles is the error of a put refused because the process had no file
// descriptors left to open a segment with.
func (sh *shard) noFiles(cause error) error {
	return &Error{Op: "put", Err: fmt.Errorf("%w (%w)", ErrUnavailable, cause),
		Msg: fmt.Sprintf("stream %s shard %s: the server has no file descriptors left (its open-file limit), the shard stored none of this request's records; retry (%v)", sh.stream, sh.id, cause)}
}

// refusing returns the error an append gets now because the disk is full,
// or nil; unlike append it lets no write through.
func (sh *shard) refusing() error {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.mu.full != nil && time.Now().Before(sh.mu.retryAt) {
		return sh.unavailable(sh.mu.full)
	}
	return nil
}

// fail marks the shard failed (first error wins) and wakes waiting readers.
func (sh *shard) fail(err error) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.mu.failed == nil {
		sh.mu.failed = err
		close(sh.mu.notify)
		sh.mu.notify = make(chan struct{})
	}
}

// ended runs once a closed shard's writer has stopped: counters up to the
// ending one that hold no record (a full disk or a failed write refused
// them) will never get one, so readers see the shard's end after its last
// record, as they do after a restart.
func (sh *shard) ended() {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.mu.visible < sh.mu.nextSeq-1 {
		sh.mu.visible = sh.mu.nextSeq - 1
		close(sh.mu.notify)
		sh.mu.notify = make(chan struct{})
	}
}

// closeForWrites stops appends (resharding) and returns the ending counter:
// the last sequence handed out. Pending appends still become durable.
func (sh *shard) closeForWrites() uint64 {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.mu.closed = true
	close(sh.mu.notify)
	sh.mu.notify = make(chan struct{})
	return sh.mu.nextSeq - 1
}
