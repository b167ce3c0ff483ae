package testsrv

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// KinesisRecord is one record read back through the Kinesis API.
type KinesisRecord struct {
	Shard, Seq, Key string
	Data            []byte
}

// ReadKinesis reads every record of every shard of stream (closed ones
// included) through c, from the trim horizon to the shard's current end,
// shard by shard in order of shard id. A GetRecords that fails is tried
// again with the same iterator, up to 50 times 200 ms apart: reads are
// throttled under --shard-limits, and a loaded machine cuts calls short.
func ReadKinesis(t testing.TB, c *kinesis.Client, stream string) []KinesisRecord {
	t.Helper()
	ctx := context.Background()
	var shards []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		out, err := c.ListShards(ctx, in)
		if err != nil {
			t.Fatalf("list shards: %v", err)
		}
		shards = append(shards, out.Shards...)
		if out.NextToken == nil {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: out.NextToken}
	}
	sort.Slice(shards, func(i, j int) bool { return *shards[i].ShardId < *shards[j].ShardId })
	var recs []KinesisRecord
	for _, sh := range shards {
		it, err := c.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String(stream),
			ShardId: sh.ShardId, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
		if err != nil {
			t.Fatalf("shard iterator %s: %v", *sh.ShardId, err)
		}
		iter := it.ShardIterator
		for iter != nil && *iter != "" {
			var out *kinesis.GetRecordsOutput
			var err error
			for try := 0; try < 50; try++ {
				out, err = c.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(10000)})
				if err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("get records %s: %v", *sh.ShardId, err)
			}
			for _, r := range out.Records {
				recs = append(recs, KinesisRecord{Shard: *sh.ShardId, Seq: *r.SequenceNumber, Key: *r.PartitionKey, Data: r.Data})
			}
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return recs
}
