package streams

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sort"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// A segment is one append-only file of a shard, named by the sequence
// counter of its first record ("00000000000000000001.seg"). Sealed segments
// get a sidecar ".idx" holding the sparse index so that opening a large log
// does not scan it; the index is only a cache and is rebuilt when missing or
// damaged.
type segment struct {
	first uint64 // counter of the first record this segment may hold
	path  string
	// fmu guards reads against retention and Close removing the file under
	// a reader: readers hold it for reading around ReadAt, and gone is set
	// (under the write lock) before the file's handles are dropped.
	fmu sync.RWMutex
	// files holds the read handle, opened on demand and closed when idle;
	// the shard's writer has its own.
	files        *fileCache
	gone         bool
	size         int64  // bytes visible to readers (header + complete frames)
	filled       int64  // the file's length when zero-filled past size (prefill.go)
	noPrefill    bool   // prefill failed for want of space: append from here on
	last         uint64 // counter of the last visible record; first-1 when empty
	firstArrival int64
	lastArrival  int64
	index        []indexEntry // sparse: one entry per indexEvery bytes
	corrupt      []region     // damaged ranges found while scanning, skipped by readers
}

type indexEntry struct {
	seq     uint64
	off     int64
	arrival int64
}

type region struct {
	off, end int64
	reason   string
}

const indexEvery = 4096

func segmentName(first uint64) string { return fmt.Sprintf("%020d.seg", first) }

func (s *segment) empty() bool { return s.last < s.first }

// addIndex records a frame at off in the sparse index when due.
func (s *segment) addIndex(seq uint64, off, arrival int64) {
	if n := len(s.index); n == 0 || off-s.index[n-1].off >= indexEvery {
		s.index = append(s.index, indexEntry{seq, off, arrival})
	}
}

// errSegmentGone: retention (or Close) removed the segment while a reader
// was about to read it; the reader starts over from a fresh view.
var errSegmentGone = errors.New("segment removed")

// readAt reads from the segment's read handle unless it has been closed.
func (s *segment) readAt(b []byte, off int64) error {
	s.fmu.RLock()
	defer s.fmu.RUnlock()
	if s.gone || s.files == nil {
		return errSegmentGone
	}
	cf, err := s.files.acquire(s.path, false)
	if err != nil && isOutOfFiles(err) {
		return &Error{Op: "read", Err: fmt.Errorf("%w (%w)", ErrUnavailable, err),
			Msg: fmt.Sprintf("open segment %s: the server has no file descriptors left (its open-file limit); retry (%v)", s.path, err)}
	}
	if err != nil {
		return fmt.Errorf("open segment %s: %w", s.path, err)
	}
	n, err := cf.f.ReadAt(b, off)
	s.files.release(cf)
	if n == len(b) {
		return nil
	}
	if err == nil {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read segment %s at %d: %w", s.path, off, err)
}

// closeRead closes the segment's handles; later readAt calls get
// errSegmentGone.
func (s *segment) closeRead() {
	s.fmu.Lock()
	defer s.fmu.Unlock()
	if !s.gone && s.files != nil {
		s.files.drop(s.path)
	}
	s.gone = true
}

// offsetForSeq is the offset of the last indexed frame (of a snapshot of
// the sparse index) with seq <= target, from where a forward scan finds
// target.
func offsetForSeq(index []indexEntry, target uint64) int64 {
	i := sort.Search(len(index), func(i int) bool { return index[i].seq > target })
	if i == 0 {
		return int64(len(segmentMagic))
	}
	return index[i-1].off
}

// offsetForTime is the offset of the last indexed frame that arrived before
// ts, from where a forward scan finds the first record at or after ts.
// Arrival times never decrease within a shard, so the index is sorted by
// them too.
func offsetForTime(index []indexEntry, ts int64) int64 {
	i := sort.Search(len(index), func(i int) bool { return index[i].arrival >= ts })
	if i == 0 {
		return int64(len(segmentMagic))
	}
	return index[i-1].off
}

// scanResult is what a full scan of a segment's bytes found.
type scanResult struct {
	validEnd int64  // offset just past the last valid frame
	torn     bool   // bytes after validEnd are an incomplete or damaged tail
	reason   string // why the tail is bad, when torn
	// zeros: the bytes after validEnd (torn is set) are all zeros, as
	// prefill leaves them: the segment's end, not a damaged tail.
	zeros bool
}

// scan validates every frame of data (a whole segment file), filling the
// segment's index, bounds and damaged regions. A damaged frame followed by
// valid ones is a damaged region (reported, skipped); one followed by none is
// a torn tail, which the caller truncates (active segment) or stops reading
// at (sealed segment). A damaged header is a damaged region of its own: the
// frames after it are still found.
func (s *segment) scan(data []byte) scanResult {
	s.index, s.corrupt = s.index[:0], nil
	s.last = s.first - 1
	s.firstArrival, s.lastArrival = 0, 0
	hdr := int64(len(segmentMagic))
	if int64(len(data)) < hdr {
		// Crashed while writing the header (or cut short): no records.
		s.size = hdr
		return scanResult{validEnd: int64(len(data)), torn: true}
	}
	if string(data[:hdr]) != segmentMagic {
		s.corrupt = append(s.corrupt, region{0, hdr, "bad segment header"})
	}
	off := hdr
	for off < int64(len(data)) {
		rec, n, err := decodeFrame(data[off:])
		if err == nil && rec.Seq > s.last {
			s.accept(rec.Seq, off, rec.Arrival)
			off += int64(n)
			continue
		}
		if data[off] == 0 && allZero(data[off:]) {
			s.size = off
			return scanResult{validEnd: off, torn: true, reason: "zero-filled tail", zeros: true}
		}
		reason := "sequence out of order"
		if err != nil {
			reason = err.Error()
		}
		next := resync(data, off+1, s.last)
		if next < 0 {
			s.size = off
			return scanResult{validEnd: off, torn: true, reason: reason}
		}
		s.corrupt = append(s.corrupt, region{off, next, reason})
		off = next
	}
	s.size = off
	return scanResult{validEnd: off}
}

func (s *segment) accept(seq uint64, off, arrival int64) {
	if s.empty() {
		s.firstArrival = arrival
	}
	s.addIndex(seq, off, arrival)
	s.last = seq
	s.lastArrival = arrival
}

// resync finds the next offset >= from holding a valid frame with a sequence
// counter above prev, or -1. Cheap plausibility checks run before the
// checksum so that scanning garbage stays linear in practice.
func resync(data []byte, from int64, prev uint64) int64 {
	for off := from; off+frameHeader+bodyFixed <= int64(len(data)); off++ {
		b := data[off:]
		n := int(binary.LittleEndian.Uint32(b))
		if n < bodyFixed || n > maxBody || len(b) < frameHeader+n {
			continue
		}
		seq := binary.LittleEndian.Uint64(b[frameHeader:])
		if seq <= prev || seq > prev+1<<32 {
			continue
		}
		if _, _, err := decodeFrame(b); err == nil {
			return off
		}
	}
	return -1
}

// readAll reads a whole file.
func readAll(f vfs.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, st.Size())
	n, err := f.ReadAt(buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:n], nil
}

// Index sidecar format: magic, u64 entry count, entries (seq, off, arrival),
// then u64 last, i64 size, i64 firstArrival, i64 lastArrival, and a CRC-32C
// of everything before it.
const indexMagic = "RNLIDX01"

func (s *segment) encodeIndex() []byte {
	b := []byte(indexMagic)
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s.index)))
	for _, e := range s.index {
		b = binary.LittleEndian.AppendUint64(b, e.seq)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.off))
		b = binary.LittleEndian.AppendUint64(b, uint64(e.arrival))
	}
	b = binary.LittleEndian.AppendUint64(b, s.last)
	b = binary.LittleEndian.AppendUint64(b, uint64(s.size))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.firstArrival))
	b = binary.LittleEndian.AppendUint64(b, uint64(s.lastArrival))
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, crcTable))
}

// decodeIndex loads a sidecar; ok is false when it is damaged or does not
// match the segment's size, and the caller rescans.
func (s *segment) decodeIndex(b []byte, fileSize int64) bool {
	if len(b) < len(indexMagic)+8+32+4 || string(b[:len(indexMagic)]) != indexMagic {
		return false
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, crcTable) != sum {
		return false
	}
	p := body[len(indexMagic):]
	n := binary.LittleEndian.Uint64(p)
	p = p[8:]
	if len(p) < 32 || n > uint64(len(p)-32)/24 || uint64(len(p)) != n*24+32 {
		return false
	}
	idx := make([]indexEntry, n)
	for i := range idx {
		idx[i] = indexEntry{binary.LittleEndian.Uint64(p), int64(binary.LittleEndian.Uint64(p[8:])), int64(binary.LittleEndian.Uint64(p[16:]))}
		p = p[24:]
	}
	size := int64(binary.LittleEndian.Uint64(p[8:]))
	if size != fileSize {
		return false
	}
	s.index = idx
	s.last = binary.LittleEndian.Uint64(p)
	s.size = size
	s.firstArrival = int64(binary.LittleEndian.Uint64(p[16:]))
	s.lastArrival = int64(binary.LittleEndian.Uint64(p[24:]))
	return true
}
