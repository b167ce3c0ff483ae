package streams

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// The read side of a shard: consistent views of its segments, reading
// records from them (skipping damaged frames, which are reported), and
// finding a position by time.

// shardView is a consistent snapshot of what readers may see.
type shardView struct {
	segs    []segView
	visible uint64
	next    uint64
	closed  bool
	failed  error
	notify  <-chan struct{}
	tipTime int64
}

// segView is a segment as of a view: its size, last counter and sparse
// index are copied under the shard lock, so readers never race the writer.
type segView struct {
	seg         *segment
	size        int64
	filled      int64  // the file's length when prefilled past size
	first, end  uint64 // end = last visible counter (first-1 when empty)
	lastArrival int64
	index       []indexEntry
}

func (sh *shard) view() shardView {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	v := shardView{visible: sh.mu.visible, next: sh.mu.nextSeq, closed: sh.mu.closed, failed: sh.mu.failed, notify: sh.mu.notify}
	v.segs = make([]segView, len(sh.mu.segs))
	for i, s := range sh.mu.segs {
		v.segs[i] = segView{seg: s, size: s.size, filled: s.filled, first: s.first, end: s.last, lastArrival: s.lastArrival, index: s.index}
		if !s.empty() {
			v.tipTime = s.lastArrival
		}
	}
	return v
}

// trimHorizon is the counter of the oldest record still kept.
func (v *shardView) trimHorizon() uint64 {
	if len(v.segs) == 0 {
		return v.visible + 1
	}
	return v.segs[0].first
}

// read returns visible records with counters >= from, up to maxRecords and
// (past the first record) maxBytes of data, and the counter to read from
// next. Damaged records are skipped and reported, never returned.
func (sh *shard) read(v *shardView, from uint64, maxRecords, maxBytes int) ([]Record, uint64, error) {
	if th := v.trimHorizon(); from < th {
		from = th
	}
	if from > v.visible {
		return nil, from, nil
	}
	i := max(sort.Search(len(v.segs), func(i int) bool { return v.segs[i].first > from })-1, 0)
	var out []Record
	bytes := 0
	next := from
	for ; i < len(v.segs); i++ {
		sv := v.segs[i]
		if sv.end < next {
			continue
		}
		next = max(next, sv.first)
		recs, _, full, err := sh.readSegment(sv, offsetForSeq(sv.index, next), next, maxRecords-len(out), maxBytes-bytes, len(out) == 0)
		if err != nil {
			return nil, from, err
		}
		for _, r := range recs {
			bytes += len(r.Data)
			next = r.Seq + 1
		}
		out = append(out, recs...)
		if full {
			return out, next, nil
		}
		// The segment is exhausted: whatever was not returned up to its
		// last counter was damaged.
		next = max(next, sv.end+1)
	}
	return out, max(next, v.visible+1), nil
}

const readChunk = 1 << 20

// readSegment decodes the frames of a segment from byte off (a frame
// boundary) up to the view's size and returns the records with counter >=
// from: at most maxRecords, and at most maxBytes of data unless atLeastOne
// and none was taken yet. end is the offset after the last frame decoded;
// full says a limit stopped it before the end. Damaged frames are skipped
// (and reported once each).
func (sh *shard) readSegment(sv segView, off int64, from uint64, maxRecords, maxBytes int, atLeastOne bool) (out []Record, end int64, full bool, err error) {
	bytes := 0
	prev := sv.first - 1 // counter of the last frame decoded; they must increase
	var buf []byte
	bufOff := off // file offset of buf[0]
	// Read about what maxRecords frames of the segment's average size
	// take, not a whole chunk: a reader asking for a few thousand small
	// records then allocates and copies a fraction of readChunk.
	chunk := int64(readChunk)
	if n := int64(sv.end) - int64(sv.first) + 1; n > 0 && maxRecords > 0 {
		avg := (sv.size - int64(len(segmentMagic))) / n
		chunk = min(chunk, max(4096, avg*int64(min(maxRecords, 1<<20))*9/8+frameHeader))
	}
	for off < sv.size {
		if len(out) >= maxRecords {
			return out, off, true, nil
		}
		p := off - bufOff
		if buf == nil || p+frameHeader > int64(len(buf)) {
			if buf, err = sh.fill(sv, off, chunk); err != nil {
				return nil, off, false, err
			}
			bufOff, p = off, 0
		}
		rec, fl, derr := decodeFrame(buf[p:])
		if errors.Is(derr, errShortFrame) && bufOff+int64(len(buf)) < sv.size {
			// The frame runs past the buffer: read on from its start, at
			// least the whole frame when its length is plausible.
			need := max(chunk, int64(frameHeader)+int64(binary.LittleEndian.Uint32(buf[p:])))
			if buf, err = sh.fill(sv, off, need); err != nil {
				return nil, off, false, err
			}
			bufOff, p = off, 0
			rec, fl, derr = decodeFrame(buf)
		}
		if derr != nil || rec.Seq <= prev || rec.Seq > sv.end {
			reason := "sequence out of order"
			if derr != nil {
				reason = derr.Error()
			}
			if off, err = sh.skipDamage(sv, off, prev, reason); err != nil {
				return nil, off, false, err
			}
			buf = nil
			continue
		}
		off += int64(fl)
		prev = rec.Seq
		if rec.Seq < from {
			continue
		}
		if (len(out) > 0 || !atLeastOne) && bytes+len(rec.Data) > maxBytes {
			return out, off - int64(fl), true, nil
		}
		out = append(out, rec)
		bytes += len(rec.Data)
	}
	return out, off, false, nil
}

// fill reads a chunk of a segment starting at off: need bytes (at least 1
// and at most a whole frame's worth), never past the view's size.
func (sh *shard) fill(sv segView, off, need int64) ([]byte, error) {
	n := min(max(need, 1), frameHeader+maxBody)
	n = min(n, sv.size-off)
	buf := make([]byte, n)
	if err := sv.seg.readAt(buf, off); err != nil {
		return nil, err
	}
	return buf, nil
}

// skipDamage handles a damaged frame at off: it logs the damage once with
// shard and offset, and returns where the next valid frame starts (or the
// segment's end).
func (sh *shard) skipDamage(sv segView, off int64, prev uint64, reason string) (int64, error) {
	rest := make([]byte, sv.size-off)
	if err := sv.seg.readAt(rest, off); err != nil {
		return off, err
	}
	next := sv.size
	if r := resync(rest, 1, prev); r >= 0 {
		next = off + r
	}
	key := fmt.Sprintf("%s@%d", sv.seg.path, off)
	sh.mu.Lock()
	first := !sh.mu.reported[key]
	sh.mu.reported[key] = true
	sh.mu.Unlock()
	if first {
		cerr := &CorruptionError{Stream: sh.stream, Shard: sh.id, File: sv.seg.path, Offset: off, Reason: reason}
		sh.log.Error("damaged records skipped", "err", cerr, "skipped_bytes", next-off)
		sh.store.noteCorruption(cerr)
	}
	return next, nil
}

// positionAtTime is the counter of the first record that arrived at or
// after ts (ms), or the position after the tip.
func (sh *shard) positionAtTime(v *shardView, ts int64) (uint64, error) {
	for _, sv := range v.segs {
		if sv.end < sv.first || sv.lastArrival < ts {
			continue
		}
		off := offsetForTime(sv.index, ts)
		for {
			recs, end, full, err := sh.readSegment(sv, off, sv.first, 1000, 1<<30, true)
			if err != nil {
				return 0, err
			}
			for _, r := range recs {
				if r.Arrival >= ts {
					return r.Seq, nil
				}
			}
			if !full {
				break
			}
			off = end
		}
	}
	return v.visible + 1, nil
}
