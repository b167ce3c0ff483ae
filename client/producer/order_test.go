package producer

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/client/internal/testserver"
)

// TestProducerKeyOrderRandomized hammers the retry path with seeded random
// configurations: many keys put from several goroutines, small batches
// and aggregates, high concurrency, a proxy that fails random records,
// throttles a hot part of the hash key space, loses answers after the
// write and answers slowly, give-ups (MaxAttempts), and sometimes a
// reshard while records flow. Every record must be reported exactly once,
// every acknowledged record must be in the stream as a KCL reads it
// (aggregated records de-aggregated with an independent decoder and
// filtered to their shard's hash range), and each key's records must be
// in Put order: a record may repeat an earlier one (an answer lost after
// the write), and may skip over earlier ones only where those were
// reported failed.
func TestProducerKeyOrderRandomized(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	seed := testSeed(t)
	srv := testserver.Start(t)
	for round := range 3 {
		rng := rand.New(rand.NewPCG(seed, uint64(round)))
		t.Run(fmt.Sprint(round), func(t *testing.T) { keyOrderRound(t, srv, rng, fmt.Sprintf("order%d", round)) })
	}
}

func keyOrderRound(t *testing.T, srv *testserver.Server, rng *rand.Rand, stream string) {
	shards := 1 + rng.IntN(4)
	srv.CreateStream(stream, shards)
	u, _ := url.Parse(srv.URL)
	fp := &orderProxy{faultProxy: faultProxy{rng: rand.New(rand.NewPCG(rng.Uint64(), 1)), target: u}}
	hs := httptest.NewServer(fp)
	defer hs.Close()
	opts := Options{
		Aggregate:         rng.IntN(2) == 0,
		AggregateMaxBytes: 200 + rng.IntN(2000),
		Linger:            time.Duration(rng.IntN(3)) * time.Millisecond,
		MaxConcurrency:    1 + rng.IntN(64),
		BackoffBase:       time.Millisecond,
		BackoffMax:        time.Duration(1+rng.IntN(20)) * time.Millisecond,
		NoRateLimit:       rng.IntN(2) == 0,
	}
	if rng.IntN(2) == 0 {
		opts.MaxAttempts = 2 + rng.IntN(4)
	}
	reshard := shards < 4 && rng.IntN(2) == 0
	c := &orderCollector{failed: map[rec]bool{}, seen: map[rec]int{}}
	opts.OnResult = c.onResult
	t.Logf("%d shards, reshard %v, options %+v", shards, reshard, opts)
	p, err := New(context.Background(), Runnel(hs.URL, stream, ""), opts)
	if err != nil {
		t.Fatal(err)
	}
	const putters = 4
	keys := 20 + rng.IntN(300)
	perPutter := 800 + rng.IntN(800)
	counts := make([]map[string]int, putters)
	var wg sync.WaitGroup
	for g := range putters {
		counts[g] = map[string]int{}
		prng := rand.New(rand.NewPCG(rng.Uint64(), uint64(g)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perPutter {
				// Putter g owns the keys ≡ g mod putters: each key's Put
				// order is one goroutine's.
				k := fmt.Sprintf("key-%d", prng.IntN(keys/putters+1)*putters+g)
				d, _ := json.Marshal(rec{K: k, I: counts[g][k]})
				counts[g][k]++
				if err := p.Put(context.Background(), k, d); err != nil {
					t.Errorf("put: %v", err)
					return
				}
				if i%100 == 99 {
					time.Sleep(time.Millisecond)
				}
			}
		}()
	}
	if reshard {
		time.Sleep(time.Duration(rng.IntN(200)) * time.Millisecond)
		if _, err := srv.Client().UpdateShardCount(context.Background(), &kinesis.UpdateShardCountInput{StreamName: aws.String(stream),
			TargetShardCount: aws.Int32(int32(shards * 2)), ScalingType: types.ScalingTypeUniformScaling}); err != nil {
			t.Fatalf("reshard: %v", err)
		}
	}
	wg.Wait()
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for _, m := range counts {
		for k, n := range m {
			want[k] = n
		}
	}
	c.check(t, want)
	t.Logf("proxy: %d requests with failed records, %d lost answers, %d throttled; %d records failed for good; metrics %+v",
		fp.partial, fp.lost, fp.throttled, len(c.failed), p.Metrics().Snapshot())
	checkKeyOrder(t, srv, stream, want, c.failed)
}

// orderCollector keeps each record's outcome.
type orderCollector struct {
	mu     sync.Mutex
	seen   map[rec]int
	failed map[rec]bool
}

func (c *orderCollector) onResult(r Result) {
	var x rec
	json.Unmarshal(r.Data, &x)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[x]++
	if r.Err != nil {
		c.failed[x] = true
	}
}

// check: every record reported exactly once.
func (c *orderCollector) check(t *testing.T, want map[string]int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	bad := 0
	for k, n := range want {
		for i := range n {
			if got := c.seen[rec{k, i}]; got != 1 && bad < 10 {
				bad++
				t.Errorf("record %s/%d reported %d times", k, i, got)
			}
		}
	}
}

// checkKeyOrder reads the stream as a KCL does and checks each key's
// order; acknowledged records must all be there.
func checkKeyOrder(t *testing.T, srv *testserver.Server, stream string, want map[string]int, failed map[rec]bool) {
	t.Helper()
	ls, err := srv.Client().ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String(stream)})
	if err != nil {
		t.Fatal(err)
	}
	ranges := map[string]shardRange{}
	for _, s := range ls.Shards {
		lo, _ := parseHashKey(aws.ToString(s.HashKeyRange.StartingHashKey))
		hi, _ := parseHashKey(aws.ToString(s.HashKeyRange.EndingHashKey))
		ranges[*s.ShardId] = shardRange{id: *s.ShardId, start: lo, end: hi}
	}
	last := map[string]int{}
	for k := range want {
		last[k] = -1
	}
	var problems []string
	note := func(f string, a ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf(f, a...))
		}
	}
	for _, kr := range srv.ReadAll(t, stream) {
		users, err := deaggregate(kr.Data)
		if err == errNotAggregated {
			users = []userRecord{{Key: kr.Key, Data: kr.Data}}
		} else if err != nil {
			t.Fatalf("record %s/%s: %v", kr.Shard, kr.Seq, err)
		}
		for _, u := range users {
			if !ranges[kr.Shard].holds(md5.Sum([]byte(u.Key))) {
				continue // a KCL drops it: outside the shard's range
			}
			var x rec
			if err := json.Unmarshal(u.Data, &x); err != nil {
				t.Fatalf("record %s/%s: %q: %v", kr.Shard, kr.Seq, u.Data, err)
			}
			if x.I <= last[x.K] {
				continue // a repeat of a record whose answer was lost
			}
			for i := last[x.K] + 1; i < x.I; i++ {
				if !failed[rec{x.K, i}] {
					note("key %s: record %d in shard %s (sequence %s) before record %d, which did not fail", x.K, x.I, kr.Shard, kr.Seq, i)
					break
				}
			}
			last[x.K] = x.I
		}
	}
	for k, n := range want {
		// Records after the last one read must all have failed.
		for i := last[k] + 1; i < n; i++ {
			if !failed[rec{k, i}] {
				note("key %s: acknowledged record %d is not in the stream (last read %d)", k, i, last[k])
				break
			}
		}
	}
	if len(problems) > 0 {
		t.Errorf("per-key order or delivery broken:\n%s", strings.Join(problems, "\n"))
	}
}

// orderProxy is faultProxy with two more faults: a hot part of the hash
// key space (keys whose MD5 starts below 0x30) whose records are mostly
// throttled, and slow answers, so that many batches are in flight.
type orderProxy struct {
	faultProxy
	throttled int
}

func (o *orderProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
		o.faultProxy.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var in struct {
		StreamName string
		Records    []struct{ PartitionKey string }
	}
	json.Unmarshal(body, &in)
	o.mu.Lock()
	hot := o.rng.IntN(10) < 7
	slow := time.Duration(o.rng.IntN(3)) * time.Millisecond
	o.mu.Unlock()
	time.Sleep(slow)
	if hot {
		for _, rc := range in.Records {
			if md5.Sum([]byte(rc.PartitionKey))[0] < 0x30 {
				// The whole request is refused, as a shard over its
				// limit refuses it when all its records are throttled.
				o.mu.Lock()
				o.throttled++
				o.mu.Unlock()
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(400)
				w.Write([]byte(`{"__type":"ProvisionedThroughputExceededException","message":"injected: hot shard"}`))
				return
			}
		}
	}
	r.Body = io.NopCloser(strings.NewReader(string(body)))
	o.faultProxy.ServeHTTP(w, r)
}
