// Package testserver starts the real runnel binary for the client
// packages' tests and reads streams back through the Kinesis API. It is
// imported by tests only.
package testserver

import (
	"context"
	"sort"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
)

// Binary builds cmd/runnel once per test binary and returns its path.
func Binary(t testing.TB) string { return testbin.Runnel(t) }

// Server is a `runnel serve` process on a loopback port.
type Server struct{ *testbin.Server }

// Start runs `runnel serve` on a fresh data directory with extra flags
// (such as --shard-limits) and waits until it is healthy; the test's
// cleanup kills it.
func Start(t testing.TB, flags ...string) *Server {
	t.Helper()
	return &Server{testbin.Start(t, testbin.Options{Flags: flags})}
}

// Client returns an AWS SDK Kinesis client for the server.
func (s *Server) Client() *kinesis.Client { return testsrv.KinesisClient(s.URL) }

// Record is one Kinesis record read back.
type Record struct {
	Shard, Seq, Key string
	Data            []byte
}

// ReadAll reads every record of every shard (closed ones included) from
// the trim horizon to the shard's current end, shard by shard in order of
// shard id.
func (s *Server) ReadAll(t testing.TB, stream string) []Record {
	t.Helper()
	ctx := context.Background()
	c := s.Client()
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
	var recs []Record
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
			// Retry: with --shard-limits reads are throttled too.
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
				recs = append(recs, Record{Shard: *sh.ShardId, Seq: *r.SequenceNumber, Key: *r.PartitionKey, Data: r.Data})
			}
			if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
				break
			}
			iter = out.NextShardIterator
		}
	}
	return recs
}
