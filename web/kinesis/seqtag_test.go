package kinesis

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// TestSequenceNumberOfRecreatedStream: a stream deleted and created again
// under the same name issues other sequence numbers than the old one for
// the same counters, and GetShardIterator refuses a number of the old one
// as AWS does, instead of taking it as a position in the new stream (a
// consumer resuming from its checkpoint would silently skip the new
// stream's first records).
func TestSequenceNumberOfRecreatedStream(t *testing.T) {
	e := newEnv(t, nil)
	put := func(n int) []string {
		var recs []types.PutRecordsRequestEntry
		for i := 0; i < n; i++ {
			recs = append(recs, types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte(fmt.Sprint(i))})
		}
		out, err := e.client.PutRecords(ctx(t), &sdk.PutRecordsInput{StreamName: aws.String("re"), Records: recs})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put: %v %+v", err, out)
		}
		var seqs []string
		for _, r := range out.Records {
			seqs = append(seqs, aws.ToString(r.SequenceNumber))
		}
		return seqs
	}
	iter := func(typ types.ShardIteratorType, seq string) (string, error) {
		out, err := e.client.GetShardIterator(ctx(t), &sdk.GetShardIteratorInput{StreamName: aws.String("re"),
			ShardId: aws.String("shardId-000000000000"), ShardIteratorType: typ, StartingSequenceNumber: aws.String(seq)})
		if err != nil {
			return "", err
		}
		return aws.ToString(out.ShardIterator), nil
	}
	e.create("re", 1)
	old := put(3)
	if _, err := e.client.DeleteStream(ctx(t), &sdk.DeleteStreamInput{StreamName: aws.String("re")}); err != nil {
		t.Fatal(err)
	}
	e.settle()
	e.create("re", 1)
	fresh := put(3)
	for i := range old {
		if old[i] == fresh[i] {
			t.Fatalf("record %d of the old and of the new stream share sequence number %s", i, old[i])
		}
	}
	for _, typ := range []types.ShardIteratorType{types.ShardIteratorTypeAfterSequenceNumber, types.ShardIteratorTypeAtSequenceNumber} {
		_, err := iter(typ, old[0])
		apiErr(t, err, excInvalidArgument, "StartingSequenceNumber "+old[0]+" used in GetShardIterator on shard shardId-000000000000 in stream re under account "+
			e.h.opts.AccountID+" is invalid because it did not come from this stream.")
	}
	// The new stream's numbers work, and GetRecords and the shard's
	// range give numbers of the new stream.
	it, err := iter(types.ShardIteratorTypeAfterSequenceNumber, fresh[0])
	if err != nil {
		t.Fatal(err)
	}
	recs, err := e.client.GetRecords(ctx(t), &sdk.GetRecordsInput{ShardIterator: aws.String(it)})
	if err != nil || len(recs.Records) != 2 || aws.ToString(recs.Records[0].SequenceNumber) != fresh[1] || aws.ToString(recs.Records[1].SequenceNumber) != fresh[2] {
		t.Fatalf("read after %s: %v %+v, want %v", fresh[0], err, recs, fresh[1:])
	}
	ls, err := e.client.ListShards(ctx(t), &sdk.ListShardsInput{StreamName: aws.String("re")})
	if err != nil {
		t.Fatal(err)
	}
	start := aws.ToString(ls.Shards[0].SequenceNumberRange.StartingSequenceNumber)
	if start[:24] != fresh[0][:24] || strings.Trim(start[24:], "0") != "" || start == old[0][:24]+start[24:] {
		t.Fatalf("starting sequence number %s does not carry the tag of %s (old stream: %s)", start, fresh[0], old[0])
	}
}
