package streams

import (
	"context"
	"crypto/md5"
	"errors"
	"math/big"
	"sort"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/runnel-dev/runnel/internal/testutil"
)

func bigOf(s string) *big.Int {
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		panic(s)
	}
	return b
}

// checkTiling fails unless ranges, sorted, cover [0, 2^128−1] exactly.
func checkTiling(t *testing.T, ranges []HashRange) {
	t.Helper()
	sort.Slice(ranges, func(i, j int) bool { return ranges[i].Start.Cmp(ranges[j].Start) < 0 })
	if len(ranges) == 0 || ranges[0].Start != (HashKey{}) {
		t.Fatalf("ranges do not start at 0: %v", ranges)
	}
	for i := range ranges {
		if ranges[i].End.Cmp(ranges[i].Start) < 0 {
			t.Fatalf("range %d is empty: %v", i, ranges[i])
		}
		if i+1 < len(ranges) && ranges[i].End.add(1) != ranges[i+1].Start {
			t.Fatalf("ranges %d and %d do not meet: %v %v", i, i+1, ranges[i], ranges[i+1])
		}
	}
	if ranges[len(ranges)-1].End != MaxHashKey {
		t.Fatalf("last range ends at %s, not 2^128-1", ranges[len(ranges)-1].End)
	}
}

func TestEvenRanges(t *testing.T) {
	two128 := new(big.Int).Lsh(big.NewInt(1), 128)
	for _, n := range []int{1, 2, 3, 4, 5, 7, 10, 64, 1000, MaxShards} {
		rs := EvenRanges(n)
		if len(rs) != n {
			t.Fatalf("n=%d: %d ranges", n, len(rs))
		}
		checkTiling(t, rs)
		for i, r := range rs {
			want := new(big.Int).Div(new(big.Int).Mul(two128, big.NewInt(int64(i))), big.NewInt(int64(n)))
			if r.Start.big().Cmp(want) != 0 {
				t.Fatalf("n=%d range %d starts at %s, want floor(i*2^128/n) = %s", n, i, r.Start, want)
			}
		}
	}
	if got := EvenRanges(2)[1].Start.String(); got != "170141183460469231731687303715884105728" {
		t.Fatalf("2 shards split at %s", got)
	}
}

// TestHashRangeMid: Mid is (start + end + 1) / 2 in the whole 128-bit
// space, carrying across the low word.
func TestHashRangeMid(t *testing.T) {
	for _, c := range []struct{ start, end, mid string }{
		{"0", "340282366920938463463374607431768211455", "170141183460469231731687303715884105728"},
		{"0", "0", "0"},
		{"0", "1", "1"},
		{"5", "9", "7"},
		{"18446744073709551615", "18446744073709551616", "18446744073709551616"},
		{"340282366920938463463374607431768211454", "340282366920938463463374607431768211455", "340282366920938463463374607431768211455"},
	} {
		start, err1 := ParseHashKey(c.start)
		end, err2 := ParseHashKey(c.end)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if got := (HashRange{start, end}).Mid().String(); got != c.mid {
			t.Errorf("Mid of [%s, %s] = %s, want %s", c.start, c.end, got, c.mid)
		}
	}
	for _, r := range EvenRanges(7) {
		want := new(big.Int).Add(r.Start.big(), r.End.big())
		want.Add(want, big.NewInt(1)).Rsh(want, 1)
		if got := r.Mid(); got.big().Cmp(want) != 0 || !r.Contains(got) {
			t.Errorf("Mid of [%s, %s] = %s, want %s", r.Start, r.End, got, want)
		}
	}
}

func TestHashPartitionKey(t *testing.T) {
	// MD5 digests read as big-endian unsigned 128-bit integers (computed
	// independently with Python's hashlib).
	cases := []struct{ key, hash string }{
		{"a", "16955237001963240173058271559858726497"},
		{"", "281949768489412648962353822266799178366"},
		{"partition-key", "171922231538597478840392253176536055210"},
	}
	for _, c := range cases {
		if got := HashPartitionKey(c.key).String(); got != c.hash {
			t.Errorf("hash(%q) = %s, want %s", c.key, got, c.hash)
		}
	}
}

func TestParseHashKey(t *testing.T) {
	cases := []struct {
		in string
		ok bool
	}{
		{"0", true}, {"340282366920938463463374607431768211455", true}, {"000000000000000000000000000000000000001", true},
		{"340282366920938463463374607431768211456", false}, {"", false}, {"-1", false}, {"1e5", false}, {" 1", false},
		{"0000000000000000000000000000000000000001", false}, // 40 digits
	}
	for _, c := range cases {
		k, err := ParseHashKey(c.in)
		if (err == nil) != c.ok {
			t.Errorf("ParseHashKey(%q): err %v, want ok=%v", c.in, err, c.ok)
			continue
		}
		if c.ok && k.big().Cmp(bigOf(c.in)) != 0 {
			t.Errorf("ParseHashKey(%q) = %s", c.in, k)
		}
		if !c.ok && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseHashKey(%q): %v is not ErrInvalid", c.in, err)
		}
	}
}

// TestRouting puts records with explicit hash keys at both ends of every
// shard's range and with partition keys, and checks the shard each went to.
func TestRouting(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	defer s.Close()
	in := mustCreate(t, s, "r", 5)
	ctx := context.Background()
	for _, sh := range in.Shards {
		for _, hk := range []HashKey{sh.Range.Start, sh.Range.End} {
			res, err := s.Put(ctx, "r", []PutRecord{{PartitionKey: "ignored", ExplicitHashKey: hk.String(), Data: []byte("x")}})
			if err != nil {
				t.Fatal(err)
			}
			if res[0].ShardID != sh.ID {
				t.Errorf("hash key %s went to %s, want %s", hk, res[0].ShardID, sh.ID)
			}
		}
	}
	for i := 0; i < 200; i++ {
		k := keyFor(i)
		res := putOne(t, s, "r", k, []byte(k))
		h := HashPartitionKey(k)
		for _, sh := range in.Shards {
			if sh.Range.Contains(h) && res.ShardID != sh.ID {
				t.Fatalf("key %q (hash %s) went to %s, want %s", k, h, res.ShardID, sh.ID)
			}
		}
	}
}

func TestSequenceNumbers(t *testing.T) {
	cases := []struct {
		tag   uint64
		shard int
		ctr   uint64
		want  string
	}{
		// Tag 0 (streams created before tags): the numbers they always had.
		{0, 0, 0, "49000000000000000000000000000000000000000000000000000000"},
		{0, 0, 1, "49000000000000000000000000000000000000000000000000000001"},
		{0, 3, 42, "49000000000300000000000000000000000000000000000000000042"},
		{0, 4095, ^uint64(0), "49000000409500000000000000000000000018446744073709551615"},
		{1, 0, 1, "49000000000000000000000100000000000000000000000000000001"},
		{123456789012, 3, 42, "49000000000312345678901200000000000000000000000000000042"},
		{maxSeqTag, 4095, ^uint64(0), "49000000409599999999999900000000000018446744073709551615"},
	}
	for _, c := range cases {
		got := FormatSeq(c.tag, c.shard, c.ctr)
		if got != c.want || len(got) != 56 {
			t.Errorf("FormatSeq(%d, %d, %d) = %s, want %s", c.tag, c.shard, c.ctr, got, c.want)
		}
		if b := AppendSeq([]byte("x"), c.tag, c.shard, c.ctr); string(b) != "x"+c.want {
			t.Errorf("AppendSeq(%d, %d, %d) = %s, want x%s", c.tag, c.shard, c.ctr, b, c.want)
		}
		tag, sh, ctr, err := ParseSeq(got)
		if err != nil || tag != c.tag || sh != c.shard || ctr != c.ctr {
			t.Errorf("ParseSeq(%s) = %d, %d, %d, %v", got, tag, sh, ctr, err)
		}
	}
	// Within a shard, order of counters = order of strings = order of big
	// integers (the KCL compares them as big integers), with or without a
	// tag.
	ctrs := []uint64{1, 2, 9, 10, 99, 100, 12345678901, ^uint64(0) - 1, ^uint64(0)}
	for _, tag := range []uint64{0, 1, 987654321, maxSeqTag} {
		for i := 1; i < len(ctrs); i++ {
			a, b := FormatSeq(tag, 7, ctrs[i-1]), FormatSeq(tag, 7, ctrs[i])
			if !(a < b) || bigOf(a).Cmp(bigOf(b)) >= 0 {
				t.Errorf("%s does not sort before %s", a, b)
			}
		}
	}
	for _, bad := range []string{"", "1", "48000000000000000000000000000000000000000000000000000001",
		"4900000000000000000000000000000000000000000000000000001", "49000000000000000000000000000100000000000000000000000001",
		"4900000000000000000000000000000000000000000000000000000x", "49000000000000000000000000000000018446744073709551616",
		"490000000000000000000000-0000000000000000000000000000001"} {
		if _, _, _, err := ParseSeq(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseSeq(%q): %v, want ErrInvalid", bad, err)
		}
	}
	// A new stream's tag is never 0 and fits its 12 digits.
	for i := 0; i < 1000; i++ {
		if tag := newSeqTag(); tag == 0 || tag > maxSeqTag {
			t.Fatalf("newSeqTag() = %d", tag)
		}
	}
}

// TestSequenceNeverReused: counters keep growing across restarts, also
// when the newest records were the last thing written before Close.
func TestSequenceNeverReused(t *testing.T) {
	mem := vfs.NewMem()
	var last uint64
	for round := 0; round < 4; round++ {
		s := openMem(t, mem, Options{SegmentBytes: 200})
		if round == 0 {
			mustCreate(t, s, "n", 1)
		}
		for i := 0; i < 5; i++ {
			r := putOne(t, s, "n", "k", payload("x", 60))
			if r.Seq <= last {
				t.Fatalf("round %d: counter %d after %d", round, r.Seq, last)
			}
			last = r.Seq
		}
		s.Close()
	}
}

func TestShardIDs(t *testing.T) {
	cases := []struct {
		in string
		n  int
		ok bool
	}{
		{"shardId-000000000000", 0, true}, {"shardId-000000000017", 17, true}, {"17", 17, true},
		{"shardId-17", 0, false}, {"shard-000000000001", 0, false}, {"", 0, false}, {"-1", 0, false},
	}
	for _, c := range cases {
		n, ok := ParseShardID(c.in)
		if ok != c.ok || (ok && n != c.n) {
			t.Errorf("ParseShardID(%q) = %d, %v", c.in, n, ok)
		}
	}
	if ShardID(2) != "shardId-000000000002" {
		t.Errorf("ShardID(2) = %s", ShardID(2))
	}
}

// TestRoutingBatchRuns puts batches holding runs of one partition key,
// explicit hash keys between and inside the runs, and keys that come back
// after others: every record must land on the shard whose range holds its
// hash, and each shard's records keep the batch's order.
func TestRoutingBatchRuns(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	defer s.Close()
	in := mustCreate(t, s, "runs", 7)
	rng := testutil.Rand(t, 0)
	ctx := context.Background()
	for batch := 0; batch < 20; batch++ {
		var recs []PutRecord
		var want []string // the shard each record belongs on
		for len(recs) < 300 {
			key := keyFor(rng.IntN(12))
			for range 1 + rng.IntN(6) {
				r := PutRecord{PartitionKey: key, Data: []byte("x")}
				h := HashPartitionKey(key)
				if rng.IntN(5) == 0 {
					h = HashKey{rng.Uint64(), rng.Uint64()}
					r.ExplicitHashKey = h.String()
				}
				for _, sh := range in.Shards {
					if sh.Range.Contains(h) {
						want = append(want, sh.ID)
					}
				}
				recs = append(recs, r)
			}
		}
		res, err := s.Put(ctx, "runs", recs)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]string, len(res))
		last := map[string]uint64{}
		for i, r := range res {
			got[i] = r.ShardID
			if r.Seq <= last[r.ShardID] {
				t.Fatalf("batch %d record %d: counter %d on %s after %d", batch, i, r.Seq, r.ShardID, last[r.ShardID])
			}
			last[r.ShardID] = r.Seq
		}
		if d := testutil.Diff(want, got); d != "" {
			t.Fatalf("batch %d: records on the wrong shards:\n%s", batch, d)
		}
	}
}

// TestHashPartitionKeyLongKeys: keys of every valid length hash as MD5
// does, and hashing one allocates nothing (routing hashes every record).
func TestHashPartitionKeyLongKeys(t *testing.T) {
	for _, k := range []string{"k", strings.Repeat("u", 32), "123e4567-e89b-12d3-a456-426614174000",
		strings.Repeat("x", MaxKeyLen), strings.Repeat("é", MaxKeyLen), strings.Repeat("😀", MaxKeyLen), strings.Repeat("y", 2000)} {
		sum := md5.Sum([]byte(k))
		want := new(big.Int).SetBytes(sum[:])
		if got := HashPartitionKey(k).big(); got.Cmp(want) != 0 {
			t.Errorf("hash of a %d-byte key = %s, want %s", len(k), got, want)
		}
		if len(k) > MaxKeyLen*utf8.UTFMax {
			continue
		}
		if n := testing.AllocsPerRun(100, func() { HashPartitionKey(k) }); n != 0 {
			t.Errorf("hashing a %d-byte key allocates %v times", len(k), n)
		}
	}
}
