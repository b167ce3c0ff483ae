package streams

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// checkLineage checks the invariants of a stream's shards: open ranges tile
// the hash-key space, children name existing closed parents whose ranges
// they cover, and a reader at the end of every closed shard gets
// EndOfShard and its children.
func checkLineage(t *testing.T, s *Store, name string) StreamInfo {
	t.Helper()
	in, err := s.DescribeStream(name)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]ShardInfo{}
	var open []HashRange
	for _, sh := range in.Shards {
		byID[sh.ID] = sh
		if sh.Open {
			open = append(open, sh.Range)
		}
	}
	checkTiling(t, open)
	for _, sh := range in.Shards {
		for _, p := range []string{sh.Parent, sh.AdjacentParent} {
			if p == "" {
				continue
			}
			ps, ok := byID[p]
			if !ok || ps.Open || !slices.Contains(ps.Children, sh.ID) {
				t.Fatalf("%s: parent %s missing, open or not listing it: %+v", sh.ID, p, ps)
			}
			if sh.AdjacentParent == "" && (sh.Range.Start.Cmp(ps.Range.Start) < 0 || sh.Range.End.Cmp(ps.Range.End) > 0) {
				t.Fatalf("split child %s %v is not inside parent %s %v", sh.ID, sh.Range, p, ps.Range)
			}
		}
		if sh.Open {
			continue
		}
		if len(sh.Children) == 0 {
			t.Fatalf("closed shard %s has no children", sh.ID)
		}
		r, err := s.Read(name, sh.ID, sh.EndingSeq+1, 0, 0)
		if err != nil || !r.EndOfShard || !slices.Equal(r.Children, sh.Children) {
			t.Fatalf("read at the end of closed %s: %+v %v, want children %v", sh.ID, r, err, sh.Children)
		}
		if sh.EndingSequenceNumber() != FormatSeq(sh.SeqTag, sh.Index, sh.EndingSeq) {
			t.Fatalf("%s: ending sequence number %q", sh.ID, sh.EndingSequenceNumber())
		}
		if _, err := s.Put(context.Background(), name, []PutRecord{{PartitionKey: "k", ExplicitHashKey: sh.Range.Start.String()}}); err != nil {
			t.Fatalf("put into the range of closed %s: %v", sh.ID, err)
		}
	}
	return in
}

// putKeys puts one record per key and checks each went to an open shard
// holding its hash; it returns where each went.
func putKeys(t *testing.T, s *Store, name string, n int, tag string) map[string][]string {
	t.Helper()
	in, _ := s.DescribeStream(name)
	recs := make([]PutRecord, n)
	for i := range recs {
		recs[i] = PutRecord{PartitionKey: keyFor(i), Data: []byte(fmt.Sprintf("%s-%d", tag, i))}
	}
	res, err := s.Put(context.Background(), name, recs)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for i, r := range res {
		var sh ShardInfo
		for _, x := range in.Shards {
			if x.ID == r.ShardID {
				sh = x
			}
		}
		if !sh.Open || !sh.Range.Contains(HashPartitionKey(recs[i].PartitionKey)) {
			t.Fatalf("record %d went to %s (open %v, range %v)", i, r.ShardID, sh.Open, sh.Range)
		}
		out[r.ShardID] = append(out[r.ShardID], string(recs[i].Data))
	}
	return out
}

func TestSplitAndMerge(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{})
	mustCreate(t, s, "m", 1)
	before := putKeys(t, s, "m", 50, "before")
	mid := EvenRanges(2)[1].Start
	if err := s.SplitShard("m", ShardID(0), mid.String()); err != nil {
		t.Fatal(err)
	}
	in := checkLineage(t, s, "m")
	if len(in.Shards) != 3 || in.Shards[1].Parent != ShardID(0) || in.Shards[2].Parent != ShardID(0) ||
		in.Shards[1].Range.End != mid.sub1() || in.Shards[2].Range.Start != mid || in.Shards[0].EndingSeq != 50 {
		t.Fatalf("after split: %+v", in.Shards)
	}
	after := putKeys(t, s, "m", 50, "after")
	if len(after[ShardID(0)]) != 0 {
		t.Fatal("records went to the closed parent")
	}
	// The parent keeps its records, then ends with its children.
	got := readShard(t, s, "m", ShardID(0), 7)
	if len(got) != len(before[ShardID(0)]) {
		t.Fatalf("parent holds %d records, want %d", len(got), len(before[ShardID(0)]))
	}
	if err := s.MergeShards("m", ShardID(1), ShardID(2)); err != nil {
		t.Fatal(err)
	}
	in = checkLineage(t, s, "m")
	if m := in.Shards[3]; m.Parent != ShardID(1) || m.AdjacentParent != ShardID(2) || m.Range != (HashRange{HashKey{}, MaxHashKey}) {
		t.Fatalf("merged shard: %+v", m)
	}
	// The merged shard is the only open one and covers every key: all
	// records go there, whatever their keys (no hashing needed).
	if merged := putKeys(t, s, "m", 20, "merged"); len(merged[ShardID(3)]) != 20 {
		t.Fatalf("after the merge, records went to %v", merged)
	}
	bad := []struct {
		name string
		err  error
		fn   func() error
	}{
		{"split a closed shard", ErrShardClosed, func() error { return s.SplitShard("m", ShardID(0), mid.String()) }},
		{"split at the range start", ErrInvalid, func() error { return s.SplitShard("m", ShardID(3), "0") }},
		{"split at a bad key", ErrInvalid, func() error { return s.SplitShard("m", ShardID(3), "x") }},
		{"split a missing shard", ErrShardNotFound, func() error { return s.SplitShard("m", ShardID(9), mid.String()) }},
		{"merge with a closed shard", ErrShardClosed, func() error { return s.MergeShards("m", ShardID(3), ShardID(1)) }},
		{"merge in a missing stream", ErrStreamNotFound, func() error { return s.MergeShards("nope", ShardID(3), ShardID(1)) }},
	}
	for _, b := range bad {
		if err := b.fn(); !errors.Is(err, b.err) {
			t.Errorf("%s: %v, want %v", b.name, err, b.err)
		}
	}
	if err := s.SplitShard("m", ShardID(3), EvenRanges(4)[1].Start.String()); err != nil {
		t.Fatal(err)
	}
	if err := s.MergeShards("m", ShardID(4), ShardID(4)); !errors.Is(err, ErrInvalid) {
		t.Errorf("merge a shard with itself: %v", err)
	}
	// Non-adjacent: split 5 again and try to merge 4 with the upper half.
	in, _ = s.DescribeStream("m")
	if err := s.SplitShard("m", ShardID(5), EvenRanges(4)[3].Start.String()); err != nil {
		t.Fatal(err)
	}
	if err := s.MergeShards("m", ShardID(4), ShardID(7)); !errors.Is(err, ErrInvalid) {
		t.Errorf("merge non-adjacent shards: %v", err)
	}
	// Lineage and records survive a restart.
	want := checkLineage(t, s, "m")
	s.Close()
	s = openMem(t, mem, Options{})
	defer s.Close()
	lineage := func(in StreamInfo) string {
		out := ""
		for _, sh := range in.Shards {
			out += fmt.Sprintln(sh.ID, sh.Range, sh.Parent, sh.AdjacentParent, sh.Children, sh.Open, sh.EndingSeq, sh.Created, sh.Closed)
		}
		return out
	}
	if got := checkLineage(t, s, "m"); lineage(got) != lineage(want) {
		t.Fatalf("lineage changed across a restart:\n%v\n%v", lineage(got), lineage(want))
	}
	if got := readShard(t, s, "m", ShardID(0), 0); len(got) != len(before[ShardID(0)]) {
		t.Fatalf("parent lost records across a restart")
	}
	if _, err := s.Put(context.Background(), "m", []PutRecord{{PartitionKey: "x", Data: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
}

// TestUpdateShardCount reshapes a stream up and down; after each change
// the open shards are exactly the even ranges of the target, every record
// written so far is still readable, and new records go to open shards.
func TestUpdateShardCount(t *testing.T) {
	checkGoroutines(t)
	s := openMem(t, vfs.NewMem(), Options{})
	defer s.Close()
	mustCreate(t, s, "u", 2)
	total := 0
	for _, target := range []int{3, 4, 2, 5, 1, 8, 7} {
		putKeys(t, s, "u", 40, fmt.Sprintf("t%d", target))
		total += 40
		if err := s.UpdateShardCount("u", target); err != nil {
			t.Fatalf("to %d: %v", target, err)
		}
		in := checkLineage(t, s, "u")
		var open []HashRange
		n := 0
		for _, sh := range in.Shards {
			if sh.Open {
				open = append(open, sh.Range)
			}
			n += len(readShard(t, s, "u", sh.ID, 0))
		}
		slices.SortFunc(open, func(a, b HashRange) int { return a.Start.Cmp(b.Start) })
		if !slices.Equal(open, EvenRanges(target)) {
			t.Fatalf("to %d: open ranges %v, want %v", target, open, EvenRanges(target))
		}
		if c, _ := s.OpenShardCount("u"); c != target {
			t.Fatalf("to %d: %d open shards", target, c)
		}
		if n < total {
			t.Fatalf("to %d: %d records readable, want %d", target, n, total)
		}
		total = n // includes checkLineage's probes
	}
	for _, bad := range []int{0, -1, MaxShards + 1} {
		if err := s.UpdateShardCount("u", bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("target %d: %v", bad, err)
		}
	}
}

// TestRandomReshards applies random splits and merges while producers put
// concurrently; lineage invariants hold after each, and no acknowledged
// record is lost or lands in a shard that was closed when it was put.
func TestRandomReshards(t *testing.T) {
	checkGoroutines(t)
	rounds := 60
	if testing.Short() {
		rounds = 15
	}
	rng := rand.New(rand.NewPCG(1, 2))
	s := openMem(t, vfs.NewMem(), Options{SegmentBytes: 2048})
	defer s.Close()
	mustCreate(t, s, "x", 2)
	ctx, cancel := context.WithCancel(context.Background())
	type ack struct {
		shard string
		seq   uint64
		data  string
	}
	acks := make(chan []ack, 1000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ctx.Err() == nil; i++ {
			recs := []PutRecord{{PartitionKey: keyFor(i), Data: []byte(fmt.Sprint(i))}, {PartitionKey: keyFor(i * 7), Data: []byte(fmt.Sprint(-i))}}
			res, err := s.Put(ctx, "x", recs)
			if err != nil {
				continue
			}
			a := make([]ack, len(res))
			for j, r := range res {
				a[j] = ack{r.ShardID, r.Seq, string(recs[j].Data)}
			}
			select {
			case acks <- a:
			default:
			}
		}
	}()
	for round := 0; round < rounds; round++ {
		in, _ := s.DescribeStream("x")
		var open []ShardInfo
		for _, sh := range in.Shards {
			if sh.Open {
				open = append(open, sh)
			}
		}
		slices.SortFunc(open, func(a, b ShardInfo) int { return a.Range.Start.Cmp(b.Range.Start) })
		i := rng.IntN(len(open))
		if rng.IntN(2) == 0 && len(open) > 1 && i+1 < len(open) {
			if err := s.MergeShards("x", open[i].ID, open[i+1].ID); err != nil {
				t.Fatalf("round %d merge: %v", round, err)
			}
		} else if r := open[i].Range; r.Start != r.End {
			at := r.Start.add(1 + rng.Uint64N(1<<40))
			if at.Cmp(r.End) > 0 {
				at = r.End
			}
			if err := s.SplitShard("x", open[i].ID, at.String()); err != nil {
				t.Fatalf("round %d split at %s of %v: %v", round, at, r, err)
			}
		}
		checkLineage(t, s, "x")
	}
	cancel()
	<-done
	close(acks)
	for a := range acks {
		for _, x := range a {
			r, err := s.Read("x", x.shard, x.seq, 1, 0)
			if err != nil || len(r.Records) != 1 || r.Records[0].Seq != x.seq || string(r.Records[0].Data) != x.data {
				t.Fatalf("acknowledged %s/%d %q: %+v %v", x.shard, x.seq, x.data, r.Records, err)
			}
		}
	}
}

// TestWait: in-process readers block without polling and wake on an
// append, on the shard closing, on ctx and on Close.
func TestWait(t *testing.T) {
	checkGoroutines(t)
	s := openMem(t, vfs.NewMem(), Options{})
	mustCreate(t, s, "w", 1)
	sh := ShardID(0)
	ctx := context.Background()
	wait := func(from uint64, ctx context.Context) chan error {
		ch := make(chan error, 1)
		go func() { ch <- s.Wait(ctx, "w", sh, from) }()
		return ch
	}
	// Returns at once when records are there.
	putOne(t, s, "w", "k", []byte("1"))
	if err := s.Wait(ctx, "w", sh, 1); err != nil {
		t.Fatal(err)
	}
	// Wakes on an append.
	ch := wait(2, ctx)
	testutil.WaitBlocked(t, 10*time.Second, storeWait)
	select {
	case err := <-ch:
		t.Fatalf("wait returned before a record arrived: %v", err)
	default:
	}
	putOne(t, s, "w", "k", []byte("2"))
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
	// Honours ctx.
	cctx, cancel := context.WithCancel(ctx)
	ch = wait(3, cctx)
	cancel()
	if err := <-ch; !errors.Is(err, context.Canceled) {
		t.Fatalf("wait after cancel: %v", err)
	}
	// Wakes when the shard closes; a read then reports the end.
	ch = wait(3, ctx)
	testutil.WaitBlocked(t, 10*time.Second, storeWait)
	if err := s.SplitShard("w", sh, "1"); err != nil {
		t.Fatal(err)
	}
	if err := <-ch; err != nil {
		t.Fatal(err)
	}
	if r, _ := s.Read("w", sh, 3, 0, 0); !r.EndOfShard || len(r.Children) != 2 {
		t.Fatalf("read after close: %+v", r)
	}
	// Wakes on Close.
	ch2 := make(chan error, 1)
	go func() { ch2 <- s.Wait(ctx, "w", ShardID(1), 1) }()
	if err := s.Wait(ctx, "w", "shardId-000000000099", 1); !errors.Is(err, ErrShardNotFound) {
		t.Fatalf("wait on a missing shard: %v", err)
	}
	testutil.WaitBlocked(t, 10*time.Second, storeWait)
	if len(ch2) > 0 {
		t.Fatalf("wait on an empty shard returned: %v", <-ch2)
	}
	s.Close()
	if err := <-ch2; !errors.Is(err, ErrClosed) {
		t.Fatalf("wait across Close: %v", err)
	}
}

// TestPutDuringClose: puts racing Close return (succeeded or ErrClosed);
// none hangs, and every acknowledged one is there after reopening.
func TestPutDuringClose(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{})
	mustCreate(t, s, "c", 2)
	type ack struct {
		shard string
		seq   uint64
	}
	results := make(chan []ack, 8)
	for p := 0; p < 8; p++ {
		go func(p int) {
			var mine []ack
			for i := 0; ; i++ {
				res, err := s.Put(context.Background(), "c", []PutRecord{{PartitionKey: keyFor(p*1000 + i), Data: []byte("x")}})
				if err != nil {
					if !errors.Is(err, ErrClosed) {
						t.Errorf("put during close: %v", err)
					}
					results <- mine
					return
				}
				mine = append(mine, ack{res[0].ShardID, res[0].Seq})
			}
		}(p)
	}
	time.Sleep(20 * time.Millisecond) // let some puts through; not an assertion
	s.Close()
	var all []ack
	for p := 0; p < 8; p++ {
		all = append(all, <-results...)
	}
	s = openMem(t, mem, Options{})
	defer s.Close()
	for _, a := range all {
		if r, err := s.Read("c", a.shard, a.seq, 1, 0); err != nil || len(r.Records) != 1 || r.Records[0].Seq != a.seq {
			t.Fatalf("acknowledged %s/%d lost: %v", a.shard, a.seq, err)
		}
	}
}

func TestDeleteAndRecreate(t *testing.T) {
	checkGoroutines(t)
	c := newClock() // a clock that stands still: same directory name
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{Now: c.now})
	defer s.Close()
	mustCreate(t, s, "d", 1)
	putOne(t, s, "d", "k", []byte("old"))
	if err := s.DeleteStream("d"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DescribeStream("d"); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("describe deleted: %v", err)
	}
	if _, err := s.Put(context.Background(), "d", []PutRecord{{PartitionKey: "k"}}); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("put to deleted: %v", err)
	}
	mustCreate(t, s, "d", 1)
	if got := readShard(t, s, "d", ShardID(0), 0); len(got) != 0 {
		t.Fatalf("recreated stream has %d old records", len(got))
	}
	if r := putOne(t, s, "d", "k", []byte("new")); r.Seq != 1 {
		t.Fatalf("recreated stream starts at %d", r.Seq)
	}
	if err := s.DeleteStream("nope"); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("delete missing: %v", err)
	}
}

// TestCloseDuringReshard: Close racing reshards and puts neither crashes,
// deadlocks nor leaks a writer.
func TestCloseDuringReshard(t *testing.T) {
	checkGoroutines(t)
	for round := 0; round < 10; round++ {
		s := openMem(t, vfs.NewMem(), Options{})
		mustCreate(t, s, "c", 2)
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				if err := s.UpdateShardCount("c", 1+i%4); err != nil {
					return
				}
			}
		}()
		go func() {
			for i := 0; ; i++ {
				if _, err := s.Put(context.Background(), "c", []PutRecord{{PartitionKey: keyFor(i), Data: []byte("x")}}); err != nil {
					return
				}
			}
		}()
		time.Sleep(time.Duration(round) * time.Millisecond) // vary the race; not an assertion
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		<-done
	}
}

// storeWait is Store.Wait as a stack trace names it: a test of a wake-up
// waits until a goroutine is parked there before it acts.
const storeWait = "github.com/runnel-dev/runnel/streams.(*Store).Wait"
