package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/runnel-dev/runnel/internal/testutil/faultfs"
)

// TestFileCacheBounded writes many segments over many shards with room for
// four open files: every record reads back, the cache never holds more
// than its capacity once idle, and a reopened store holds no segment open
// until one is read.
func TestFileCacheBounded(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{MaxOpenFiles: 4, SegmentBytes: 300})
	mustCreate(t, s, "f", 8)
	want := map[string]bool{}
	for i := range 400 {
		d := fmt.Sprintf("rec-%d", i)
		want[d] = true
		putOne(t, s, "f", keyFor(i), []byte(d))
	}
	check := func(s *Store) {
		t.Helper()
		got := 0
		for sh := range 8 {
			for _, r := range readShard(t, s, "f", ShardID(sh), 7) {
				if !want[string(r.Data)] {
					t.Fatalf("unexpected record %q", r.Data)
				}
				got++
			}
		}
		if got != len(want) {
			t.Fatalf("read %d records, want %d", got, len(want))
		}
		if st := s.Limits().Files; st.Open > st.Capacity {
			t.Fatalf("%d files open, capacity %d", st.Open, st.Capacity)
		}
	}
	check(s)
	if st := s.Limits().Files; st.Evicted == 0 {
		t.Fatalf("no file was closed for the capacity: %+v", st)
	}
	s.Close()
	s = openMem(t, mem, Options{MaxOpenFiles: 4})
	defer s.Close()
	if st := s.Limits().Files; st.Open != 0 {
		t.Fatalf("a reopened store holds %d segment files open before any read", st.Open)
	}
	check(s)
}

// TestCapsRefuseStreamsAndShards: creating a stream or resharding past
// MaxStreams or MaxOpenShards fails with ErrLimitExceeded naming the flag;
// merging stays possible.
func TestCapsRefuseStreamsAndShards(t *testing.T) {
	checkGoroutines(t)
	s := openMem(t, vfs.NewMem(), Options{MaxStreams: 2, MaxOpenShards: 5})
	defer s.Close()
	mustCreate(t, s, "a", 2)
	mustCreate(t, s, "b", 2)
	for _, tc := range []struct {
		what string
		err  error
		flag string
	}{
		{"third stream", func() error { _, err := s.CreateStream("c", 1, CreateOptions{}); return err }(), "--max-streams"},
		{"update shard count past the cap", s.UpdateShardCount("a", 4), "--max-shards"},
	} {
		if !errors.Is(tc.err, ErrLimitExceeded) || !strings.Contains(tc.err.Error(), tc.flag) {
			t.Errorf("%s: got %v, want ErrLimitExceeded naming %s", tc.what, tc.err, tc.flag)
		}
	}
	info, _ := s.DescribeStream("b")
	mid := info.Shards[0].Range.Start.add(1 << 40).String()
	if err := s.SplitShard("b", info.Shards[0].ID, mid); err != nil {
		t.Fatalf("split up to the cap: %v", err)
	}
	if err := s.SplitShard("b", info.Shards[1].ID, info.Shards[1].Range.Start.add(1<<40).String()); !errors.Is(err, ErrLimitExceeded) {
		t.Fatalf("split past the cap: %v", err)
	}
	if err := s.UpdateShardCount("a", 1); err != nil {
		t.Fatalf("merging below the cap: %v", err)
	}
	if l := s.Limits(); l.Streams != 2 || l.OpenShards != 4 {
		t.Fatalf("limits: %+v", l)
	}
}

// TestDiskFullInjected makes segment writes fail with ENOSPC: puts fail
// with a retryable ErrUnavailable (the shard says DiskFull), and once
// writes work again the shard takes puts without a restart. Every
// acknowledged record is there, also after reopening.
func TestDiskFullInjected(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	inj := &faultfs.DiskFull{}
	fs := errorfs.Wrap(mem, inj)
	s := openMem(t, fs, Options{DiskRetry: time.Millisecond, SegmentBytes: 400})
	mustCreate(t, s, "d", 1)
	var acked []string
	put := func(i int) error {
		d := fmt.Sprintf("r%d", i)
		_, err := s.Put(context.Background(), "d", []PutRecord{{PartitionKey: "k", Data: []byte(d)}})
		if err == nil {
			acked = append(acked, d)
		}
		return err
	}
	i := 0
	for ; i < 20; i++ {
		if err := put(i); err != nil {
			t.Fatal(err)
		}
	}
	inj.Full.Store(true)
	for ; i < 40; i++ {
		err := put(i)
		if !errors.Is(err, ErrUnavailable) || !Retriable(err) || !strings.Contains(err.Error(), "disk is full") {
			t.Fatalf("put on a full disk: %v, want a retryable ErrUnavailable", err)
		}
		time.Sleep(time.Millisecond)
	}
	if info, _ := s.DescribeStream("d"); !info.Shards[0].DiskFull || s.DiskFull().Shards != 1 {
		t.Fatalf("the shard does not say it is stopped by a full disk: %+v %+v", info.Shards[0], s.DiskFull())
	}
	inj.Full.Store(false)
	time.Sleep(5 * time.Millisecond)
	for ; i < 60; i++ {
		if err := put(i); err != nil {
			t.Fatalf("put after space came back: %v", err)
		}
	}
	if s.DiskFull().Shards != 0 {
		t.Fatalf("disk-full state not cleared: %+v", s.DiskFull())
	}
	verify := func(s *Store) {
		t.Helper()
		got := map[string]bool{}
		for _, r := range readShard(t, s, "d", ShardID(0), 5) {
			got[string(r.Data)] = true
		}
		for _, d := range acked {
			if !got[d] {
				t.Fatalf("acknowledged record %s missing", d)
			}
		}
		if len(got) != len(acked) {
			t.Fatalf("read %d records, %d acknowledged: refused records came back", len(got), len(acked))
		}
	}
	verify(s)
	s.Close()
	s = openMem(t, mem, Options{})
	defer s.Close()
	verify(s)
	if len(s.Corruptions()) != 0 || len(s.Problems()) != 0 {
		t.Fatalf("a full disk left damage: %v %v", s.Corruptions(), s.Problems())
	}
}

// TestLostRecordsDetected truncates a closed store's only segment to 60%:
// the reopened store reports the missing counters (a Problem, a
// CorruptionError and the shard's Lost), numbers new records above them,
// and keeps the loss on record, reported once, across another reopen.
func TestLostRecordsDetected(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{})
	mustCreate(t, s, "l", 1)
	var last uint64
	for i := range 100 {
		last = putOne(t, s, "l", "k", payload(fmt.Sprint(i), 40)).Seq
	}
	segs := segmentFiles(t, mem, s, "l", 0)
	s.Close()
	b := fileData(t, mem, segs[0])
	rewrite(t, mem, segs[0], b[:len(b)*6/10])
	s = openMem(t, mem, Options{})
	ps := s.Problems()
	if len(ps) != 1 || ps[0].Kind != ProblemLostRecords || len(s.Corruptions()) != 1 {
		t.Fatalf("problems %v, corruptions %v; want one lost_records", ps, s.Corruptions())
	}
	info, _ := s.DescribeStream("l")
	lost := info.Shards[0].Lost
	if len(lost) != 1 || lost[0].To != last || lost[0].From > last || lost[0].From < 2 {
		t.Fatalf("lost ranges %+v, want one ending at %d", lost, last)
	}
	if r := putOne(t, s, "l", "k", []byte("new")); r.Seq <= last {
		t.Fatalf("new record got counter %d, not above the lost %d", r.Seq, last)
	}
	got := readShard(t, s, "l", ShardID(0), 7)
	if n := len(got); uint64(n) != lost[0].From {
		t.Fatalf("read %d records, want %d kept + 1 new", n, lost[0].From)
	}
	s.Close()
	s = openMem(t, mem, Options{})
	defer s.Close()
	if len(s.Problems()) != 0 || len(s.Corruptions()) != 0 {
		t.Fatalf("the recorded loss was reported again: %v %v", s.Problems(), s.Corruptions())
	}
	if info, _ := s.DescribeStream("l"); len(info.Shards[0].Lost) != 1 {
		t.Fatalf("the loss is no longer on record: %+v", info.Shards[0])
	}
}

// TestParseMetaStrict: metadata without a version, with unknown fields,
// trailing data or inconsistent streams is refused.
func TestParseMetaStrict(t *testing.T) {
	shard := `{"index":0,"range":{"start":"0","end":"340282366920938463463374607431768211455"},"created":"2026-01-01T00:00:00Z"}`
	stream := func(name, dir string) string {
		return fmt.Sprintf(`{"name":%q,"dir":%q,"created":"2026-01-01T00:00:00Z","retention_hours":24,"next_shard_index":1,"shards":[%s]}`, name, dir, shard)
	}
	good := `{"version":1,"streams":[` + stream("a", "a-1") + `]}`
	if _, err := parseMeta([]byte(good)); err != nil {
		t.Fatalf("good metadata refused: %v", err)
	}
	for _, tc := range []struct{ name, in, want string }{
		{"no version", `{"streams":[]}`, "version"},
		{"future version", `{"version":2,"streams":[]}`, "version 2"},
		{"unknown field", `{"version":1,"streams":[],"extra":1}`, "extra"},
		{"unknown stream field", `{"version":1,"streams":[{"name":"a","bogus":true}]}`, "bogus"},
		{"trailing data", good + `{}`, "after the JSON"},
		{"cut short", good[:len(good)/2], "not valid"},
		{"duplicate name", `{"version":1,"streams":[` + stream("a", "a-1") + `,` + stream("a", "a-2") + `]}`, "twice"},
		{"directory escapes", `{"version":1,"streams":[` + stream("a", "../x") + `]}`, "directory"},
		{"bad name", `{"version":1,"streams":[` + stream("a/b", "a-1") + `]}`, "name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parseMeta([]byte(tc.in))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error mentioning %q", err, tc.want)
			}
		})
	}
}

// TestMetadataRecovery: a missing or damaged streams.json is recovered
// from streams.json.prev with a Problem; with both gone and stream
// directories present Open refuses; a directory that no metadata names is
// reported, and one that never held a segment (a create cut short) is
// removed quietly.
func TestMetadataRecovery(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{})
	if _, err := mem.Stat(memDir + "/streams.json"); err != nil {
		t.Fatalf("a new store did not write its metadata at once: %v", err)
	}
	mustCreate(t, s, "a", 1)
	putOne(t, s, "a", "k", []byte("v"))
	mustCreate(t, s, "b", 1) // the copy now names a
	s.Close()
	main := memDir + "/streams.json"

	for _, damage := range []func(){
		func() { mem.Remove(main) },
		func() { rewrite(t, mem, main, []byte(`{"version":1,"streams":[`)) },
	} {
		damage()
		s = openMem(t, mem, Options{})
		ps := s.Problems()
		if len(ps) == 0 || ps[0].Kind != ProblemMetadataRecovered {
			t.Fatalf("problems %v, want metadata_recovered first", ps)
		}
		if got := readShard(t, s, "a", ShardID(0), 1); len(got) != 1 {
			t.Fatalf("stream a has %d records after recovery", len(got))
		}
		s.Close()
	}

	mem.Remove(main)
	mem.Remove(main + ".prev")
	if _, err := Open(memDir, Options{FS: mem, Logger: quietLogger()}); err == nil || !strings.Contains(err.Error(), "both missing") {
		t.Fatalf("open with both metadata files gone: %v", err)
	}
}

// TestOrphanDirectories: see TestMetadataRecovery.
func TestOrphanDirectories(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{})
	mustCreate(t, s, "a", 1)
	s.Close()
	ghost := memDir + "/streams/ghost-1/shardId-000000000000"
	mem.MkdirAll(ghost, 0o755)
	rewrite(t, mem, ghost+"/00000000000000000001.seg", []byte(segmentMagic))
	unfinished := memDir + "/streams/new-2/shardId-000000000000"
	mem.MkdirAll(unfinished, 0o755)
	s = openMem(t, mem, Options{})
	defer s.Close()
	ps := s.Problems()
	if len(ps) != 1 || ps[0].Kind != ProblemOrphanDirectory || !strings.Contains(ps[0].Path, "ghost-1") {
		t.Fatalf("problems %v, want ghost-1 as an orphan", ps)
	}
	if _, err := mem.Stat(memDir + "/streams/new-2"); err == nil {
		t.Fatal("an unfinished stream's empty directory was kept")
	}
	if _, err := mem.Stat(memDir + "/streams/ghost-1"); err != nil {
		t.Fatal("an orphan with records was removed")
	}
}

// TestDiskFullThenRoll: counters a full disk refused leave no records;
// when the next write starts a new segment, reopening must not read the
// refused counters as records missing between segments.
func TestDiskFullThenRoll(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	inj := &faultfs.DiskFull{}
	s := openMem(t, errorfs.Wrap(mem, inj), Options{DiskRetry: time.Nanosecond, SegmentBytes: 400, PrefillBytes: -1})
	mustCreate(t, s, "d", 1)
	put := func(n int) (PutResult, error) {
		res, err := s.Put(context.Background(), "d", []PutRecord{{PartitionKey: "k", Data: payload(fmt.Sprint(n), n)}})
		if err != nil {
			return PutResult{}, err
		}
		return res[0], nil
	}
	var want []uint64
	for range 3 {
		r, err := put(50)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, r.Seq)
	}
	inj.Full.Store(true)
	if _, err := put(50); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put on a full disk: %v", err)
	}
	inj.Full.Store(false)
	// A record that does not fit the active segment: the write rolls.
	for _, n := range []int{350, 10} {
		for {
			r, err := put(n)
			if errors.Is(err, ErrUnavailable) {
				continue // refused until the retry time passes
			}
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, r.Seq)
			break
		}
	}
	if n := len(segmentFiles(t, mem, s, "d", 0)); n < 2 {
		t.Fatalf("%d segments: the write did not roll", n)
	}
	s.Close()
	s = openMem(t, mem, Options{})
	defer s.Close()
	if c, p := s.Corruptions(), s.Problems(); len(c) > 0 || len(p) > 0 {
		t.Fatalf("refused counters reported at reopening: %v %v", c, p)
	}
	var got []uint64
	for _, r := range readShard(t, s, "d", ShardID(0), 2) {
		got = append(got, r.Seq)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("records %v, want %v", got, want)
	}
	if r, err := put(5); err != nil || r.Seq != want[len(want)-1]+1 {
		t.Fatalf("put after reopening: %+v %v, want counter %d", r, err, want[len(want)-1]+1)
	}
}

// TestDiskFullThenReshard: a shard closed by a reshard after a full disk
// refused its last counters still has an end that readers reach: a read
// after its last record says EndOfShard with the children, and Wait
// there returns.
func TestDiskFullThenReshard(t *testing.T) {
	checkGoroutines(t)
	inj := &faultfs.DiskFull{}
	s := openMem(t, errorfs.Wrap(vfs.NewMem(), inj), Options{DiskRetry: time.Nanosecond})
	defer s.Close()
	mustCreate(t, s, "d", 1)
	last := putOne(t, s, "d", "k", []byte("kept")).Seq
	inj.Full.Store(true)
	if _, err := s.Put(context.Background(), "d", []PutRecord{{PartitionKey: "k", Data: []byte("refused")}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put on a full disk: %v", err)
	}
	inj.Full.Store(false)
	if err := s.SplitShard("d", ShardID(0), EvenRanges(2)[1].Start.String()); err != nil {
		t.Fatal(err)
	}
	r, err := s.Read("d", ShardID(0), last+1, 0, 0)
	if err != nil || len(r.Records) != 0 || !r.EndOfShard || len(r.Children) != 2 {
		t.Fatalf("read after the last record of the closed shard: %+v %v, want the end of the shard and two children", r, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Wait(ctx, "d", ShardID(0), r.Next); err != nil {
		t.Fatalf("wait at the end of the closed shard: %v", err)
	}
}

// TestDiskFullRefusalIsWhole: a put refused because one of its shards is
// refusing writes for a full disk stores none of its records, on no
// shard, as its error says.
func TestDiskFullRefusalIsWhole(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	inj := &faultfs.DiskFull{}
	s := openMem(t, errorfs.Wrap(mem, inj), Options{DiskRetry: time.Hour})
	mustCreate(t, s, "d", 2)
	to := func(shard int, data string) PutRecord {
		return PutRecord{PartitionKey: "k", ExplicitHashKey: EvenRanges(2)[shard].Start.String(), Data: []byte(data)}
	}
	inj.Full.Store(true)
	if _, err := s.Put(context.Background(), "d", []PutRecord{to(1, "first refused")}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put on a full disk: %v", err)
	}
	inj.Full.Store(false)
	// Shard 1 refuses at once now, until its retry time; shard 0 has room.
	_, err := s.Put(context.Background(), "d", []PutRecord{to(0, "refused 0"), to(1, "refused 1")})
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("put to a shard refusing writes: %v", err)
	}
	s.Close()
	s = openMem(t, mem, Options{})
	defer s.Close()
	for i := range 2 {
		if recs := readShard(t, s, "d", ShardID(i), 10); len(recs) > 0 {
			t.Fatalf("a refused put (%v) stored %q on shard %d", err, recs[0].Data, i)
		}
	}
}
