package kinesis

import (
	"context"
	"errors"
	"io"
	"math/big"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/backoff"
	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/sources"
)

// testRand returns a generator seeded by -seed or a fresh seed, printed.
func testRand(t *testing.T) *rand.Rand {
	seed := testutil.Seed(t)
	return rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// retryCall retries a control-plane call the server refuses while a
// stream is CREATING or UPDATING.
func retryCall(t *testing.T, what string, call func() error) {
	t.Helper()
	var b backoff.Backoff
	for i := 0; ; i++ {
		err := call()
		if err == nil {
			return
		}
		if c := kinesisconn.Code(err); i > 50 || (c != "ResourceInUseException" && !kinesisconn.Retryable(err)) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(b.Next())
	}
}

func createStream(t *testing.T, c *kinesis.Client, name string, shards int32) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(shards)}); err != nil {
		t.Fatal(err)
	}
	createdActive(t, c, name)
}

// runnelWithStream starts a `runnel serve` holding the ACTIVE stream name
// of shards shards, and returns it with a Kinesis client of it.
func runnelWithStream(t *testing.T, name string, shards int32) (*testsrv.Runnel, *kinesis.Client) {
	t.Helper()
	anyKeys(t)
	srv := testsrv.StartRunnel(t)
	c := srv.Client()
	createStream(t, c, name, shards)
	return srv, c
}

// createdActive waits until the stream is ACTIVE.
func createdActive(t *testing.T, c *kinesis.Client, name string) {
	t.Helper()
	ctx := context.Background()
	retryCall(t, "wait for ACTIVE", func() error {
		d, err := c.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		if err == nil && d.StreamDescriptionSummary.StreamStatus != types.StreamStatusActive {
			return errors.New("ResourceInUseException")
		}
		return err
	})
}

func openShards(t *testing.T, c *kinesis.Client, stream string) []types.Shard {
	t.Helper()
	out, err := c.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(stream),
		ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeAtLatest}})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out.Shards, func(a, b types.Shard) int {
		return bigOf(*a.HashKeyRange.StartingHashKey).Cmp(bigOf(*b.HashKeyRange.StartingHashKey))
	})
	return out.Shards
}

func bigOf(s string) *big.Int {
	b, _ := new(big.Int).SetString(s, 10)
	return b
}

// split splits an open shard, chosen by rng, in the middle of its range.
func split(t *testing.T, c *kinesis.Client, stream string, rng *rand.Rand) {
	open := openShards(t, c, stream)
	sh := open[rng.IntN(len(open))]
	lo, hi := bigOf(*sh.HashKeyRange.StartingHashKey), bigOf(*sh.HashKeyRange.EndingHashKey)
	mid := new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1)
	retryCall(t, "split "+*sh.ShardId, func() error {
		_, err := c.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: aws.String(stream),
			ShardToSplit: sh.ShardId, NewStartingHashKey: aws.String(mid.String())})
		return err
	})
}

// merge merges two adjacent open shards chosen by rng.
func merge(t *testing.T, c *kinesis.Client, stream string, rng *rand.Rand) {
	open := openShards(t, c, stream)
	i := rng.IntN(len(open) - 1)
	retryCall(t, "merge "+*open[i].ShardId, func() error {
		_, err := c.MergeShards(context.Background(), &kinesis.MergeShardsInput{StreamName: aws.String(stream),
			ShardToMerge: open[i].ShardId, AdjacentShardToMerge: open[i+1].ShardId})
		return err
	})
}

type readRecord struct {
	shard string
	sources.Record
}

// readAll reads src the way the runtime schedules shards (a shard once
// all its known parents ended, children learned from ended shards) until
// n records arrived, and returns them in the order each shard returned
// them, shards interleaved.
func readAll(t *testing.T, src sources.Source, n int) []readRecord {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	known, err := src.Shards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []readRecord
	type ended struct {
		id   string
		kids []sources.Shard
		err  error
	}
	events := make(chan ended, 64)
	var wg sync.WaitGroup
	started, done := map[string]bool{}, map[string]bool{}
	startReady := func() {
		ids := map[string]bool{}
		for _, s := range known {
			ids[s.ID] = true
		}
		for _, sh := range known {
			ready := !started[sh.ID]
			for _, p := range sh.Parents {
				ready = ready && (!ids[p] || done[p])
			}
			if !ready {
				continue
			}
			started[sh.ID] = true
			wg.Add(1)
			go func() {
				defer wg.Done()
				r, err := src.Open(ctx, sh, "")
				if err != nil {
					events <- ended{id: sh.ID, err: err}
					return
				}
				defer r.Close()
				buf := make([]sources.Record, 100)
				for {
					k, err := r.Read(ctx, buf)
					mu.Lock()
					for _, rec := range buf[:k] {
						got = append(got, readRecord{sh.ID, rec})
					}
					if len(got) >= n {
						cancel()
					}
					mu.Unlock()
					if err != nil {
						if errors.Is(err, io.EOF) {
							err = nil
						}
						events <- ended{id: sh.ID, kids: r.Children(), err: err}
						return
					}
				}
			}()
		}
	}
	startReady()
	for ctx.Err() == nil {
		select {
		case e := <-events:
			if e.err != nil && ctx.Err() == nil {
				t.Fatalf("shard %s: %v", e.id, e.err)
			}
			done[e.id] = true
			for _, k := range e.kids {
				if !slices.ContainsFunc(known, func(s sources.Shard) bool { return s.ID == k.ID }) {
					known = append(known, k)
				}
			}
			startReady()
		case <-ctx.Done():
		}
	}
	go func() {
		for range events {
		}
	}()
	wg.Wait()
	close(events)
	if len(got) < n {
		t.Fatalf("read %d records of %d before the deadline", len(got), n)
	}
	return got
}
