package kinesis

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"golang.org/x/net/http2"
)

// register adds a consumer and waits until it is ACTIVE.
func (e *env) register(stream, name string) string {
	e.t.Helper()
	out, err := e.client.RegisterStreamConsumer(ctx(e.t), &sdk.RegisterStreamConsumerInput{StreamARN: aws.String(e.h.streamARN(stream)), ConsumerName: aws.String(name)})
	if err != nil {
		e.t.Fatalf("register: %v", err)
	}
	e.settle()
	for i := 0; i < 500; i++ {
		d, err := e.client.DescribeStreamConsumer(ctx(e.t), &sdk.DescribeStreamConsumerInput{ConsumerARN: out.Consumer.ConsumerARN})
		if err != nil {
			e.t.Fatal(err)
		}
		if d.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive {
			return *out.Consumer.ConsumerARN
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.t.Fatal("consumer never became ACTIVE")
	return ""
}

func TestConsumers(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.CreateDelay = slowStatus })
	c := ctx(t)
	e.create("cs", 1)
	sarn := aws.String(e.h.streamARN("cs"))
	out, err := e.client.RegisterStreamConsumer(c, &sdk.RegisterStreamConsumerInput{StreamARN: sarn, ConsumerName: aws.String("app1")})
	if err != nil || out.Consumer.ConsumerStatus != types.ConsumerStatusCreating {
		t.Fatalf("register: %v %+v", err, out)
	}
	_, err = e.client.RegisterStreamConsumer(c, &sdk.RegisterStreamConsumerInput{StreamARN: sarn, ConsumerName: aws.String("app1")})
	apiErr(t, err, "ResourceInUseException", "")
	for _, n := range []string{"app3", "app2"} {
		e.register("cs", n)
	}
	var names []string
	in := &sdk.ListStreamConsumersInput{StreamARN: sarn, MaxResults: aws.Int32(2)}
	for {
		l, err := e.client.ListStreamConsumers(c, in)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range l.Consumers {
			names = append(names, *x.ConsumerName)
		}
		if l.NextToken == nil {
			break
		}
		in = &sdk.ListStreamConsumersInput{StreamARN: sarn, NextToken: l.NextToken, MaxResults: aws.Int32(2)}
	}
	if !sort.StringsAreSorted(names) || len(names) != 3 {
		t.Fatalf("consumers %v", names)
	}
	d, err := e.client.DescribeStreamConsumer(c, &sdk.DescribeStreamConsumerInput{StreamARN: sarn, ConsumerName: aws.String("app1")})
	if err != nil || *d.ConsumerDescription.StreamARN != *sarn || *d.ConsumerDescription.ConsumerARN != *out.Consumer.ConsumerARN {
		t.Fatalf("describe consumer: %v %+v", err, d)
	}
	if _, err := e.client.TagResource(c, &sdk.TagResourceInput{ResourceARN: out.Consumer.ConsumerARN, Tags: map[string]string{"team": "x"}}); err != nil {
		t.Fatal(err)
	}
	lt, err := e.client.ListTagsForResource(c, &sdk.ListTagsForResourceInput{ResourceARN: out.Consumer.ConsumerARN})
	if err != nil || len(lt.Tags) != 1 || *lt.Tags[0].Value != "x" {
		t.Fatalf("consumer tags: %v %+v", err, lt)
	}
	sum, _ := e.client.DescribeStreamSummary(c, &sdk.DescribeStreamSummaryInput{StreamARN: sarn})
	if *sum.StreamDescriptionSummary.ConsumerCount != 3 {
		t.Fatalf("consumer count %d", *sum.StreamDescriptionSummary.ConsumerCount)
	}
	_, err = e.client.DeleteStream(c, &sdk.DeleteStreamInput{StreamARN: sarn})
	apiErr(t, err, "ResourceInUseException", "")
	if _, err := e.client.DeregisterStreamConsumer(c, &sdk.DeregisterStreamConsumerInput{ConsumerARN: out.Consumer.ConsumerARN}); err != nil {
		t.Fatal(err)
	}
	_, err = e.client.DescribeStreamConsumer(c, &sdk.DescribeStreamConsumerInput{ConsumerARN: out.Consumer.ConsumerARN})
	apiErr(t, err, "ResourceNotFoundException", "")
	if _, err := e.client.DeleteStream(c, &sdk.DeleteStreamInput{StreamARN: sarn, EnforceConsumerDeletion: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
}

// h2cClient is an SDK client speaking cleartext HTTP/2 to a server wrapped
// in H2C; proto records the protocol of each request.
func (e *env) h2cClient(proto *atomic.Int32) *sdk.Client {
	h2 := httptest.NewServer(H2C(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto.Store(int32(r.ProtoMajor))
		e.h.ServeHTTP(w, r)
	})))
	e.t.Cleanup(h2.Close)
	return sdk.New(sdk.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(h2.URL), Retryer: testRetryer(),
		Credentials: e.client.Options().Credentials,
		HTTPClient: &http.Client{Transport: &http2.Transport{AllowHTTP: true,
			DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, addr)
			}}},
	})
}

// subscribe opens a SubscribeToShard stream with the Go SDK.
func (e *env) subscribe(client *sdk.Client, arn, shard string, pos *types.StartingPosition) *sdk.SubscribeToShardEventStream {
	e.t.Helper()
	out, err := client.SubscribeToShard(ctx(e.t), &sdk.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String(shard), StartingPosition: pos})
	if err != nil {
		e.t.Fatalf("subscribe: %v", err)
	}
	st := out.GetStream()
	e.t.Cleanup(func() { st.Close() })
	return st
}

func nextEvent(t *testing.T, st *sdk.SubscribeToShardEventStream) *types.SubscribeToShardEvent {
	t.Helper()
	select {
	case ev, ok := <-st.Events():
		if !ok {
			t.Fatalf("event stream ended: %v", st.Err())
		}
		v, isEv := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent)
		if !isEv {
			t.Fatalf("unexpected event %T", ev)
		}
		return &v.Value
	case <-time.After(20 * time.Second):
		t.Fatal("no event within 20 s")
	}
	return nil
}

func TestSubscribeToShard(t *testing.T) {
	e := newEnv(t, nil)
	c := ctx(t)
	e.create("sub", 1)
	arn := e.register("sub", "fan")
	if _, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("sub"), PartitionKey: aws.String("k"), Data: []byte("old")}); err != nil {
		t.Fatal(err)
	}
	var proto atomic.Int32
	h2 := e.h2cClient(&proto)
	st := e.subscribe(h2, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	ev := nextEvent(t, st)
	if len(ev.Records) != 1 || string(ev.Records[0].Data) != "old" || *ev.ContinuationSequenceNumber != *ev.Records[0].SequenceNumber {
		t.Fatalf("first event: %+v", ev)
	}
	// A second subscription of the same consumer and shard within 5 s.
	_, err := h2.SubscribeToShard(c, &sdk.SubscribeToShardInput{ConsumerARN: aws.String(arn), ShardId: aws.String("shardId-000000000000"),
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}})
	apiErr(t, err, "ResourceInUseException", "")
	if proto.Load() != 2 {
		t.Fatalf("requests arrived over HTTP/%d, want h2c", proto.Load())
	}

	// A record put now arrives on the open subscription; log how soon.
	var lat []time.Duration
	for i := 0; i < 20; i++ {
		start := time.Now()
		if _, err := e.client.PutRecord(c, &sdk.PutRecordInput{StreamName: aws.String("sub"), PartitionKey: aws.String("k"), Data: []byte("new")}); err != nil {
			t.Fatal(err)
		}
		for {
			ev = nextEvent(t, st)
			if len(ev.Records) > 0 {
				break
			}
		}
		lat = append(lat, time.Since(start))
		if string(ev.Records[0].Data) != "new" {
			t.Fatalf("got %q", ev.Records[0].Data)
		}
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	t.Logf("put → SubscribeToShard event: median %v, max %v", lat[len(lat)/2], lat[len(lat)-1])

	// Heartbeats: an empty event with a continuation arrives while idle.
	ev = nextEvent(t, st)
	if len(ev.Records) != 0 || ev.ContinuationSequenceNumber == nil {
		t.Fatalf("heartbeat: %+v", ev)
	}

	// At shard end the last event lists the children and no continuation.
	if _, err := e.client.SplitShard(c, &sdk.SplitShardInput{StreamName: aws.String("sub"), ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("1000")}); err != nil {
		t.Fatal(err)
	}
	for {
		ev = nextEvent(t, st)
		if len(ev.ChildShards) > 0 {
			break
		}
	}
	if ev.ContinuationSequenceNumber != nil || len(ev.ChildShards) != 2 || ev.ChildShards[0].ParentShards[0] != "shardId-000000000000" {
		t.Fatalf("end of shard event: %+v", ev)
	}
	select {
	case _, ok := <-st.Events():
		if ok {
			t.Fatal("events after the shard ended")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("stream not closed after the shard ended")
	}
}

// TestSubscribeToShardHTTP1 covers the Go SDK over HTTP/1.1, where the
// event stream is a chunked response body.
func TestSubscribeToShardHTTP1(t *testing.T) {
	e := newEnv(t, nil)
	e.create("h1", 1)
	arn := e.register("h1", "fan")
	if _, err := e.client.PutRecord(ctx(t), &sdk.PutRecordInput{StreamName: aws.String("h1"), PartitionKey: aws.String("k"), Data: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	st := e.subscribe(e.client, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon})
	if ev := nextEvent(t, st); len(ev.Records) != 1 || string(ev.Records[0].Data) != "x" {
		t.Fatalf("first event over HTTP/1.1: %+v", ev)
	}
}

// TestSubscriptionEnds: a subscription ends by itself after its lifetime
// (five minutes by default), cleanly, and the consumer can subscribe again.
func TestSubscriptionEnds(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.SubscriptionTTL = 300 * time.Millisecond })
	e.create("ttl", 1)
	arn := e.register("ttl", "fan")
	var proto atomic.Int32
	h2 := e.h2cClient(&proto)
	st := e.subscribe(h2, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	for range st.Events() {
	}
	if err := st.Err(); err != nil {
		t.Fatalf("subscription ended with %v", err)
	}
	st = e.subscribe(h2, arn, "shardId-000000000000", &types.StartingPosition{Type: types.ShardIteratorTypeLatest})
	if ev := nextEvent(t, st); ev.ContinuationSequenceNumber == nil {
		t.Fatalf("resubscribed: %+v", ev)
	}
}
