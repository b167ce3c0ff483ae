package streams

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// recover opens a shard's segments after a restart or crash. Sealed
// segments load their index sidecar (or are rescanned); the last segment is
// always scanned, and a torn tail — a frame cut short or damaged with no
// valid frame after it — is truncated to the last valid record. Zeros
// after the last valid frame, to the end of the file, are prefill's: the
// segment's end, kept for the writer to overwrite.
func (sh *shard) recover() error {
	if err := mkdirAllSynced(sh.fs, sh.dir); err != nil {
		return fmt.Errorf("open shard %s/%s: %w", sh.stream, sh.id, err)
	}
	names, err := sh.fs.List(sh.dir)
	if err != nil {
		return fmt.Errorf("list shard %s/%s: %w", sh.stream, sh.id, err)
	}
	var firsts []uint64
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, ".tmp"):
			_ = sh.fs.Remove(sh.fs.PathJoin(sh.dir, n))
		case strings.HasSuffix(n, ".seg"):
			f, err := strconv.ParseUint(strings.TrimSuffix(n, ".seg"), 10, 64)
			if err != nil || f == 0 {
				sh.log.Warn("ignoring unexpected file in shard directory", "file", n)
				continue
			}
			firsts = append(firsts, f)
		}
	}
	sort.Slice(firsts, func(i, j int) bool { return firsts[i] < firsts[j] })
	for i, first := range firsts {
		seg, err := sh.openSegment(first, i == len(firsts)-1)
		if err != nil {
			return err
		}
		if n := len(sh.mu.segs); n > 0 {
			// Segments are contiguous: each starts right after the last
			// record of the one before. A gap means lost records.
			if prev := sh.mu.segs[n-1]; prev.last+1 < first && !sh.knownLost(prev.last+1, first-1) {
				cerr := &CorruptionError{Stream: sh.stream, Shard: sh.id, File: prev.path, Offset: prev.size,
					Reason: fmt.Sprintf("records %d to %d are missing", prev.last+1, first-1)}
				sh.log.Error("damaged records skipped", "err", cerr)
				sh.store.noteCorruption(cerr)
			}
		}
		sh.mu.segs = append(sh.mu.segs, seg)
	}
	if n := len(sh.mu.segs); n > 0 {
		last := sh.mu.segs[n-1]
		sh.mu.nextSeq = max(last.last+1, last.first)
		for _, s := range sh.mu.segs {
			if !s.empty() {
				sh.mu.clock = max(sh.mu.clock, s.lastArrival)
			}
		}
	}
	sh.mu.visible = sh.mu.nextSeq - 1
	return nil
}

func (sh *shard) openSegment(first uint64, isLast bool) (*segment, error) {
	path := sh.fs.PathJoin(sh.dir, segmentName(first))
	// Segments are not kept open: the store's file cache opens them when
	// they are read, so a restart does not hold a handle per segment.
	seg := &segment{first: first, path: path, files: sh.store.files}
	if !isLast {
		st, err := sh.fs.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("stat segment %s: %w", path, err)
		}
		if b, err := readFile(sh.fs, path[:len(path)-4]+".idx"); err == nil && seg.decodeIndex(b, st.Size()) {
			return seg, nil
		}
	}
	data, err := readFile(sh.fs, path)
	if err != nil {
		return nil, fmt.Errorf("read segment %s: %w", path, err)
	}
	res := seg.scan(data)
	for _, r := range seg.corrupt {
		cerr := &CorruptionError{Stream: sh.stream, Shard: sh.id, File: path, Offset: r.off, Reason: r.reason}
		sh.log.Error("damaged records skipped", "err", cerr, "skipped_bytes", r.end-r.off)
		sh.store.noteCorruption(cerr)
	}
	if !res.torn {
		return seg, nil
	}
	if res.zeros {
		// The zeros prefill writes ahead of the records: the segment ends
		// where they start, and the writer goes on there.
		seg.filled = int64(len(data))
		return seg, nil
	}
	if !isLast {
		// A sealed segment was synced whole before the next one was
		// created, so a bad tail is damage, not a crash: report it and read
		// up to it, but leave the file alone.
		cerr := &CorruptionError{Stream: sh.stream, Shard: sh.id, File: path, Offset: res.validEnd,
			Reason: "damaged tail of a sealed segment: " + res.reason}
		sh.log.Error("damaged records skipped", "err", cerr, "skipped_bytes", int64(len(data))-res.validEnd)
		sh.store.noteCorruption(cerr)
		return seg, nil
	}
	if seg.last < sh.durableHint {
		// Below the last durable position: acknowledged records are gone
		// (Store.checkDurable reports which); not a crash mid-write.
		sh.log.Error("truncating damaged tail below the shard's last durable position", "segment", path, "offset", res.validEnd, "bytes", int64(len(data))-res.validEnd)
	} else {
		sh.log.Warn("truncating torn tail", "segment", path, "offset", res.validEnd, "bytes", int64(len(data))-res.validEnd)
	}
	// Rewrite the valid prefix: vfs has no truncate, and a copy keeps the
	// old file intact until the rename. The header is rewritten too, in case
	// it was the damaged part.
	valid := make([]byte, max(res.validEnd, int64(len(segmentMagic))))
	copy(valid, data[:res.validEnd])
	copy(valid, segmentMagic)
	if err := WriteFileAtomic(sh.fs, path, valid); err != nil {
		return nil, fmt.Errorf("truncate torn tail of %s: %w", path, err)
	}
	seg.size = int64(len(valid))
	return seg, nil
}

func readFile(fs vfs.FS, path string) ([]byte, error) {
	f, err := fs.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f)
}

// stopWriter makes the shard refuse new appends, flushes what is queued and
// waits for the writer goroutine to return.
func (sh *shard) stopWriter() {
	sh.mu.Lock()
	sh.mu.stopped = true
	sh.mu.Unlock()
	sh.stopOnce.Do(func() { close(sh.stop) })
	<-sh.done
	sh.dropSpares()
}

func (sh *shard) closeFiles() {
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	if sh.wpath != "" {
		sh.store.files.drop(sh.wpath)
		sh.wpath = ""
	}
	sh.mu.Lock()
	segs := sh.mu.segs
	sh.mu.Unlock()
	for _, s := range segs {
		s.closeRead()
	}
}

// expire deletes whole segments whose newest record arrived before cutoff.
// When that includes the active segment of an open shard, an empty segment
// named by the next counter replaces it first, so counters are never reused
// after a restart.
func (sh *shard) expire(cutoff int64) error {
	sh.wmu.Lock()
	defer sh.wmu.Unlock()
	sh.mu.Lock()
	segs := sh.mu.segs
	closed := sh.mu.closed
	var drop []*segment
	for i, s := range segs {
		last := i == len(segs)-1
		if (s.empty() && !last) || (!s.empty() && s.lastArrival < cutoff) {
			drop = append(drop, s)
		} else {
			break
		}
	}
	var lastSeg *segment
	if n := len(drop); n > 0 && drop[n-1] == segs[len(segs)-1] {
		lastSeg = drop[n-1]
	}
	sh.mu.Unlock()
	if len(drop) == 0 {
		return nil
	}
	if lastSeg != nil {
		if sh.wpath != "" {
			sh.store.files.drop(sh.wpath)
			sh.wpath = ""
			sh.dirty = false
		}
		if !closed {
			if _, err := sh.createSegment(lastSeg.last + 1); err != nil {
				return err
			}
		}
	}
	sh.mu.Lock()
	sh.mu.segs = sh.mu.segs[len(drop):]
	sh.mu.Unlock()
	for _, s := range drop {
		s.closeRead()
		if err := sh.fs.Remove(s.path); err != nil {
			return fmt.Errorf("remove expired segment %s: %w", s.path, err)
		}
		_ = sh.fs.Remove(s.path[:len(s.path)-4] + ".idx")
	}
	return syncDir(sh.fs, sh.dir)
}
