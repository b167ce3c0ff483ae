package kinesis

import (
	"fmt"
	"math/big"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// listAll pages through ListShards with a filter.
func (e *env) listAll(name string, f *types.ShardFilter, page int32) []types.Shard {
	e.t.Helper()
	var out []types.Shard
	in := &sdk.ListShardsInput{StreamName: aws.String(name), ShardFilter: f, MaxResults: aws.Int32(page)}
	for {
		res, err := e.client.ListShards(ctx(e.t), in)
		if err != nil {
			e.t.Fatalf("list shards: %v", err)
		}
		out = append(out, res.Shards...)
		if res.NextToken == nil {
			return out
		}
		in = &sdk.ListShardsInput{NextToken: res.NextToken, MaxResults: aws.Int32(page)}
	}
}

// checkCover asserts the open shards' hash ranges tile [0, 2^128−1].
func checkCover(t *testing.T, shards []types.Shard) {
	t.Helper()
	var open []types.Shard
	for _, s := range shards {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, s)
		}
	}
	key := func(s *string) *big.Int { b, _ := new(big.Int).SetString(*s, 10); return b }
	sort.Slice(open, func(i, j int) bool {
		return key(open[i].HashKeyRange.StartingHashKey).Cmp(key(open[j].HashKeyRange.StartingHashKey)) < 0
	})
	next := big.NewInt(0)
	for _, s := range open {
		if key(s.HashKeyRange.StartingHashKey).Cmp(next) != 0 {
			t.Fatalf("open shards leave a gap or overlap at %s: %+v", next, open)
		}
		next = new(big.Int).Add(key(s.HashKeyRange.EndingHashKey), big.NewInt(1))
	}
	if next.Cmp(new(big.Int).Lsh(big.NewInt(1), 128)) != 0 {
		t.Fatalf("open shards end at %s, not 2^128", next)
	}
}

func TestReshardAsKCLSeesIt(t *testing.T) {
	e := newEnvWith(t, slowStatus, nil)
	c := ctx(t)
	e.create("k", 2)
	name := aws.String("k")
	put := func(tag string, n int) {
		for i := 0; i < n; i++ {
			if _, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: name, PartitionKey: aws.String(fmt.Sprint(tag, i)), Data: []byte(tag)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	put("before", 20)
	if _, err := e.client.SplitShard(c, &sdk.SplitShardInput{StreamName: name, ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("85070591730234615865843651857942052864")}); err != nil {
		t.Fatal(err)
	}
	sum, _ := e.client.DescribeStreamSummary(c, &sdk.DescribeStreamSummaryInput{StreamName: name})
	if sum.StreamDescriptionSummary.StreamStatus != types.StreamStatusUpdating {
		t.Fatalf("status after split %s, want UPDATING", sum.StreamDescriptionSummary.StreamStatus)
	}
	_, err := e.client.SplitShard(c, &sdk.SplitShardInput{StreamName: name, ShardToSplit: aws.String("shardId-000000000001"), NewStartingHashKey: aws.String("300000000000000000000000000000000000000")})
	apiErr(t, err, "ResourceInUseException", "Stream k under account 000000000000 not ACTIVE, instead in state UPDATING")
	e.waitStatus("k", types.StreamStatusActive)
	_, err = e.client.SplitShard(c, &sdk.SplitShardInput{StreamName: name, ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("5")})
	apiErr(t, err, "ResourceInUseException", "")
	// Children took the next free indexes.
	all := e.listAll("k", nil, 2)
	if len(all) != 4 || *all[2].ShardId != "shardId-000000000002" || *all[3].ParentShardId != "shardId-000000000000" {
		t.Fatalf("after split: %+v", all)
	}
	checkCover(t, all)
	put("after", 20)

	_, err = e.client.MergeShards(c, &sdk.MergeShardsInput{StreamName: name, ShardToMerge: aws.String("shardId-000000000002"), AdjacentShardToMerge: aws.String("shardId-000000000001")})
	apiErr(t, err, "InvalidArgumentException", "Shards shardId-000000000002 and shardId-000000000001 in stream k under account 000000000000 are not an adjacent pair of shards eligible for merging")
	if _, err := e.client.MergeShards(c, &sdk.MergeShardsInput{StreamName: name, ShardToMerge: aws.String("shardId-000000000003"), AdjacentShardToMerge: aws.String("shardId-000000000001")}); err != nil {
		t.Fatal(err)
	}
	e.waitStatus("k", types.StreamStatusActive)
	all = e.listAll("k", nil, 1000)
	checkCover(t, all)
	if m := all[len(all)-1]; *m.ShardId != "shardId-000000000004" || *m.AdjacentParentShardId == "" {
		t.Fatalf("merge child: %+v", m)
	}
	put("merged", 10)

	// Filters.
	if n := len(e.listAll("k", &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, 1000)); n != 2 {
		t.Fatalf("AT_LATEST: %d shards, want 2", n)
	}
	if n := len(e.listAll("k", &types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}, 1)); n != 5 {
		t.Fatalf("FROM_TRIM_HORIZON: %d shards, want 5 (closed shards in retention included)", n)
	}
	if n := len(e.listAll("k", &types.ShardFilter{Type: types.ShardFilterTypeAtTrimHorizon}, 1000)); n != 2 {
		t.Fatalf("AT_TRIM_HORIZON: %d shards, want the 2 original", n)
	}
	if s := e.listAll("k", &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId, ShardId: aws.String("shardId-000000000002")}, 1000); len(s) != 2 {
		t.Fatalf("AFTER_SHARD_ID: %+v", s)
	}
	if n := len(e.listAll("k", &types.ShardFilter{Type: types.ShardFilterTypeAtTimestamp, Timestamp: aws.Time(time.Now().Add(-time.Hour))}, 1000)); n != 2 {
		t.Fatalf("AT_TIMESTAMP before creation: %d, want 2", n)
	}
	if n := len(e.listAll("k", &types.ShardFilter{Type: types.ShardFilterTypeFromTimestamp, Timestamp: aws.Time(e.clock.Now().Add(time.Minute))}, 1000)); n != 2 {
		t.Fatalf("FROM_TIMESTAMP in the future: %d, want the 2 open", n)
	}
	_, err = e.client.ListShards(c, &sdk.ListShardsInput{StreamName: name, NextToken: aws.String("x")})
	apiErr(t, err, "InvalidArgumentException", "NextToken and StreamName cannot be provided together.")
	_, err = e.client.ListShards(c, &sdk.ListShardsInput{StreamName: name, ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAfterShardId}})
	apiErr(t, err, "InvalidArgumentException", "")

	// Read as the KCL does: a shard only after its parents are drained,
	// following ChildShards; each record exactly once, parents first.
	done := map[string]bool{}
	var got []string
	queue := []string{"shardId-000000000000", "shardId-000000000001"}
	parents := map[string][]string{}
	for _, s := range all {
		if s.ParentShardId != nil {
			parents[*s.ShardId] = append(parents[*s.ShardId], *s.ParentShardId)
		}
		if s.AdjacentParentShardId != nil {
			parents[*s.ShardId] = append(parents[*s.ShardId], *s.AdjacentParentShardId)
		}
	}
	for len(queue) > 0 {
		id := queue[0]
		queue = queue[1:]
		if done[id] {
			continue
		}
		for _, p := range parents[id] {
			if !done[p] {
				t.Fatalf("%s reached before its parent %s was drained", id, p)
			}
		}
		it, err := e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: name, ShardId: aws.String(id), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatal(err)
		}
		iter := it.ShardIterator
		for iter != nil {
			g, err := e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: iter})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range g.Records {
				got = append(got, string(r.Data))
			}
			if g.NextShardIterator == nil {
				if len(g.ChildShards) == 0 {
					t.Fatalf("closed shard %s ended without ChildShards", id)
				}
				for _, ch := range g.ChildShards {
					if len(ch.ParentShards) == 0 || ch.HashKeyRange == nil {
						t.Fatalf("child shard without lineage: %+v", ch)
					}
					ready := true
					for _, p := range ch.ParentShards {
						if p != id && !done[p] {
							ready = false
						}
					}
					if ready {
						queue = append(queue, *ch.ShardId)
					}
				}
				break
			}
			if len(g.Records) == 0 {
				break // an open shard, caught up
			}
			iter = g.NextShardIterator
		}
		done[id] = true
	}
	if len(got) != 50 {
		t.Fatalf("read %d records, want 50", len(got))
	}
	seen := map[string]int{}
	for _, d := range got {
		seen[d]++
	}
	if seen["before"] != 20 || seen["after"] != 20 || seen["merged"] != 10 {
		t.Fatalf("records by phase: %v", seen)
	}

	// UpdateShardCount reshapes the open shards evenly.
	out, err := e.client.UpdateShardCount(c, &sdk.UpdateShardCountInput{StreamName: name, TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil || *out.CurrentShardCount != 2 || *out.TargetShardCount != 4 {
		t.Fatalf("update shard count: %v %+v", err, out)
	}
	e.waitStatus("k", types.StreamStatusActive)
	open := e.listAll("k", &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}, 1000)
	if len(open) != 4 {
		t.Fatalf("%d open shards after UpdateShardCount(4)", len(open))
	}
	checkCover(t, open)
	_, err = e.client.UpdateShardCount(c, &sdk.UpdateShardCountInput{StreamName: name, TargetShardCount: aws.Int32(9), ScalingType: types.ScalingTypeUniformScaling})
	apiErr(t, err, "LimitExceededException", "")
}
