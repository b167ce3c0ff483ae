package streams

import (
	"bytes"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Prefill. Making an append durable costs the filesystem more than making
// an overwrite durable: fdatasync after writing past the end of a file
// must also persist the new size and the new blocks' allocation (with a
// journal, a journal commit), while after overwriting blocks that were already written and
// synced it only writes the data. So the active segment's file is kept
// filled with zeros ahead of its last record: the group that first writes
// past the filled end also writes zeros after its own bytes, up to
// prefillTarget, and its one fdatasync persists both. The groups after it
// overwrite those zeros, and their syncs have no size change to persist.
//
// The zeros are never data. Recovery reads a segment's bytes after its last
// valid frame that are all zeros to the end of the file as the segment's
// end (scan's zeros), which is also what a crash between a write and its
// sync leaves there. Sealing a segment and stopping its writer cut the file
// back to its records, so sealed segments, their index sidecars and the
// files of a stopped server are as without prefill.
//
// Prefill only pays while the groups are small (prefillGroupBytes); a
// shard whose groups are larger appends as without it.
//
// When the zeros cannot be written for want of space, the segment is not
// prefilled any further: the group is acknowledged (its own bytes were
// written) and later groups append, so that a full disk behaves as without
// prefill and puts that fit are still stored.

// prefillGroupBytes: prefill only while the shard's commit groups average
// at most this many bytes. The zeros cost CPU for every byte of the log and
// the cheaper syncs save it for every sync, so the larger the groups, the
// less prefill saves, until it costs more than it saves (docs/streams.md
// has the measurements behind the limit).
const prefillGroupBytes = 32 << 10

// DefaultPrefillBytes is how far ahead of its last record the active
// segment is kept filled at most: a sixteenth of a default segment.
const DefaultPrefillBytes = 4 << 20

// prefillGroups is how many groups of the shard's average size an
// extension fills ahead, so that one sync in that many carries a size
// change; minPrefill is the least it fills. Sizing the step by the groups
// rather than by the segment keeps a shard that writes little from
// writing (and syncing) much zero space at once.
const (
	prefillGroups = 64
	minPrefill    = 64 << 10
)

// prefillTarget is the file length the active segment should have once a
// group ending at end is written: end plus prefillGroups of the shard's
// average group, between minPrefill and Options.PrefillBytes, but never
// past SegmentBytes (the segment rolls there). It is end when prefill is
// off.
func (sh *shard) prefillTarget(end int64) int64 {
	most := sh.store.opts.PrefillBytes
	if most <= 0 {
		return end
	}
	ahead := min(most, max(min(minPrefill, most), prefillGroups*sh.groupBytes))
	return max(end, min(end+ahead, sh.store.opts.SegmentBytes))
}

// prefill writes zeros after a group that ended at end, when the group
// went past the segment's filled end, and returns the file's filled length
// (end when nothing was written). Only a want of space is tolerated (the
// segment then appends from here on); any other error is the group's.
// Caller holds wmu and syncs after it.
func (sh *shard) prefill(f vfs.File, seg *segment, end int64) (int64, error) {
	if seg.noPrefill || end <= seg.filled || sh.groupBytes > sh.store.prefillGroup {
		return max(end, seg.filled), nil
	}
	target := sh.prefillTarget(end)
	if target <= end {
		return end, nil
	}
	zeros := zeroChunk()
	for off := end; off < target; {
		n, err := f.WriteAt(zeros[:min(int64(len(zeros)), target-off)], off)
		off += int64(n)
		if err == nil {
			sh.store.writes.prefilled.Add(int64(n))
			continue
		}
		if !isNoSpace(err) {
			return 0, fmt.Errorf("prefill segment %s: %w", seg.path, err)
		}
		seg.noPrefill = true
		sh.log.Info("disk nearly full: the active segment is no longer filled ahead of its records; writes append to it", "segment", seg.path, "err", err)
		return off, nil
	}
	return target, nil
}

// zeroChunk is the zeros prefill writes from, shared and never written to
// (a fresh buffer each time made the zeros cost an allocation as large).
var zeroChunk = sync.OnceValue(func() []byte { return make([]byte, DefaultPrefillBytes) })

// trimPrefill cuts the segment's file back to its records when it is
// filled past them. Caller holds wmu and syncs the file after it (seal,
// stop). On a filesystem without file descriptors (the in-memory one of
// tests) the records are rewritten to a new file renamed over the old one,
// which leaves the same two states to a crash as a truncation: the file
// before or after. replaced then tells the caller that f is no longer the
// segment's file (and that the new one is synced).
func (sh *shard) trimPrefill(f vfs.File, seg *segment) (replaced bool, err error) {
	sh.mu.Lock()
	size, filled := seg.size, seg.filled
	sh.mu.Unlock()
	if filled <= size {
		return false, nil
	}
	if fd := f.Fd(); fd != vfs.InvalidFd {
		if err := truncateFd(fd, size); err != nil {
			return false, fmt.Errorf("truncate segment %s to its records: %w", seg.path, err)
		}
	} else {
		data := make([]byte, size)
		if _, err := f.ReadAt(data, 0); err != nil {
			return false, fmt.Errorf("read segment %s: %w", seg.path, err)
		}
		sh.store.files.drop(seg.path)
		if err := WriteFileAtomic(sh.fs, seg.path, data); err != nil {
			return false, fmt.Errorf("truncate segment %s to its records: %w", seg.path, err)
		}
		replaced = true
	}
	sh.mu.Lock()
	seg.filled = size
	sh.mu.Unlock()
	return replaced, nil
}

// stopPrefill cuts the active segment back to its records and syncs it when
// the writer stops (store closing, shard resharded away), so that a stopped
// server leaves its files as without prefill. A failure is logged and
// harmless: recovery reads a zero tail as the segment's end.
func (sh *shard) stopPrefill() {
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	sh.mu.Lock()
	var seg *segment
	if n := len(sh.mu.segs); n > 0 && sh.mu.segs[n-1].filled > sh.mu.segs[n-1].size {
		seg = sh.mu.segs[n-1]
	}
	sh.mu.Unlock()
	if seg == nil {
		return
	}
	if err := sh.cutBack(seg); err != nil {
		sh.log.Warn("stopping: the active segment keeps its zero-filled tail (the next start reads it as the segment's end)", "segment", seg.path, "err", err)
	}
}

// cutBack cuts seg's file back to its records (trimPrefill) and makes it
// durable: sealing and stopping leave the segment as without prefill.
// Caller holds wmu.
func (sh *shard) cutBack(seg *segment) error {
	cf, err := sh.store.files.acquire(seg.path, true)
	if err != nil {
		return fmt.Errorf("open segment %s: %w", seg.path, err)
	}
	defer sh.store.files.release(cf)
	replaced, err := sh.trimPrefill(cf.f, seg)
	if err != nil || replaced {
		return err // a replacing rewrite is synced already
	}
	sh.store.writes.syncs.Add(1)
	if err := cf.f.Sync(); err != nil {
		return fmt.Errorf("sync segment %s: %w", seg.path, err)
	}
	return nil
}

// allZero reports whether b holds only zero bytes.
func allZero(b []byte) bool {
	const step = 4096
	var zero [step]byte
	for len(b) > 0 {
		n := min(len(b), step)
		if !bytes.Equal(b[:n], zero[:n]) {
			return false
		}
		b = b[n:]
	}
	return true
}
