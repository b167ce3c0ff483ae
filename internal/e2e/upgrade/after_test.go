package upgrade

import (
	"fmt"
	"math/big"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// checkSeeks checks that the sequence numbers an earlier binary gave are
// still positions in their shards: AT_SEQUENCE_NUMBER starts at the record,
// AFTER_SEQUENCE_NUMBER after it.
func checkSeeks(t *testing.T, a *api, e *Expect) {
	for _, s := range []string{"plain", "resharded", "tagged"} {
		for shard, recs := range e.Records[s] {
			if len(recs) < 2 {
				continue
			}
			mid := recs[len(recs)/2]
			for typ, want := range map[string]Rec{"AT_SEQUENCE_NUMBER": mid, "AFTER_SEQUENCE_NUMBER": recs[len(recs)/2+1]} {
				st, out := a.kinesisTry("GetShardIterator", map[string]any{"StreamName": s, "ShardId": shard,
					"ShardIteratorType": typ, "StartingSequenceNumber": mid.Seq})
				if st != 200 {
					t.Errorf("stream %s shard %s: GetShardIterator %s %s of the earlier binary: %d %v", s, shard, typ, mid.Seq, st, out)
					continue
				}
				got := a.kinesis("GetRecords", map[string]any{"ShardIterator": out["ShardIterator"], "Limit": 1})
				rs, _ := got["Records"].([]any)
				if len(rs) != 1 || rs[0].(map[string]any)["SequenceNumber"] != want.Seq {
					t.Errorf("stream %s shard %s: %s %s reads %v, want %s", s, shard, typ, mid.Seq, rs, want.Seq)
				}
			}
		}
	}
}

// checkOldIterator checks that a shard iterator of the earlier binary
// either reads from where it pointed or has expired (ExpiredIteratorException,
// as an AWS iterator after 5 minutes), nothing else.
func checkOldIterator(t *testing.T, a *api, e *Expect) {
	if e.Iterator == "" {
		return
	}
	st, out := a.kinesisTry("GetRecords", map[string]any{"ShardIterator": e.Iterator, "Limit": 1})
	want := e.Records["plain"]["shardId-000000000000"][2].Seq
	switch rs, _ := out["Records"].([]any); {
	case st == 400 && out["__type"] == "ExpiredIteratorException":
	case st == 200 && len(rs) == 1 && rs[0].(map[string]any)["SequenceNumber"] == want:
	default:
		t.Errorf("GetRecords with an iterator of the earlier binary: %d %v; want ExpiredIteratorException or record %s", st, out, want)
	}
}

// checkCover checks that the open shards of stream cover the hash-key range
// once, without gaps or overlaps.
func checkCover(t *testing.T, a *api, stream string) {
	type span struct{ lo, hi *big.Int }
	var open []span
	for _, s := range a.shards(stream) {
		m := s.(map[string]any)
		if m["SequenceNumberRange"].(map[string]any)["EndingSequenceNumber"] != nil {
			continue
		}
		r := m["HashKeyRange"].(map[string]any)
		lo, _ := new(big.Int).SetString(r["StartingHashKey"].(string), 10)
		hi, _ := new(big.Int).SetString(r["EndingHashKey"].(string), 10)
		open = append(open, span{lo, hi})
	}
	slices.SortFunc(open, func(x, y span) int { return x.lo.Cmp(y.lo) })
	next := new(big.Int)
	for _, sp := range open {
		if sp.lo.Cmp(next) != 0 {
			t.Errorf("stream %s: open shards %v leave a gap or overlap at %s", stream, open, next)
			return
		}
		next = new(big.Int).Add(sp.hi, big.NewInt(1))
	}
	if full := new(big.Int).Lsh(big.NewInt(1), 128); next.Cmp(full) != 0 {
		t.Errorf("stream %s: open shards end at %s, not 2^128", stream, next)
	}
}

// checkIncreasing checks that each shard's sequence numbers increase, the
// ones the current binary gave after the earlier binary's.
func checkIncreasing(t *testing.T, a *api, stream string) {
	for shard, recs := range a.records(stream) {
		prev := new(big.Int)
		for i, r := range recs {
			n, ok := new(big.Int).SetString(r.Seq, 10)
			if !ok || n.Cmp(prev) <= 0 {
				t.Errorf("stream %s shard %s record %d: sequence number %s after %s", stream, shard, i, r.Seq, prev)
				break
			}
			prev = n
		}
	}
}

// reshapeAfter reshards a stream of the earlier binary, deletes another
// and creates it again, and puts records to both.
func reshapeAfter(t *testing.T, a *api) {
	sh := a.shards("plain")[0].(map[string]any)["HashKeyRange"].(map[string]any)
	a.kinesis("SplitShard", map[string]any{"StreamName": "plain", "ShardToSplit": "shardId-000000000000",
		"NewStartingHashKey": midpoint(t, sh["StartingHashKey"].(string), sh["EndingHashKey"].(string))})
	waitActive(t, a, "plain")
	putN(t, a, "plain", 1000, 30)
	checkIncreasing(t, a, "plain")
	if n := len(a.shards("plain")); n != 5 {
		t.Errorf("plain after a split: %d shards, want 5", n)
	}

	a.kinesis("DeleteStream", map[string]any{"StreamName": "tagged"})
	if !testutil.Within(60*time.Second, func() bool {
		st, _ := a.kinesisTry("DescribeStreamSummary", map[string]any{"StreamName": "tagged"})
		return st == 400
	}) {
		t.Fatal("stream tagged was not deleted")
	}
	a.kinesis("CreateStream", map[string]any{"StreamName": "tagged", "ShardCount": 1})
	waitActive(t, a, "tagged")
	putN(t, a, "tagged", 500, 3)
	checkNewTagged(t, a)
}

// checkNewTagged checks that the stream tagged, deleted and created again
// by the current binary, has only its own records and none of the tags
// and retention of the earlier one.
func checkNewTagged(t *testing.T, a *api) {
	recs := a.records("tagged")
	var data []string
	for _, rs := range recs {
		for _, r := range rs {
			data = append(data, string(decodeB64(t, r.Data)))
		}
	}
	if want := fmt.Sprint([]string{putData("tagged", 500), putData("tagged", 501), putData("tagged", 502)}); fmt.Sprint(data) != want {
		t.Errorf("the re-created stream tagged holds %v", data)
	}
	tags, _ := a.kinesis("ListTagsForStream", map[string]any{"StreamName": "tagged"})["Tags"].([]any)
	sum := a.kinesis("DescribeStreamSummary", map[string]any{"StreamName": "tagged"})["StreamDescriptionSummary"].(map[string]any)
	if len(tags) != 0 || fmt.Sprint(sum["RetentionPeriodHours"]) != "24" {
		t.Errorf("the re-created stream tagged has tags %v and retention %v", tags, sum["RetentionPeriodHours"])
	}
}

// checkRestart kills the current binary (SIGKILL) and starts it again:
// what it held before is there again, nothing more for the streams no job
// writes, and the deleted streams stay deleted.
func checkRestart(t *testing.T, srv *testbin.Server, a *api, e *Expect) {
	before := map[string]map[string][]Rec{}
	names := a.streamNames()
	for _, s := range names {
		before[s] = a.records(s)
	}
	srv.Kill()
	srv.Start()
	if got := a.streamNames(); fmt.Sprint(got) != fmt.Sprint(names) {
		t.Errorf("streams after a second restart: %v, before it: %v", got, names)
	}
	for _, s := range e.Gone {
		if st, _ := a.kinesisTry("DescribeStreamSummary", map[string]any{"StreamName": s}); st != 400 {
			t.Errorf("deleted stream %s after a second restart: DescribeStreamSummary answers %d", s, st)
		}
	}
	checkNewTagged(t, a)
	for _, s := range []string{"plain", "resharded", "clicks", "idle-in"} {
		got := a.records(s)
		for shard, want := range before[s] {
			if fmt.Sprint(got[shard]) != fmt.Sprint(want) {
				t.Errorf("stream %s shard %s after a second restart: %d records, %d before it (or others)", s, shard, len(got[shard]), len(want))
			}
		}
	}
}
