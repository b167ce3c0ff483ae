package kinesis

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/sources"
)

// vector reads a blob of the independent KPL test vectors.
func vector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("../../streams/kpl/testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []struct {
			Name string `json:"name"`
			Data string `json:"data_base64"`
		} `json:"vectors"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	for _, v := range f.Vectors {
		if v.Name == name {
			d, err := base64.StdEncoding.DecodeString(v.Data)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatalf("no vector %s", name)
	return nil
}

// TestDeaggregatesKPLRecords puts, into shard 0 of two, an aggregated
// record whose user records 1 and 3 hash into shard 1, then a blob that
// only looks aggregated: the source returns user records 0 and 2 with
// their sub-sequence numbers in the position, drops 1 and 3 as the KCL
// does, returns the blob whole, and resumes inside the aggregated record.
func TestDeaggregatesKPLRecords(t *testing.T) {
	srv, c := runnelWithStream(t, "agg", 2)
	ctx := context.Background()
	var seqs []string
	for _, name := range []string{"explicit-hash-keys", "bad-md5"} {
		out, err := c.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("agg"), PartitionKey: aws.String("p"),
			ExplicitHashKey: aws.String("0"), Data: vector(t, name)})
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, *out.SequenceNumber)
	}
	src := newSource(t, Config{Stream: "agg", Conn: kinesisconn.Conn{Endpoint: srv.URL}, Format: sources.FormatText})
	if _, err := src.Shards(ctx); err != nil {
		t.Fatal(err)
	}
	read := func(after string, n int) []sources.Record {
		t.Helper()
		r, err := src.Open(ctx, sources.Shard{ID: "shardId-000000000000"}, after)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var got []sources.Record
		buf := make([]sources.Record, 10)
		for len(got) < n {
			k, err := r.Read(rctx, buf)
			if err != nil {
				t.Fatalf("after %d records: %v", len(got), err)
			}
			got = append(got, buf[:k]...)
		}
		return got
	}
	got := read("", 3)
	want := []struct{ pos, value, key string }{
		{seqs[0] + "/0", `{"e":0}`, "k"},
		{seqs[0] + "/2", `{"e":2}`, "k"},
		{seqs[1], string(vector(t, "bad-md5")), "p"},
	}
	for i, w := range want {
		if got[i].Position != w.pos || got[i].Value != w.value || got[i].PartitionKey != w.key {
			t.Errorf("record %d = {%s %q %s}, want {%s %q %s}", i, got[i].Position, got[i].Value, got[i].PartitionKey, w.pos, w.value, w.key)
		}
	}
	if src.Filtered() != 2 {
		t.Errorf("filtered %d user records, want 2 (sub-sequences 1 and 3)", src.Filtered())
	}
	// Resuming after user record 0 reads user record 2 next; after the
	// last user record, the next Kinesis record.
	if got := read(seqs[0]+"/0", 1); got[0].Position != seqs[0]+"/2" {
		t.Errorf("resumed after %s/0 at %s, want %s/2", seqs[0], got[0].Position, seqs[0])
	}
	if got := read(seqs[0]+"/2", 1); got[0].Position != seqs[1] {
		t.Errorf("resumed after %s/2 at %s, want %s", seqs[0], got[0].Position, seqs[1])
	}
}

// TestEnhancedFanOut reads with a consumer name: the source registers the
// consumer and reads every shard through SubscribeToShard, across a split.
func TestEnhancedFanOut(t *testing.T) {
	rng := testRand(t)
	srv, c := runnelWithStream(t, "fan", 2)
	want := map[string]int{}
	var entries []putEntry
	for i := range 400 {
		k := string(rune('a' + i%9))
		entries = append(entries, putEntry{k, `{"k":"` + k + `","n":` + itoa(want[k]) + `}`})
		want[k]++
	}
	if err := putBatch(c, "fan", entries[:200]); err != nil {
		t.Fatal(err)
	}
	split(t, c, "fan", rng)
	if err := putBatch(c, "fan", entries[200:]); err != nil {
		t.Fatal(err)
	}
	src := newSource(t, Config{Stream: "fan", Conn: kinesisconn.Conn{Endpoint: srv.URL}, Consumer: "runnel-job"})
	got := readAll(t, src, len(entries))
	checkOncePerKeyOrder(t, got, want)
	list, err := c.ListStreamConsumers(context.Background(), &kinesis.ListStreamConsumersInput{StreamARN: aws.String(streamARN(t, c, "fan"))})
	if err != nil || len(list.Consumers) != 1 || *list.Consumers[0].ConsumerName != "runnel-job" {
		t.Fatalf("consumers %+v, %v; want runnel-job registered", list, err)
	}
}

func streamARN(t *testing.T, c *kinesis.Client, name string) string {
	d, err := c.DescribeStreamSummary(context.Background(), &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	return *d.StreamDescriptionSummary.StreamARN
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}
