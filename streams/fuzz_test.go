package streams

import (
	"bytes"
	"testing"
)

func seedSegment() []byte {
	b := []byte(segmentMagic)
	b = appendFrame(b, 5, 1700000000000, "key", []byte("hello"))
	b = appendFrame(b, 6, 1700000000001, "", nil)
	b = appendFrame(b, 7, 1700000000001, "ключ", bytes.Repeat([]byte{0xff}, 300))
	return b
}

// FuzzDecodeFrame: decodeFrame never panics, and a frame it accepts
// re-encodes to exactly the bytes it was decoded from.
func FuzzDecodeFrame(f *testing.F) {
	seg := seedSegment()
	f.Add(seg[len(segmentMagic):])
	f.Add(appendFrame(nil, 1, 0, "k", []byte("v")))
	f.Add(appendFrame(nil, 1, -1, "", nil)[:10])
	f.Add([]byte{})
	f.Add([]byte{18, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, n, err := decodeFrame(b)
		if err != nil {
			if n != 0 {
				t.Fatalf("error %v with size %d", err, n)
			}
			return
		}
		if n < frameHeader+bodyFixed || n > len(b) {
			t.Fatalf("frame size %d of %d bytes", n, len(b))
		}
		again := appendFrame(nil, rec.Seq, rec.Arrival, rec.PartitionKey, rec.Data)
		if !bytes.Equal(again, b[:n]) {
			t.Fatalf("re-encoded frame differs:\n%x\n%x", again, b[:n])
		}
		if frameSeq(b) != rec.Seq || frameArrival(b) != rec.Arrival || frameLen(b) != n {
			t.Fatal("frame accessors disagree with decodeFrame")
		}
	})
}

// FuzzScanSegment: scanning any bytes as a segment never panics; the
// frames it accepts are exactly those between its damaged regions, each
// with a valid checksum and a counter above the one before; and its index
// points at accepted frames.
func FuzzScanSegment(f *testing.F) {
	seg := seedSegment()
	f.Add(uint64(5), seg)
	f.Add(uint64(1), seg[:len(seg)-3])
	flipped := bytes.Clone(seg)
	flipped[30] ^= 4
	f.Add(uint64(5), flipped)
	f.Add(uint64(6), seg)
	f.Add(uint64(1), []byte(segmentMagic[:3]))
	f.Add(uint64(1), append([]byte("XXXXXXXX"), seg[len(segmentMagic):]...))
	f.Fuzz(func(t *testing.T, first uint64, data []byte) {
		if first == 0 {
			first = 1 // segment names start at 1 (recovery ignores 0)
		}
		s := &segment{first: first}
		res := s.scan(data)
		if res.validEnd > int64(len(data)) || (!res.torn && res.validEnd != int64(len(data))) {
			t.Fatalf("valid end %d of %d bytes, torn %v", res.validEnd, len(data), res.torn)
		}
		if len(data) < len(segmentMagic) {
			if !s.empty() {
				t.Fatal("records in a segment without a header")
			}
			return
		}
		indexed := map[int64]uint64{}
		for _, e := range s.index {
			indexed[e.off] = e.seq
		}
		prev := first - 1
		off := int64(len(segmentMagic))
		regions := s.corrupt
		if len(regions) > 0 && regions[0].off == 0 {
			regions = regions[1:] // the header
		}
		for off < res.validEnd {
			if len(regions) > 0 && regions[0].off == off {
				if regions[0].end <= off {
					t.Fatalf("empty damaged region at %d", off)
				}
				off = regions[0].end
				regions = regions[1:]
				continue
			}
			rec, n, err := decodeFrame(data[off:])
			if err != nil {
				t.Fatalf("accepted a bad frame at %d: %v", off, err)
			}
			if rec.Seq <= prev {
				t.Fatalf("accepted counter %d after %d at %d", rec.Seq, prev, off)
			}
			if seq, ok := indexed[off]; ok && seq != rec.Seq {
				t.Fatalf("index says %d at %d, frame holds %d", seq, off, rec.Seq)
			}
			delete(indexed, off)
			prev = rec.Seq
			off += int64(n)
		}
		if off != res.validEnd || len(regions) != 0 || len(indexed) != 0 {
			t.Fatalf("walk ended at %d (valid end %d), %d regions and %d index entries left", off, res.validEnd, len(regions), len(indexed))
		}
		if s.last != prev {
			t.Fatalf("last %d, walk found %d", s.last, prev)
		}
	})
}

// FuzzParseSeq: ParseSeq never panics, and what it accepts formats back to
// the same string.
func FuzzParseSeq(f *testing.F) {
	f.Add(FormatSeq(0, 3, 42))
	f.Add(FormatSeq(123456789012, 3, 42))
	f.Add("49000000000000000000000000000000000000000000000000000000")
	f.Add("4900000000000000000000000000000000000000000000000000000+")
	f.Fuzz(func(t *testing.T, s string) {
		tag, idx, ctr, err := ParseSeq(s)
		if err == nil && FormatSeq(tag, idx, ctr) != s {
			t.Fatalf("%q parsed as %d/%d/%d, formats as %q", s, tag, idx, ctr, FormatSeq(tag, idx, ctr))
		}
	})
}
