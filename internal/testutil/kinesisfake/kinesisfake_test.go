package kinesisfake

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

func TestOneShardNumbersEveryRecord(t *testing.T) {
	var s OneShard
	ctx := context.Background()
	for _, want := range [][]string{{"1", "2"}, {"3"}} {
		in := &kinesis.PutRecordsInput{}
		for range want {
			in.Records = append(in.Records, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("d")})
		}
		out, err := s.PutRecords(ctx, in)
		if err != nil || len(out.Records) != len(want) {
			t.Fatalf("PutRecords: %+v %v", out, err)
		}
		for i, r := range out.Records {
			if aws.ToString(r.ShardId) != ShardID || aws.ToString(r.SequenceNumber) != want[i] || r.ErrorCode != nil {
				t.Fatalf("record %d answered %+v, want sequence number %s on %s", i, r, want[i], ShardID)
			}
		}
	}
	ls, err := s.ListShards(ctx, &kinesis.ListShardsInput{})
	if err != nil || len(ls.Shards) != 1 || aws.ToString(ls.Shards[0].ShardId) != ShardID || aws.ToString(ls.Shards[0].HashKeyRange.StartingHashKey) != "0" {
		t.Fatalf("ListShards: %+v %v", ls, err)
	}
}
