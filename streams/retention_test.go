package streams

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestRetention writes one record every 30 minutes for 30 hours into
// segments that roll every hour, then steps the clock and checks what
// EnforceRetention keeps.
func TestRetention(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	c := newClock()
	o := Options{Now: c.now, SegmentAge: time.Hour, RetentionCheck: time.Hour}
	s := openMem(t, mem, o)
	mustCreate(t, s, "r", 1)
	sh := ShardID(0)
	var res []PutResult
	var at []time.Time
	for i := 0; i < 60; i++ {
		res = append(res, putOne(t, s, "r", "k", payload("", 10)))
		at = append(at, c.t)
		c.add(30 * time.Minute)
	}
	segsBefore := len(segmentFiles(t, mem, s, "r", 0))
	cases := []struct {
		name  string
		now   time.Time
		first int // index of the oldest record kept
	}{
		// Nothing is older than 24 h yet.
		{"all young", at[0].Add(23 * time.Hour), 0},
		// Whole segments only: segments hold 3 records (an hour) each, and
		// a segment goes once its newest record is older than the
		// retention.
		{"first hours expire", at[5].Add(24*time.Hour + time.Minute), 6},
		{"more expire", at[31].Add(24*time.Hour + time.Minute), 30},
		{"all but the newest", at[58].Add(24*time.Hour + time.Minute), 57},
	}
	for _, tc := range cases {
		c.t = tc.now
		s.EnforceRetention()
		in, err := s.DescribeStream("r")
		if err != nil {
			t.Fatal(err)
		}
		wantTrim := res[min(tc.first, len(res)-1)].Seq
		if tc.first == 0 {
			wantTrim = 1
		}
		if got := in.Shards[0].TrimSeq; got != wantTrim {
			t.Fatalf("%s: trim horizon %d, want %d", tc.name, got, wantTrim)
		}
		// A read before the trim horizon starts at it.
		r, err := s.Read("r", sh, 1, 1, 0)
		if err != nil || len(r.Records) != 1 || r.Records[0].Seq != wantTrim {
			t.Fatalf("%s: read from 1: %+v %v, want record %d", tc.name, r.Records, err, wantTrim)
		}
		pos, err := s.Seek("r", sh, TrimHorizon, "", time.Time{})
		if err != nil || pos != wantTrim {
			t.Fatalf("%s: TRIM_HORIZON = %d %v", tc.name, pos, err)
		}
		pos, err = s.Seek("r", sh, AtSequenceNumber, res[0].SequenceNumber(), time.Time{})
		if err != nil || pos != wantTrim {
			t.Fatalf("%s: AT_SEQUENCE_NUMBER of an expired record = %d %v", tc.name, pos, err)
		}
	}
	if n := len(segmentFiles(t, mem, s, "r", 0)); n >= segsBefore || n > 2 {
		t.Fatalf("expired segment files not deleted: %d before, %d after", segsBefore, n)
	}
	// Everything expires; the next record still gets a new counter, also
	// after a restart.
	c.add(48 * time.Hour)
	s.EnforceRetention()
	if r, _ := s.Read("r", sh, 0, 0, 0); len(r.Records) != 0 {
		t.Fatalf("expired records still read: %d", len(r.Records))
	}
	s.Close()
	s = openMem(t, mem, o)
	defer s.Close()
	if r := putOne(t, s, "r", "k", []byte("after")); r.Seq != res[len(res)-1].Seq+1 {
		t.Fatalf("counter after everything expired and a restart: %d, want %d", r.Seq, res[len(res)-1].Seq+1)
	}
}

func TestRetentionSettings(t *testing.T) {
	c := newClock()
	s := openMem(t, vfs.NewMem(), Options{Now: c.now})
	defer s.Close()
	for _, h := range []int{23, 8761, -1} {
		if _, err := s.CreateStream("x", 1, CreateOptions{RetentionHours: h}); !errors.Is(err, ErrInvalid) {
			t.Errorf("retention %d h: %v, want ErrInvalid", h, err)
		}
	}
	in, err := s.CreateStream("x", 1, CreateOptions{RetentionHours: 8760})
	if err != nil || in.RetentionHours != 8760 {
		t.Fatalf("retention 8760 h: %v %+v", err, in)
	}
	in = mustCreate(t, s, "d", 1)
	if in.RetentionHours != DefaultRetentionHours {
		t.Fatalf("default retention %d", in.RetentionHours)
	}
	putOne(t, s, "d", "k", []byte("v"))
	// A longer retention keeps a record the default would drop.
	if err := s.UpdateStream("d", func(u *StreamUpdate) error { u.RetentionHours = 48; return nil }); err != nil {
		t.Fatal(err)
	}
	c.add(30 * time.Hour)
	putOne(t, s, "d", "k", []byte("v2")) // rolls nothing: the segment is only old, not full
	s.EnforceRetention()
	if r, _ := s.Read("d", ShardID(0), 0, 0, 0); len(r.Records) != 2 {
		t.Fatalf("48 h retention kept %d records, want 2", len(r.Records))
	}
	if err := s.UpdateStream("d", func(u *StreamUpdate) error { u.RetentionHours = 10; return nil }); !errors.Is(err, ErrInvalid) {
		t.Fatalf("retention 10 h accepted: %v", err)
	}
	if in, _ := s.DescribeStream("d"); in.RetentionHours != 48 {
		t.Fatalf("a rejected update changed retention to %d", in.RetentionHours)
	}
}

// TestRetentionOfClosedShards: a parent stays readable until its records
// expire; then a reader still learns its children.
func TestRetentionOfClosedShards(t *testing.T) {
	mem := vfs.NewMem()
	c := newClock()
	s := openMem(t, mem, Options{Now: c.now})
	mustCreate(t, s, "p", 1)
	putOne(t, s, "p", "k", []byte("old"))
	if err := s.SplitShard("p", ShardID(0), EvenRanges(2)[1].Start.String()); err != nil {
		t.Fatal(err)
	}
	c.add(25 * time.Hour)
	s.EnforceRetention()
	for round := 0; round < 2; round++ {
		r, err := s.Read("p", ShardID(0), 0, 0, 0)
		if err != nil || len(r.Records) != 0 || !r.EndOfShard || len(r.Children) != 2 {
			t.Fatalf("round %d: expired parent: %+v %v", round, r, err)
		}
		in, _ := s.DescribeStream("p")
		if !in.Shards[0].Expired || in.Shards[0].Open {
			t.Fatalf("round %d: parent not reported expired: %+v", round, in.Shards[0])
		}
		if err := s.Wait(context.Background(), "p", ShardID(0), r.Next); err != nil {
			t.Fatalf("wait on an expired closed shard: %v", err)
		}
		s.Close()
		s = openMem(t, mem, Options{Now: c.now})
	}
	s.Close()
}

// TestRetentionUnderReaders deletes segments while readers read them: a
// read never fails and never returns a record out of order; readers that
// fall behind the trim horizon go on from it.
func TestRetentionUnderReaders(t *testing.T) {
	checkGoroutines(t)
	var mu sync.Mutex
	c := newClock()
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return c.t }
	s := openMem(t, vfs.NewMem(), Options{Now: now, SegmentBytes: 1 << 10, RetentionCheck: time.Hour})
	defer s.Close()
	mustCreate(t, s, "q", 1)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for r := 0; r < 3; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pos, prev := uint64(0), uint64(0)
			for ctx.Err() == nil {
				res, err := s.Read("q", ShardID(0), pos, 7, 0)
				if err != nil {
					errs <- err
					return
				}
				for _, rec := range res.Records {
					if rec.Seq <= prev {
						errs <- fmt.Errorf("record %d after %d", rec.Seq, prev)
						return
					}
					prev = rec.Seq
				}
				pos = res.Next
				if len(res.Records) == 0 {
					pos = 0 // start over from the trim horizon
					prev = 0
				}
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		putOne(t, s, "q", "k", payload(fmt.Sprint(i), 50))
		if i%50 == 49 {
			mu.Lock()
			c.add(time.Hour)
			mu.Unlock()
			s.EnforceRetention()
		}
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if c := s.Corruptions(); len(c) != 0 {
		t.Fatal(c[0].Error())
	}
}
