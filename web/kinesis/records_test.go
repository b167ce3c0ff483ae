package kinesis

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"

	"github.com/runnel-dev/runnel/streams"
)

func TestPutAndGetRecords(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	e.create("r", 2)
	name := aws.String("r")
	p, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: name, PartitionKey: aws.String("k"), Data: []byte("first"), ExplicitHashKey: aws.String("0")})
	if err != nil || *p.ShardId != "shardId-000000000000" || len(*p.SequenceNumber) != 56 {
		t.Fatalf("put: %v %+v", err, p)
	}
	p2, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: name, PartitionKey: aws.String("k"), Data: []byte("second"), ExplicitHashKey: aws.String("1"), SequenceNumberForOrdering: p.SequenceNumber})
	if err != nil || *p2.SequenceNumber <= *p.SequenceNumber {
		t.Fatalf("put 2: %v %+v", err, p2)
	}
	var entries []types.PutRecordsRequestEntry
	for i := 0; i < 100; i++ {
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(fmt.Sprint("key", i)), Data: []byte(fmt.Sprint("rec", i))})
	}
	pr, err := e.client.PutRecords(c, &sdk.PutRecordsInput{StreamARN: aws.String(e.h.streamARN("r")), Records: entries})
	if err != nil || *pr.FailedRecordCount != 0 || len(pr.Records) != 100 {
		t.Fatalf("put records: %v %+v", err, pr)
	}
	perShard := map[string]int{}
	for _, r := range pr.Records {
		perShard[*r.ShardId]++
	}
	if len(perShard) != 2 {
		t.Fatalf("100 keys landed on %d shards, want 2", len(perShard))
	}

	// TRIM_HORIZON on shard 0 with a limit: the two explicit records first.
	it, err := e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: name, ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(2)})
	if err != nil || len(g.Records) != 2 || string(g.Records[0].Data) != "first" || string(g.Records[1].Data) != "second" || g.NextShardIterator == nil {
		t.Fatalf("get: %v %+v", err, g)
	}
	if g.Records[0].ApproximateArrivalTimestamp == nil || time.Since(*g.Records[0].ApproximateArrivalTimestamp) > time.Hour {
		t.Fatalf("arrival timestamp %v", g.Records[0].ApproximateArrivalTimestamp)
	}
	// The iterator stays usable: the same call gives the same records.
	again, err := e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(2)})
	if err != nil || *again.Records[0].SequenceNumber != *g.Records[0].SequenceNumber {
		t.Fatalf("reuse: %v", err)
	}
	rest, err := e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: g.NextShardIterator})
	if err != nil || len(rest.Records) != perShard["shardId-000000000000"] || *rest.MillisBehindLatest != 0 || rest.NextShardIterator == nil {
		t.Fatalf("rest: %v %d records", err, len(rest.Records))
	}
	// Caught up: an empty page that still has a next iterator.
	empty, err := e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: rest.NextShardIterator})
	if err != nil || len(empty.Records) != 0 || empty.NextShardIterator == nil {
		t.Fatalf("caught up: %v %+v", err, empty)
	}

	first := g.Records[0].SequenceNumber
	for _, tc := range []struct {
		typ  types.ShardIteratorType
		seq  *string
		ts   *time.Time
		want string
	}{
		{types.ShardIteratorTypeAtSequenceNumber, first, nil, "first"},
		{types.ShardIteratorTypeAfterSequenceNumber, first, nil, "second"},
		{types.ShardIteratorTypeAtTimestamp, nil, aws.Time(time.Now().Add(-time.Hour)), "first"},
		{types.ShardIteratorTypeLatest, nil, nil, "late"},
	} {
		it, err := e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: name, ShardId: aws.String("shardId-000000000000"),
			ShardIteratorType: tc.typ, StartingSequenceNumber: tc.seq, Timestamp: tc.ts})
		if err != nil {
			t.Fatalf("%s: %v", tc.typ, err)
		}
		if tc.typ == types.ShardIteratorTypeLatest {
			if _, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: name, PartitionKey: aws.String("k"), Data: []byte("late"), ExplicitHashKey: aws.String("5")}); err != nil {
				t.Fatal(err)
			}
		}
		g, err := e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it.ShardIterator, Limit: aws.Int32(1)})
		if err != nil || len(g.Records) != 1 || string(g.Records[0].Data) != tc.want {
			t.Fatalf("%s: %v, want %q, got %+v", tc.typ, err, tc.want, g.Records)
		}
	}
}

func TestIteratorErrors(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	e.create("a", 2)
	e.create("b", 1)
	shard0 := aws.String("shardId-000000000000")
	p, _ := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("a"), PartitionKey: aws.String("k"), Data: []byte("x"), ExplicitHashKey: aws.String("0")})

	_, err := e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("a"), ShardId: aws.String("shardId-000000000009"), ShardIteratorType: types.ShardIteratorTypeLatest})
	apiErr(t, err, "ResourceNotFoundException", "Shard shardId-000000000009 in stream a under account 000000000000 does not exist")
	_, err = e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("a"), ShardId: shard0, ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber})
	apiErr(t, err, "InvalidArgumentException", "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified AT_SEQUENCE_NUMBER and no StartingSequenceNumber.")
	_, err = e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("a"), ShardId: aws.String("shardId-000000000001"), ShardIteratorType: types.ShardIteratorTypeAtSequenceNumber, StartingSequenceNumber: p.SequenceNumber})
	apiErr(t, err, "InvalidArgumentException", "Invalid StartingSequenceNumber. It encodes shardId-000000000000, while it was used in a call to a shard with shardId-000000000001")
	_, err = e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("a"), ShardId: shard0, ShardIteratorType: types.ShardIteratorTypeAtTimestamp})
	apiErr(t, err, "InvalidArgumentException", "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.")
	_, err = e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("nope"), ShardId: shard0, ShardIteratorType: types.ShardIteratorTypeLatest})
	// AWS names the shard, not the stream, when GetShardIterator cannot
	// find the stream; shard IDs are normalised ("foo-0" is shard 0).
	apiErr(t, err, "ResourceNotFoundException", "Shard shardId-000000000000 in stream nope under account 000000000000 does not exist")
	_, err = e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("a"), ShardId: aws.String("foo-9"), ShardIteratorType: types.ShardIteratorTypeLatest})
	apiErr(t, err, "ResourceNotFoundException", "Shard shardId-000000000009 in stream a under account 000000000000 does not exist")
	_, err = e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("nope"), ShardId: aws.String("2.14E4"), ShardIteratorType: types.ShardIteratorTypeLatest})
	apiErr(t, err, "ResourceNotFoundException", "Could not find shard 2.14E4 in stream nope under account 000000000000.")

	it, err := e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("a"), ShardId: shard0, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	// An iterator of stream a cannot read stream b.
	_, err = e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it.ShardIterator, StreamARN: aws.String(e.h.streamARN("b"))})
	apiErr(t, err, "InvalidArgumentException", "")
	// A tampered iterator is invalid.
	bad := []byte(*it.ShardIterator)
	bad[10] ^= 1
	_, err = e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: aws.String(string(bad))})
	apiErr(t, err, "InvalidArgumentException", "Invalid ShardIterator.")
	// Usable for five minutes, then expired.
	e.clock.Advance(4 * time.Minute)
	if _, err := e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it.ShardIterator}); err != nil {
		t.Fatalf("iterator at 4 minutes: %v", err)
	}
	e.clock.Advance(2 * time.Minute)
	_, err = e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it.ShardIterator})
	apiErr(t, err, "ExpiredIteratorException", "")
	if _, ae := err.(interface{ ErrorMessage() string }); ae && !strings.Contains(err.Error(), "tolerated delay of 300000 milliseconds") {
		t.Fatalf("expired message: %v", err)
	}
	// A deleted and recreated stream does not honour old iterators.
	it, _ = e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("b"), ShardId: shard0, ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	e.client.DeleteStream(c, &sdk.DeleteStreamInput{StreamName: aws.String("b")})
	e.clock.Advance(time.Second)
	e.create("b", 1)
	_, err = e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it.ShardIterator})
	apiErr(t, err, "ResourceNotFoundException", "")
}

func TestPutRecordsValidation(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	e.create("p", 1)
	recs := make([]types.PutRecordsRequestEntry, 501)
	for i := range recs {
		recs[i] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("x")}
	}
	_, err := e.client.PutRecords(c, &sdk.PutRecordsInput{StreamName: aws.String("p"), Records: recs})
	// AWS prints the whole list, each entry as Java prints an object.
	apiErr(t, err, "ValidationException", "")
	var ae smithy.APIError
	errors.As(err, &ae)
	if m := ae.ErrorMessage(); !strings.HasPrefix(m, "1 validation error detected: Value '[com.amazonaws.kinesis.v20131202.PutRecordsRequestEntry@") ||
		!strings.HasSuffix(m, "]' at 'records' failed to satisfy constraint: Member must have length less than or equal to 500") {
		t.Fatalf("501 records: %q", m)
	}
	_, err = e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("p"), PartitionKey: aws.String("k"), Data: make([]byte, 1<<20+1)})
	apiErr(t, err, "ValidationException", "1 validation error detected: Value 'java.nio.HeapByteBuffer[pos=0 lim=1048577 cap=1048577]' at 'data' failed to satisfy constraint: Member must have length less than or equal to 1048576")
	_, err = e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("p"), PartitionKey: aws.String("k"), Data: []byte("x"), ExplicitHashKey: aws.String("340282366920938463463374607431768211456")})
	apiErr(t, err, "InvalidArgumentException", "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was 340282366920938463463374607431768211456")
}

func TestShardLimitsThrottle(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.ShardLimits = true })
	c := ctx(t)
	e.create("lim", 1)
	e.clock.Freeze() // no refill: exactly the burst passes
	failed := 0
	for i := 0; i < 3; i++ {
		recs := make([]types.PutRecordsRequestEntry, 500)
		for j := range recs {
			recs[j] = types.PutRecordsRequestEntry{PartitionKey: aws.String("k"), Data: []byte("x")}
		}
		out, err := e.client.PutRecords(c, &sdk.PutRecordsInput{StreamName: aws.String("lim"), Records: recs})
		if err != nil {
			t.Fatal(err)
		}
		failed += int(*out.FailedRecordCount)
		for _, r := range out.Records {
			if r.ErrorCode != nil && (*r.ErrorCode != "ProvisionedThroughputExceededException" || !strings.HasPrefix(*r.ErrorMessage, "Rate exceeded for shard shardId-000000000000 in stream lim")) {
				t.Fatalf("per-record error %s: %s", *r.ErrorCode, *r.ErrorMessage)
			}
		}
	}
	// 1,500 records against a burst of 1,000 with the clock stopped.
	if failed != 500 {
		t.Fatalf("%d of 1500 records throttled, want the excess over 1000/s", failed)
	}
	it, _ := e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("lim"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeLatest})
	var gerr error
	for i := 0; i < 10 && gerr == nil; i++ {
		_, gerr = e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it.ShardIterator})
	}
	apiErr(t, gerr, "ProvisionedThroughputExceededException", "")
	lim, _ := e.client.DescribeLimits(c, &sdk.DescribeLimitsInput{})
	if *lim.ShardLimit != 500 {
		t.Fatalf("shard limit %d", *lim.ShardLimit)
	}
	_, err := e.client.CreateStream(c, &sdk.CreateStreamInput{StreamName: aws.String("big"), ShardCount: aws.Int32(500)})
	apiErr(t, err, "LimitExceededException", "")
}

// TestStreamRecreatedAroundTheAPI: a stream deleted and created again
// through the store itself (the REST API, the CLI) serves new iterators at
// once, though the API had cached the old stream's facts.
func TestStreamRecreatedAroundTheAPI(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	e.create("x", 1)
	if _, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("x"), PartitionKey: aws.String("k"), Data: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	if err := e.store.DeleteStream("x"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Millisecond)
	if _, err := e.store.CreateStream("x", 1, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("x"), PartitionKey: aws.String("k"), Data: []byte("new")}); err != nil {
		t.Fatal(err)
	}
	it, err := e.client.GetShardIterator(c, &sdk.GetShardIteratorInput{StreamName: aws.String("x"), ShardId: aws.String("shardId-000000000000"), ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.client.GetRecords(c, &sdk.GetRecordsInput{ShardIterator: it.ShardIterator})
	if err != nil || len(g.Records) != 1 || string(g.Records[0].Data) != "new" {
		t.Fatalf("recreated stream: %v %+v", err, g)
	}
}
