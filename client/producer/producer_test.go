package producer

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/runnel-dev/runnel/client/internal/testserver"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// rec is the payload the tests put: key and its per-key index.
type rec struct {
	K string `json:"k"`
	I int    `json:"i"`
}

// collector gathers results and checks each record is reported once.
type collector struct {
	mu      sync.Mutex
	seen    map[rec]int
	failed  []Result
	results []Result
}

func newCollector() *collector { return &collector{seen: map[rec]int{}} }

func (c *collector) onResult(r Result) {
	var x rec
	json.Unmarshal(r.Data, &x)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[x]++
	c.results = append(c.results, r)
	if r.Err != nil {
		c.failed = append(c.failed, r)
	}
}

// putAll puts n records over keys keys, each key's records numbered 0..,
// and returns how many each key got.
func putAll(t *testing.T, p *Producer, rng *rand.Rand, n, keys int) map[string]int {
	t.Helper()
	next := map[string]int{}
	for i := 0; i < n; i++ {
		k := fmt.Sprintf("key-%d", rng.IntN(keys))
		d, _ := json.Marshal(rec{K: k, I: next[k]})
		next[k]++
		if err := p.Put(context.Background(), k, d); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	return next
}

// putAllAndClose puts n records over keys keys through p, closes p and
// checks that c saw every record reported exactly once, none failed. It
// returns how many records each key got.
func putAllAndClose(t *testing.T, p *Producer, c *collector, rng *rand.Rand, n, keys int) map[string]int {
	t.Helper()
	want := putAll(t, p, rng, n, keys)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkResults(t, c, want)
	return want
}

// checkResults: every record reported exactly once, none failed.
func checkResults(t *testing.T, c *collector, want map[string]int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	total := 0
	for k, n := range want {
		for i := 0; i < n; i++ {
			if got := c.seen[rec{K: k, I: i}]; got != 1 {
				t.Errorf("record %s/%d reported %d times", k, i, got)
			}
		}
		total += n
	}
	if len(c.results) != total {
		t.Errorf("%d results for %d records", len(c.results), total)
	}
	for _, r := range c.failed {
		t.Errorf("record %s failed after %d attempts: %v", r.Key, r.Attempts, r.Err)
	}
}

// checkStream reads user records back (de-aggregating with the test
// decoder) and checks that each key's records appear in order: a record
// may repeat an earlier one (a retry of an unknown outcome) but a new one
// must be the next index. dupsOK allows such repeats.
func checkStream(t *testing.T, srv *testserver.Server, stream string, want map[string]int, dupsOK bool) (read []testserver.Record, aggregated int) {
	t.Helper()
	max := map[string]int{}
	for k := range want {
		max[k] = -1
	}
	dups := 0
	read = srv.ReadAll(t, stream)
	for _, kr := range read {
		users, err := deaggregate(kr.Data)
		if err == errNotAggregated {
			users = []userRecord{{Key: kr.Key, Data: kr.Data}}
		} else if err != nil {
			t.Fatalf("record %s/%s: %v", kr.Shard, kr.Seq, err)
		} else {
			aggregated++
		}
		for _, u := range users {
			var x rec
			if err := json.Unmarshal(u.Data, &x); err != nil || x.K != u.Key {
				t.Fatalf("record %s/%s: user record %q with key %q", kr.Shard, kr.Seq, u.Data, u.Key)
			}
			switch {
			case x.I == max[x.K]+1:
				max[x.K] = x.I
			case x.I <= max[x.K]:
				dups++
				if !dupsOK {
					t.Errorf("%s/%d written twice", x.K, x.I)
				}
			default:
				t.Fatalf("key %s: record %d written after %d: order lost (or the records between failed: see above)", x.K, x.I, max[x.K])
			}
		}
	}
	for k, n := range want {
		if max[k] != n-1 {
			t.Errorf("key %s: stream holds records up to %d, want %d", k, max[k], n-1)
		}
	}
	t.Logf("%d Kinesis records (%d aggregated), %d duplicates", len(read), aggregated, dups)
	return
}

// TestProducerThrottled runs against a server enforcing the per-shard
// limits with the producer's own pacing off, so PutRecords throttles
// records and the producer retries them: every record is acknowledged
// once, and each key's records are in the stream once and in order (a
// record may be there twice only when a call failed as a whole: then the
// stream may have written it, and the producer sends it again).
func TestProducerThrottled(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	rng := rand.New(rand.NewPCG(testSeed(t), 2))
	// A quarter of AWS's limits: every batch of the producer (up to 500
	// records to one shard) is more than a shard may take at once, so
	// records are throttled however slowly the machine runs.
	srv := testserver.Start(t, "--shard-limits", "--shard-limits-scale", "0.25")
	srv.CreateStream("thr", 2)
	c := newCollector()
	calls, logger := callFailures()
	p, err := New(context.Background(), Target{Stream: "thr", Client: srv.Client()}, Options{
		NoRateLimit: true, OnResult: c.onResult, BackoffBase: 20 * time.Millisecond, BackoffMax: 200 * time.Millisecond,
		Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := putAllAndClose(t, p, c, rng, 6000, 600)
	s := p.Metrics().Snapshot()
	t.Logf("metrics %+v", s)
	if s.Retries == 0 {
		t.Errorf("no record was throttled: the test did not exercise retries")
	}
	if s.RecordsSent != 6000 {
		t.Errorf("records sent %v, want 6000", s.RecordsSent)
	}
	checkStream(t, srv, "thr", want, dupsAllowed(t, s, calls))
}

// callFailures gives a producer's logger that keeps its debug lines, in
// which it names each PutRecords call that failed as a whole.
func callFailures() (*testutil.Buffer, *slog.Logger) {
	b := &testutil.Buffer{}
	return b, slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// dupsAllowed reports whether the stream may hold a record twice: only
// when a PutRecords call failed as a whole (the producer's documented
// at-least-once case), whose errors it logs.
func dupsAllowed(t *testing.T, s Snapshot, calls *testutil.Buffer) bool {
	t.Helper()
	if s.FailedRequests == 0 {
		return false
	}
	for _, line := range strings.Split(calls.String(), "\n") {
		if strings.Contains(line, "failed as a whole") {
			t.Logf("a call that failed as a whole (its records may be in the stream twice): %s", line)
		}
	}
	return true
}

// TestProducerAggregated sends aggregated records through a throttling
// server and reads them back: the test decoder (not the encoder) recovers
// every user record, once, in per-key order, and the results' sub-sequence
// numbers are the user records' places in their aggregated record.
func TestProducerAggregated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	rng := rand.New(rand.NewPCG(testSeed(t), 3))
	srv := testserver.Start(t, "--shard-limits")
	srv.CreateStream("agg", 4)
	c := newCollector()
	calls, logger := callFailures()
	p, err := New(context.Background(), Target{Stream: "agg", Client: srv.Client()}, Options{
		Aggregate: true, AggregateMaxBytes: 4 << 10, OnResult: c.onResult, Linger: 20 * time.Millisecond, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := putAllAndClose(t, p, c, rng, 20000, 64)
	read, agg := checkStream(t, srv, "agg", want, dupsAllowed(t, p.Metrics().Snapshot(), calls))
	if agg == 0 || len(read) >= 20000 {
		t.Fatalf("%d Kinesis records, %d aggregated: records were not aggregated", len(read), agg)
	}
	// Sub-sequence numbers: the records of one sequence number, by
	// sub-sequence, are that Kinesis record's user records in order.
	bySeq := map[string][]Result{}
	for _, r := range c.results {
		bySeq[r.ShardID+"/"+r.SequenceNumber] = append(bySeq[r.ShardID+"/"+r.SequenceNumber], r)
	}
	stream := map[string][]userRecord{}
	for _, kr := range read {
		if users, err := deaggregate(kr.Data); err == nil {
			stream[kr.Shard+"/"+kr.Seq] = users
		}
	}
	for seq, rs := range bySeq {
		users, ok := stream[seq]
		if !ok {
			continue // sent alone
		}
		for _, r := range rs {
			if r.SubSequence < 0 || r.SubSequence >= len(users) || !bytes.Equal(users[r.SubSequence].Data, r.Data) {
				t.Fatalf("result %s sub-sequence %d does not name its user record", seq, r.SubSequence)
			}
		}
	}
}

// faultProxy stands in front of a real server and, for PutRecords, fails
// a random subset of records (answering InternalFailure or
// ProvisionedThroughputExceededException for them and forwarding the
// rest), and sometimes answers 500 after the server wrote the batch (an
// unknown outcome the producer must retry).
type faultProxy struct {
	mu      sync.Mutex
	rng     *rand.Rand
	target  *url.URL
	partial int // requests with failed records
	lost    int // acknowledged batches answered with 500
}

func (f *faultProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
		f.forward(w, r, body)
		return
	}
	var in struct {
		StreamName string
		Records    []json.RawMessage
	}
	if err := json.Unmarshal(body, &in); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	f.mu.Lock()
	failed := make([]bool, len(in.Records))
	var keep []json.RawMessage
	mode := f.rng.IntN(10)
	for i := range in.Records {
		failed[i] = mode < 4 && f.rng.IntN(3) == 0
		if !failed[i] {
			keep = append(keep, in.Records[i])
		}
	}
	if len(keep) < len(in.Records) {
		f.partial++
	}
	lose := mode == 9
	if lose {
		f.lost++
	}
	f.mu.Unlock()
	var out struct {
		FailedRecordCount int
		Records           []map[string]string
	}
	if len(keep) > 0 {
		in.Records = keep
		nb, _ := json.Marshal(in)
		rec := httptest.NewRecorder()
		f.forward(rec, r, nb)
		if rec.Code != 200 {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		json.Unmarshal(rec.Body.Bytes(), &out)
	}
	if lose {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(500)
		w.Write([]byte(`{"__type":"InternalFailure","message":"injected after the write"}`))
		return
	}
	merged := make([]map[string]string, len(failed))
	j := 0
	for i := range failed {
		if failed[i] {
			code := "InternalFailure"
			if i%2 == 0 {
				code = "ProvisionedThroughputExceededException"
			}
			merged[i] = map[string]string{"ErrorCode": code, "ErrorMessage": "injected"}
			out.FailedRecordCount++
			continue
		}
		merged[i] = out.Records[j]
		j++
	}
	out.Records = merged
	b, _ := json.Marshal(out)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Write(b)
}

func (f *faultProxy) forward(w http.ResponseWriter, r *http.Request, body []byte) {
	rp := httputil.NewSingleHostReverseProxy(f.target)
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	rp.ServeHTTP(w, r2)
}

// TestProducerPartialFailures puts records through the fault proxy: every
// record is acknowledged once or reported failed, and the stream keeps
// each key's order (repeats only of records whose outcome was lost).
func TestProducerPartialFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	for _, aggregate := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregate=%v", aggregate), func(t *testing.T) {
			seed := testSeed(t)
			rng := rand.New(rand.NewPCG(seed, 4))
			srv := testserver.Start(t)
			srv.CreateStream("faults", 3)
			u, _ := url.Parse(srv.URL)
			fp := &faultProxy{rng: rand.New(rand.NewPCG(seed, 5)), target: u}
			hs := httptest.NewServer(fp)
			defer hs.Close()
			c := newCollector()
			p, err := New(context.Background(), Runnel(hs.URL, "faults", ""), Options{
				Aggregate: aggregate, AggregateMaxBytes: 2 << 10, OnResult: c.onResult,
				BackoffBase: time.Millisecond, BackoffMax: 10 * time.Millisecond, Linger: 5 * time.Millisecond,
				// Far beyond any stall of a loaded machine: a record given
				// up on would leave a gap in its key's records, which
				// TestProducerKeyOrderRandomized covers.
				RecordTTL: 10 * time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			want := putAllAndClose(t, p, c, rng, 5000, 20)
			t.Logf("%d requests with failed records, %d lost answers; metrics %+v", fp.partial, fp.lost, p.Metrics().Snapshot())
			if fp.partial == 0 || fp.lost == 0 {
				t.Fatal("the proxy injected no faults")
			}
			checkStream(t, srv, "faults", want, true)
		})
	}
}

// blockingAPI never answers PutRecords until released.
type blockingAPI struct {
	API
	release chan struct{}
}

// TestProducerBufferFull: with the buffer full, Put fails with
// ErrBufferFull (FailWhenFull) or waits until its context ends.
func TestProducerBufferFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	srv := testserver.Start(t)
	srv.CreateStream("full", 1)
	gate := make(chan struct{})
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".PutRecords") {
			<-gate
		}
		u, _ := url.Parse(srv.URL)
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	defer hs.Close()
	for _, failFast := range []bool{true, false} {
		c := newCollector()
		p, err := New(context.Background(), Runnel(hs.URL, "full", ""), Options{
			MaxBufferedRecords: 10, FailWhenFull: failFast, OnResult: c.onResult, Linger: time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 10; i++ {
			d, _ := json.Marshal(rec{K: "k", I: i})
			if err := p.Put(context.Background(), "k", d); err != nil {
				t.Fatal(err)
			}
		}
		d, _ := json.Marshal(rec{K: "k", I: 10})
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		err = p.Put(ctx, "k", d)
		cancel()
		if failFast && !errors.Is(err, ErrBufferFull) {
			t.Fatalf("FailWhenFull: Put on a full buffer returned %v", err)
		}
		if !failFast && !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("blocking: Put on a full buffer returned %v", err)
		}
		go func() { gate <- struct{}{} }()
		// Release requests until the producer is done.
		done := make(chan error)
		go func() { done <- p.Close(context.Background()) }()
	wait:
		for {
			select {
			case err := <-done:
				if err != nil {
					t.Fatal(err)
				}
				break wait
			case gate <- struct{}{}:
			}
		}
		checkResults(t, c, map[string]int{"k": 10})
	}
}

// TestProducerReshard splits a shard while records flow: the producer
// notices results from the children, lists the shards again, and the
// children's queues wait for the parent's, so every key's records are in
// order (parent before children) and each is acknowledged once.
func TestProducerReshard(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	rng := rand.New(rand.NewPCG(testSeed(t), 6))
	srv := testserver.Start(t)
	srv.CreateStream("rs", 2)
	c := newCollector()
	p, err := New(context.Background(), Target{Stream: "rs", Client: srv.Client()}, Options{
		OnResult: c.onResult, Linger: 2 * time.Millisecond, NoRateLimit: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	next := map[string]int{}
	put := func(n int) {
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("key-%d", rng.IntN(200))
			d, _ := json.Marshal(rec{K: k, I: next[k]})
			next[k]++
			if err := p.Put(context.Background(), k, d); err != nil {
				t.Fatal(err)
			}
			if i%50 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}
	put(3000)
	kc := srv.Client()
	if _, err := kc.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: aws.String("rs"),
		ShardToSplit: aws.String("shardId-000000000000"), NewStartingHashKey: aws.String("42535295865117307932921825928971026432")}); err != nil {
		t.Fatalf("split: %v", err)
	}
	put(3000)
	time.Sleep(1100 * time.Millisecond) // past the producer's once-a-second listing bound
	put(3000)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkResults(t, c, next)
	shards := map[string]bool{}
	c.mu.Lock()
	for _, r := range c.results {
		shards[r.ShardID] = true
	}
	c.mu.Unlock()
	if len(shards) < 3 {
		t.Fatalf("records went to shards %v only: the split was not used", shards)
	}
	p.mu.Lock()
	n := len(p.mu.byID)
	p.mu.Unlock()
	if n != 3 {
		t.Errorf("the producer knows %d open shards after the split, want 3", n)
	}
	checkStream(t, srv, "rs", next, false)
}

// TestProducerKinesisConfig builds the target from an AWS SDK
// configuration, as for AWS, pointed at the server's Kinesis API.
func TestProducerKinesisConfig(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	srv := testserver.Start(t)
	srv.CreateStream("kc", 1)
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "s"}, nil
		})}
	c := newCollector()
	p, err := New(context.Background(), Kinesis(cfg, "kc"), Options{OnResult: c.onResult})
	if err != nil {
		t.Fatal(err)
	}
	want := putAllAndClose(t, p, c, rand.New(rand.NewPCG(1, 1)), 100, 5)
	checkStream(t, srv, "kc", want, false)
}
