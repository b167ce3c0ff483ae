package kinesis

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/streams"
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

// TestSubscribeToShardSequenceTag: SubscribeToShard's records and
// continuation numbers (heartbeats' too) are the stream's numbers, as
// PutRecord gave them, and a starting number of another stream is refused.
func TestSubscribeToShardSequenceTag(t *testing.T) {
	e := newEnv(t, nil)
	e.create("sub", 1)
	e.create("other", 1)
	arn := e.register("sub", "fan")
	var seqs []string
	for _, s := range []string{"sub", "sub", "other"} {
		out, err := e.client.PutRecord(ctx(t), &sdk.PutRecordInput{StreamName: aws.String(s), PartitionKey: aws.String("k"), Data: []byte(s)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, aws.ToString(out.SequenceNumber))
	}
	// Over h2c, the supported transport for SubscribeToShard (the Go SDK
	// over HTTP/1.1 now and then closes an event stream itself).
	h2 := e.h2cClient(new(atomic.Int32))
	_, err := h2.SubscribeToShard(ctx(t), &sdk.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(seqs[2])}})
	apiErr(t, err, excInvalidArgument, "StartingSequenceNumber "+seqs[2]+" used in GetShardIterator on shard shardId-000000000000 in stream sub under account "+
		e.h.opts.AccountID+" is invalid because it did not come from this stream.")
	st := e.subscribe(h2, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeAtSequenceNumber, SequenceNumber: aws.String(seqs[0])})
	var got []string
	var ev *types.SubscribeToShardEvent
	for len(got) < 2 {
		ev = nextEvent(t, st)
		for _, r := range ev.Records {
			got = append(got, aws.ToString(r.SequenceNumber))
		}
	}
	if len(got) != 2 || got[0] != seqs[0] || got[1] != seqs[1] || aws.ToString(ev.ContinuationSequenceNumber) != seqs[1] {
		t.Fatalf("events gave %v, continuation %s; want %v", got, aws.ToString(ev.ContinuationSequenceNumber), seqs[:2])
	}
	if ev = nextEvent(t, st); len(ev.Records) != 0 || aws.ToString(ev.ContinuationSequenceNumber) != seqs[1] {
		t.Fatalf("heartbeat: %d records, continuation %s, want %s", len(ev.Records), aws.ToString(ev.ContinuationSequenceNumber), seqs[1])
	}
}

// TestSubscriptionEndsWhenStreamRecreated: a subscription whose stream is
// deleted and created again under it ends with ResourceNotFoundException
// and never delivers records of the new stream (it would start them at the
// old stream's counter, skipping the first ones).
func TestSubscriptionEndsWhenStreamRecreated(t *testing.T) {
	e := newEnv(t, nil)
	e.create("gone", 1)
	arn := e.register("gone", "fan")
	put := func(data string) {
		if _, err := e.client.PutRecord(ctx(t), &sdk.PutRecordInput{StreamName: aws.String("gone"), PartitionKey: aws.String("k"), Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	put("old")
	st := e.subscribe(e.h2cClient(new(atomic.Int32)), arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	if ev := nextEvent(t, st); len(ev.Records) != 1 {
		t.Fatalf("first event: %+v", ev)
	}
	if _, err := e.client.DeleteStream(ctx(t), &sdk.DeleteStreamInput{StreamName: aws.String("gone"), EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	e.settle()
	e.create("gone", 1)
	put("new 1")
	put("new 2")
	for ev := range st.Events() {
		if v, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok && len(v.Value.Records) > 0 {
			t.Fatalf("the old subscription delivered %q of the new stream", v.Value.Records[0].Data)
		}
	}
	// The exception the server sends ends the event stream; the SDK does
	// not hand it on as an error (st.Err() is nil).
}

// TestSubscriptionReadsOnlyItsStream: a subscription whose reads come back
// with another sequence tag than its stream had (deleted and created again
// between two reads) sends ResourceNotFoundException for its shard and no
// records; with its own tag it sends the records.
func TestSubscriptionReadsOnlyItsStream(t *testing.T) {
	h, store := storeHandler(t, Options{}, "s", 1)
	res, err := store.Put(context.Background(), "s", []streams.PutRecord{{PartitionKey: "k", Data: []byte("x")}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tag    uint64
		want   string
		absent string
	}{
		{res[0].Tag%999_999_999_999 + 1, "ResourceNotFoundException", "SequenceNumber"},
		{res[0].Tag, res[0].SequenceNumber(), "ResourceNotFoundException"},
	} {
		w := httptest.NewRecorder()
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // the loop reads once and stops at its first wait
		h.streamShard(ctx, &eventWriter{w: w, codec: codecJSON}, iterator{stream: "s", shard: 0, counter: 1, tag: c.tag})
		body := w.Body.Bytes()
		if !bytes.Contains(body, []byte(c.want)) || bytes.Contains(body, []byte(c.absent)) {
			t.Errorf("tag %d: events %q, want %q and no %q", c.tag, body, c.want, c.absent)
		}
	}
}
