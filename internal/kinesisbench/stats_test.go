package kinesisbench

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// TestPhaseCountsServerSyncs: a phase against Runnel's bench server
// reports the commit groups and syncs its log did, which the report turns
// into records a sync; the decode-and-discard server reports CPU time and no writes.
func TestPhaseCountsServerSyncs(t *testing.T) {
	ctx := context.Background()
	srv, err := startBenchServer(ctx, benchServerSpec{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.stop()
	dsrv, err := startBenchServer(ctx, benchServerSpec{Discard: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dsrv.stop()
	c := benchClient(srv.url, nil)
	if _, err := c.CreateStream(ctx, &sdk.CreateStreamInput{StreamName: aws.String("s"), ShardCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	entries := benchEntries(50, 100)
	put := func(c *sdk.Client) func(context.Context, int) (int, error) {
		return func(ctx context.Context, _ int) (int, error) {
			_, err := c.PutRecords(ctx, &sdk.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
			return len(entries), err
		}
	}
	// One client: each call is alone, so it makes one commit group on
	// each shard its records reach (one or two), each synced once.
	p, err := runPhase(ctx, srv, 1, time.Second, put(c))
	if err != nil {
		t.Fatal(err)
	}
	// A failed call (the phase tolerates a few) may have written too.
	calls := p.Records / int64(len(entries))
	if calls == 0 || p.Syncs != p.Groups || p.Groups < calls || p.Groups > 2*(calls+p.Errors) {
		t.Fatalf("%d calls of %d records to 2 shards: %d groups, %d syncs; want 1 to 2 groups a call, one sync each", calls, len(entries), p.Groups, p.Syncs)
	}
	rep := BenchReport{Runnel: p}
	if s := rep.String(); !strings.Contains(s, "records a sync") {
		t.Errorf("report names no records a sync:\n%s", s)
	}
	// The decode-and-discard server has no log: it reports its CPU time
	// and no writes.
	ds, err := dsrv.stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ds.CPU <= 0 || ds.Groups != 0 || ds.Syncs != 0 {
		t.Errorf("decode-and-discard server stats %+v; want CPU time and no writes", ds)
	}
}
