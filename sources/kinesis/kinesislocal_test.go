package kinesis

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testsrv"
)

// TestReadsFromKinesisLocal reads from kinesis-local, an independent
// Kinesis implementation, across a split: every record once, each key's
// records in order.
func TestReadsFromKinesisLocal(t *testing.T) {
	anyKeys(t)
	rng := testRand(t)
	kl := testsrv.StartKinesisLocal(t, "CREATE_STREAM_DURATION=100ms", "SPLIT_SHARD_DURATION=100ms", "MERGE_SHARDS_DURATION=100ms")
	c := testsrv.KinesisClient(kl.URL)
	retryCall(t, "create stream", func() error {
		_, err := c.CreateStream(context.Background(), &kinesis.CreateStreamInput{StreamName: aws.String("kl"), ShardCount: aws.Int32(2)})
		if kinesisconn.Code(err) == "ResourceInUseException" {
			return nil
		}
		return err
	})
	createdActive(t, c, "kl")
	want := map[string]int{}
	var entries []putEntry
	for i := range 300 {
		k := fmt.Sprintf("key-%d", rng.IntN(12))
		entries = append(entries, putEntry{k, fmt.Sprintf(`{"k":%q,"n":%d,"i":%d}`, k, want[k], i)})
		want[k]++
	}
	if err := putBatch(c, "kl", entries[:150]); err != nil {
		t.Fatal(err)
	}
	split(t, c, "kl", rng)
	createdActive(t, c, "kl")
	if err := putBatch(c, "kl", entries[150:]); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, Config{Stream: "kl", Conn: kinesisconn.Conn{Endpoint: kl.URL}})
	got := readAll(t, src, len(entries))
	checkOncePerKeyOrder(t, got, want)
}
