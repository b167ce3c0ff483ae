package streams

import (
	"errors"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestIterators(t *testing.T) {
	mem := vfs.NewMem()
	c := newClock()
	s := openMem(t, mem, Options{SegmentBytes: 400, Now: c.now})
	mustCreate(t, s, "it", 1)
	sh := ShardID(0)
	var res []PutResult
	var at []time.Time
	for i := 0; i < 30; i++ {
		if i%2 == 0 {
			c.add(time.Second)
		}
		res = append(res, putOne(t, s, "it", keyFor(i), payload(fmt.Sprintf("r%d|", i), 40)))
		at = append(at, c.t)
	}
	if n := len(segmentFiles(t, mem, s, "it", 0)); n < 4 {
		t.Fatalf("want records spread over several segments, got %d", n)
	}
	seq := func(i int) string { return res[i].SequenceNumber() }
	none := -1
	cases := []struct {
		name  string
		it    IteratorType
		seq   string
		ts    time.Time
		first int // index of the first record read, or none
	}{
		{"trim horizon", TrimHorizon, "", time.Time{}, 0},
		{"latest", Latest, "", time.Time{}, none},
		{"at first", AtSequenceNumber, seq(0), time.Time{}, 0},
		{"at middle", AtSequenceNumber, seq(13), time.Time{}, 13},
		{"at last", AtSequenceNumber, seq(29), time.Time{}, 29},
		{"after first", AfterSequenceNumber, seq(0), time.Time{}, 1},
		{"after middle", AfterSequenceNumber, seq(13), time.Time{}, 14},
		{"after last", AfterSequenceNumber, seq(29), time.Time{}, none},
		{"at counter 0", AtSequenceNumber, FormatSeq(seqTag(t, s, "it"), 0, 0), time.Time{}, 0},
		{"timestamp before all", AtTimestamp, "", at[0].Add(-time.Hour), 0},
		{"timestamp of a pair", AtTimestamp, "", at[10], 10},
		{"timestamp of the second of a pair", AtTimestamp, "", at[11], 10},
		{"timestamp between", AtTimestamp, "", at[20].Add(-500 * time.Millisecond), 20},
		{"timestamp of the last", AtTimestamp, "", at[29], 28},
		{"timestamp after all", AtTimestamp, "", at[29].Add(time.Millisecond), none},
	}
	check := func(s *Store) {
		for _, tc := range cases {
			pos, err := s.Seek("it", sh, tc.it, tc.seq, tc.ts)
			if err != nil {
				t.Fatalf("%s: seek: %v", tc.name, err)
			}
			r, err := s.Read("it", sh, pos, 1, 0)
			if err != nil {
				t.Fatalf("%s: read: %v", tc.name, err)
			}
			switch {
			case tc.first == none && len(r.Records) != 0:
				t.Errorf("%s: read record %d, want none", tc.name, r.Records[0].Seq)
			case tc.first != none && (len(r.Records) != 1 || r.Records[0].Seq != res[tc.first].Seq):
				t.Errorf("%s: read %v, want record %d", tc.name, r.Records, res[tc.first].Seq)
			}
		}
		if c := s.Corruptions(); len(c) != 0 {
			t.Fatalf("clean log reported corruption: %v", c[0].Error())
		}
	}
	check(s)
	// A new record is read from a LATEST position taken before it.
	pos, _ := s.Seek("it", sh, Latest, "", time.Time{})
	s.Close()
	s = openMem(t, mem, Options{Now: c.now})
	defer s.Close()
	check(s) // again, with indexes loaded from the sidecars
	r := putOne(t, s, "it", "k", []byte("new"))
	got, err := s.Read("it", sh, pos, 0, 0)
	if err != nil || len(got.Records) != 1 || got.Records[0].Seq != r.Seq {
		t.Fatalf("read from LATEST after a put: %+v %v", got, err)
	}

	bad := []struct {
		name string
		it   IteratorType
		seq  string
	}{
		{"unknown type", "AT_SOMETHING", ""},
		{"malformed", AtSequenceNumber, "12"},
		{"other shard", AtSequenceNumber, FormatSeq(seqTag(t, s, "it"), 1, 3)},
		{"other stream", AtSequenceNumber, FormatSeq(seqTag(t, s, "it")%maxSeqTag+1, 0, 3)},
		{"no tag", AtSequenceNumber, FormatSeq(0, 0, 3)},
	}
	for _, b := range bad {
		if _, err := s.Seek("it", sh, b.it, b.seq, time.Time{}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", b.name, err)
		}
	}
	if _, err := s.Seek("it", ShardID(9), TrimHorizon, "", time.Time{}); !errors.Is(err, ErrShardNotFound) {
		t.Errorf("missing shard: %v", err)
	}
	if _, err := s.Seek("nope", sh, TrimHorizon, "", time.Time{}); !errors.Is(err, ErrStreamNotFound) {
		t.Errorf("missing stream: %v", err)
	}
}

// TestReadFromEveryPosition reads one record from every counter, so that
// reads start at every offset inside segments (not only at indexed ones).
func TestReadFromEveryPosition(t *testing.T) {
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{SegmentBytes: 20 << 10})
	defer s.Close()
	mustCreate(t, s, "p", 1)
	var want []PutResult
	for i := 0; i < 600; i++ {
		want = append(want, putOne(t, s, "p", keyFor(i), payload(fmt.Sprintf("%d|", i), 30+i%50)))
	}
	for i, w := range want {
		r, err := s.Read("p", ShardID(0), w.Seq, 1, 0)
		if err != nil || len(r.Records) != 1 || r.Records[0].Seq != w.Seq || r.Next != w.Seq+1 {
			t.Fatalf("read at %d: %+v %v", w.Seq, r, err)
		}
		if string(r.Records[0].Data[:len(fmt.Sprint(i))]) != fmt.Sprint(i) {
			t.Fatalf("read at %d: data %q", w.Seq, r.Records[0].Data)
		}
	}
	if c := s.Corruptions(); len(c) != 0 {
		t.Fatalf("reads reported corruption in a clean log: %v", c[0].Error())
	}
}

func TestReadLimits(t *testing.T) {
	c := newClock()
	s := openMem(t, vfs.NewMem(), Options{Now: c.now, SegmentBytes: 1000})
	defer s.Close()
	mustCreate(t, s, "l", 1)
	for i := 0; i < 10; i++ {
		c.add(time.Second)
		putOne(t, s, "l", "k", payload("", 100))
	}
	sh := ShardID(0)
	cases := []struct {
		name             string
		from             uint64
		maxRecords, maxB int
		n                int
		next             uint64
		behindMs         int64
	}{
		{"records limit", 1, 3, 0, 3, 4, 7000},
		{"bytes limit", 1, 0, 250, 2, 3, 8000},
		{"one record even when over the byte limit", 1, 0, 10, 1, 2, 9000},
		{"to the tip", 4, 0, 0, 7, 11, 0},
		{"across segments", 2, 8, 0, 8, 10, 1000},
		{"past the tip", 11, 0, 0, 0, 11, 0},
		{"before the start", 0, 2, 0, 2, 3, 8000},
	}
	for _, tc := range cases {
		r, err := s.Read("l", sh, tc.from, tc.maxRecords, tc.maxB)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Records) != tc.n || r.Next != tc.next || r.MillisBehind != tc.behindMs || r.EndOfShard {
			t.Errorf("%s: got %d records, next %d, %d ms behind, end %v; want %d, %d, %d",
				tc.name, len(r.Records), r.Next, r.MillisBehind, r.EndOfShard, tc.n, tc.next, tc.behindMs)
		}
	}
}

// TestLargeRecords reads 1 MiB records (frames larger than a read chunk)
// from every position, alone and mixed with small ones, before and after a
// restart.
func TestLargeRecords(t *testing.T) {
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{SegmentBytes: 3 << 20})
	mustCreate(t, s, "big", 1)
	var want [][]byte
	for i := 0; i < 8; i++ {
		n := MaxDataSize
		if i%3 == 1 {
			n = 10
		}
		d := payload(fmt.Sprintf("%d|", i), n)
		want = append(want, d)
		putOne(t, s, "big", "k", d)
	}
	check := func() {
		for i := range want {
			r, err := s.Read("big", ShardID(0), uint64(i+1), 0, 0)
			if err != nil || len(r.Records) == 0 || !bytesEqual(r.Records[0].Data, want[i]) {
				t.Fatalf("read at %d: %d records, %v", i+1, len(r.Records), err)
			}
			total := 0
			for j, rec := range r.Records {
				total += len(rec.Data)
				if !bytesEqual(rec.Data, want[i+j]) {
					t.Fatalf("read at %d: record %d differs", i+1, j)
				}
			}
			if len(r.Records) > 1 && total > MaxReadBytes {
				t.Fatalf("read at %d returned %d bytes", i+1, total)
			}
		}
		if c := s.Corruptions(); len(c) != 0 {
			t.Fatal(c[0].Error())
		}
	}
	check()
	s.Close()
	s = openMem(t, mem, Options{})
	defer s.Close()
	check()
	if _, err := Open(memDir, Options{FS: mem, Logger: quietLogger()}); err == nil {
		t.Fatal("a second store opened the same directory")
	}
}

func bytesEqual(a, b []byte) bool { return string(a) == string(b) }

// TestSeekAfterLargestCounter: AFTER_SEQUENCE_NUMBER of the largest
// counter a sequence number can hold is refused, not wrapped around to
// the trim horizon (which would read the shard again from its start).
func TestSeekAfterLargestCounter(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	defer s.Close()
	mustCreate(t, s, "s", 1)
	putOne(t, s, "s", "k", []byte("x"))
	seq := FormatSeq(seqTag(t, s, "s"), 0, math.MaxUint64)
	if pos, err := s.Seek("s", ShardID(0), AfterSequenceNumber, seq, time.Time{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AFTER_SEQUENCE_NUMBER %s: position %d, %v; want ErrInvalid", seq, pos, err)
	}
	if pos, err := s.Seek("s", ShardID(0), AtSequenceNumber, seq, time.Time{}); err != nil || pos != math.MaxUint64 {
		t.Fatalf("AT_SEQUENCE_NUMBER %s: position %d, %v", seq, pos, err)
	}
}
