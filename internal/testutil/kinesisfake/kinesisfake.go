// Package kinesisfake is an in-process stand-in for a Kinesis stream of
// one shard, for the tests of the clients that write to one (the
// producer, the Kinesis sink): a test that must not count an HTTP
// client's goroutines, or that makes the endpoint fail, wraps it. Only
// tests import it.
package kinesisfake

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// ShardID is the ID of the stream's one shard.
const ShardID = "shardId-000000000000"

// OneShard is a stream of one shard, holding every hash key, that takes
// every record: PutRecords answers each with success and the next
// sequence number (1, 2, ...), and keeps nothing.
type OneShard struct{ seq atomic.Int64 }

// PutRecords answers every record with success.
func (s *OneShard) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	out := &kinesis.PutRecordsOutput{}
	for range in.Records {
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String(ShardID),
			SequenceNumber: aws.String(fmt.Sprint(s.seq.Add(1)))})
	}
	return out, nil
}

// ListShards lists the one shard.
func (s *OneShard) ListShards(context.Context, *kinesis.ListShardsInput, ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return &kinesis.ListShardsOutput{Shards: []types.Shard{{ShardId: aws.String(ShardID),
		HashKeyRange: &types.HashKeyRange{StartingHashKey: aws.String("0"), EndingHashKey: aws.String("340282366920938463463374607431768211455")}}}}, nil
}
