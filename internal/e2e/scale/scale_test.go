package scale

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	sdk "github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// The limits of the server under test: small, so that they are reached in
// seconds, with an open-file limit below what its shards and clients would
// take without the segment-file cache.
const (
	maxStreams = 12
	maxShards  = 40
	noFile     = 128
)

// client is a Kinesis client of the server that makes attempts tries at
// each call: a client that retries sees through --max-conns' throttling, as
// real ones do, and one that does not sees LimitExceededException at once
// (the SDK retries it as a throttle).
func client(url string, attempts int) *sdk.Client {
	return sdk.New(sdk.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts, o.RateLimiter = attempts, ratelimit.None }),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: "k", SecretAccessKey: "s"}, nil
		})})
}

// strict is kc without retries, for the calls that probe a limit.
func strict(kc *sdk.Client) *sdk.Client {
	o := kc.Options()
	o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 })
	return sdk.New(o)
}

// h2c is kc speaking cleartext HTTP/2, as the subscriptions do:
// aws-sdk-go-v2 closes about one HTTP/1.1 event stream in ten by itself
// (docs/kinesis-api.md), which would end a subscription the test holds.
func h2c(kc *sdk.Client) *sdk.Client {
	o := kc.Options()
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	o.HTTPClient = &http.Client{Transport: &http.Transport{Protocols: &p}}
	return sdk.New(o)
}

func isLimit(err error) bool {
	var le *types.LimitExceededException
	return errors.As(err, &le)
}

// TestServerAtItsLimits drives one server through every limit in turn; each
// step depends on the state the one before left.
func TestServerAtItsLimits(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real server")
	}
	srv := testbin.Start(t, testbin.Options{NoFile: noFile, Flags: []string{
		"--max-streams", strconv.Itoa(maxStreams), "--max-shards", strconv.Itoa(maxShards),
		// More connections than descriptors, so that accept meets EMFILE.
		"--max-conns", strconv.Itoa(4 * noFile)}})
	kc := client(srv.URL, 10)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	began := time.Now()
	step := func(what string) { t.Logf("%s done at %v", what, time.Since(began).Round(time.Millisecond)) }
	names := createPastStreamLimit(ctx, t, kc)
	step("streams")
	// Free two streams (4 shards), then fill the shards to the limit with
	// one big stream after a refused bigger one.
	for _, n := range names[:2] {
		if _, err := kc.DeleteStream(ctx, &sdk.DeleteStreamInput{StreamName: aws.String(n)}); err != nil {
			t.Fatal(err)
		}
	}
	names = names[2:]
	waitGone(ctx, t, kc, 2)
	open := 2 * len(names)
	_, err := strict(kc).CreateStream(ctx, &sdk.CreateStreamInput{StreamName: aws.String("big"), ShardCount: aws.Int32(int32(maxShards - open + 1))})
	if !isLimit(err) {
		t.Fatalf("create past --max-shards: %v, want LimitExceededException", err)
	}
	assertStreams(ctx, t, kc, names)
	if _, err := strict(kc).CreateStream(ctx, &sdk.CreateStreamInput{StreamName: aws.String("big"), ShardCount: aws.Int32(int32(maxShards - open))}); err != nil {
		t.Fatalf("create up to --max-shards: %v", err)
	}
	names = append(names, "big")
	waitActive(ctx, t, kc, "big")

	step("shards")
	want := putToEveryShard(ctx, t, kc, names, 5)
	step("puts")
	assertRecords(ctx, t, kc, want)
	step("reads")

	connectionsPastFileLimit(ctx, t, srv, kc, want)
	step("connections")
	subscribeMany(ctx, t, kc, "big")
	step("subscriptions")
	reshardAtLimit(ctx, t, kc, "big", want)
	step("reshard")

	start := time.Now()
	if err := srv.Stop(); err != nil {
		t.Errorf("stop: %v", err)
	}
	t.Logf("stop took %v", time.Since(start))
	start = time.Now()
	srv.Start()
	t.Logf("restart with %d streams: ready in %v", len(names), time.Since(start))
	assertStreams(ctx, t, kc, names)
	step("restart: streams")
	assertRecords(ctx, t, kc, want)
	step("restart: records")
}

// createPastStreamLimit creates more streams than --max-streams at once:
// exactly the limit's worth succeed, the others get LimitExceededException
// and leave nothing behind.
func createPastStreamLimit(ctx context.Context, t *testing.T, kc *sdk.Client) []string {
	var mu sync.Mutex
	var made []string
	var wg sync.WaitGroup
	refused, sc := 0, strict(kc)
	for i := range maxStreams + 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			name := fmt.Sprintf("s%02d", i)
			_, err := sc.CreateStream(ctx, &sdk.CreateStreamInput{StreamName: aws.String(name), ShardCount: aws.Int32(2)})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				made = append(made, name)
			case isLimit(err):
				refused++
			default:
				t.Errorf("create %s: %v", name, err)
			}
		}()
	}
	wg.Wait()
	if len(made) != maxStreams || refused != 4 {
		t.Fatalf("%d streams created and %d refused, want %d and 4", len(made), refused, maxStreams)
	}
	for _, n := range made {
		waitActive(ctx, t, kc, n)
	}
	assertStreams(ctx, t, kc, made)
	return made
}

func waitActive(ctx context.Context, t *testing.T, kc *sdk.Client, name string) {
	t.Helper()
	ok := testutil.Within(30*time.Second, func() bool {
		out, err := kc.DescribeStreamSummary(ctx, &sdk.DescribeStreamSummaryInput{StreamName: aws.String(name)})
		return err == nil && out.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	})
	if !ok {
		t.Fatalf("stream %s not ACTIVE", name)
	}
}

// waitGone waits until n deleted streams no longer count.
func waitGone(ctx context.Context, t *testing.T, kc *sdk.Client, n int) {
	t.Helper()
	ok := testutil.Within(30*time.Second, func() bool {
		out, err := kc.DescribeLimits(ctx, &sdk.DescribeLimitsInput{})
		return err == nil && int(*out.OpenShardCount) == 2*(maxStreams-n)
	})
	if !ok {
		t.Fatal("deleted streams' shards still count as open")
	}
}

// assertStreams checks that the server lists exactly names, each with all
// its shards.
func assertStreams(ctx context.Context, t *testing.T, kc *sdk.Client, names []string) {
	t.Helper()
	var got []string
	p := sdk.NewListStreamsPaginator(kc, &sdk.ListStreamsInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, out.StreamNames...)
	}
	if fmt.Sprint(sorted(got)) != fmt.Sprint(sorted(names)) {
		t.Fatalf("streams %v, want %v", sorted(got), sorted(names))
	}
}

func sorted(s []string) []string {
	c := append([]string(nil), s...)
	for i := range c {
		for j := i + 1; j < len(c); j++ {
			if c[j] < c[i] {
				c[i], c[j] = c[j], c[i]
			}
		}
	}
	return c
}

// shardKey is a stream and shard.
type shardKey struct{ stream, shard string }

// openShards lists the stream's open shards with the lowest hash key each
// routes.
func openShards(ctx context.Context, t *testing.T, kc *sdk.Client, name string) []types.Shard {
	t.Helper()
	out, err := kc.ListShards(ctx, &sdk.ListShardsInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	var open []types.Shard
	for _, s := range out.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, s)
		}
	}
	return open
}

// putToEveryShard puts per records to every open shard of every stream at
// once, with explicit hash keys, and returns how many records each shard
// holds.
func putToEveryShard(ctx context.Context, t *testing.T, kc *sdk.Client, names []string, per int) map[shardKey]int {
	want := map[shardKey]int{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, n := range names {
		for _, s := range openShards(ctx, t, kc, n) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var recs []types.PutRecordsRequestEntry
				for i := range per {
					recs = append(recs, types.PutRecordsRequestEntry{Data: []byte(fmt.Sprintf("%s/%s/%d", n, *s.ShardId, i)),
						PartitionKey: aws.String("k"), ExplicitHashKey: s.HashKeyRange.StartingHashKey})
				}
				out, err := kc.PutRecords(ctx, &sdk.PutRecordsInput{StreamName: aws.String(n), Records: recs})
				if err != nil || *out.FailedRecordCount != 0 {
					t.Errorf("put to %s/%s: %v", n, *s.ShardId, err)
					return
				}
				for _, r := range out.Records {
					if *r.ShardId != *s.ShardId {
						t.Errorf("put for %s went to %s", *s.ShardId, *r.ShardId)
					}
				}
				mu.Lock()
				want[shardKey{n, *s.ShardId}] += per
				mu.Unlock()
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return want
}

// assertRecords reads every shard from its start, all at once, and checks
// the counts.
func assertRecords(ctx context.Context, t *testing.T, kc *sdk.Client, want map[shardKey]int) {
	t.Helper()
	var wg sync.WaitGroup
	for k, n := range want {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got, err := readShard(ctx, kc, k); err != nil || got != n {
				t.Errorf("read %s/%s: %d records, %v; want %d", k.stream, k.shard, got, err, n)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

func readShard(ctx context.Context, kc *sdk.Client, k shardKey) (int, error) {
	it, err := kc.GetShardIterator(ctx, &sdk.GetShardIteratorInput{StreamName: aws.String(k.stream), ShardId: aws.String(k.shard),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		return 0, err
	}
	iter, n := it.ShardIterator, 0
	for iter != nil {
		out, err := kc.GetRecords(ctx, &sdk.GetRecordsInput{ShardIterator: iter})
		if err != nil {
			return n, err
		}
		n += len(out.Records)
		if len(out.Records) == 0 && (out.MillisBehindLatest == nil || *out.MillisBehindLatest == 0) {
			return n, nil
		}
		iter = out.NextShardIterator
	}
	return n, nil
}

// cpuTicks is the process's user and system time in clock ticks.
func cpuTicks(t *testing.T, pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	u, _ := strconv.Atoi(f[11])
	s, _ := strconv.Atoi(f[12])
	return u + s
}

// connectionsPastFileLimit holds more idle connections than the server has
// file descriptors, so that accept fails with EMFILE: the server must
// neither die nor spin. Meanwhile a client whose connection was accepted
// before puts to and reads every shard (whose segment files the cache
// closed and must reopen): it sees each call succeed or a retryable error,
// and once the idle connections are closed, everything succeeds again.
func connectionsPastFileLimit(ctx context.Context, t *testing.T, srv *testbin.Server, kc *sdk.Client, want map[shardKey]int) {
	addr := strings.TrimPrefix(srv.URL, "http://")
	// One kept-alive connection, opened before the descriptors run out.
	one := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	o := kc.Options()
	o.HTTPClient = one
	o.Retryer = retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 1 })
	warm := sdk.New(o)
	if _, err := warm.DescribeLimits(ctx, &sdk.DescribeLimitsInput{}); err != nil {
		t.Fatal(err)
	}
	keys := map[shardKey]*string{}
	for k := range want {
		keys[k] = hashKeyOf(ctx, t, kc, k)
	}
	var conns []net.Conn
	for range 2 * noFile {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			break // the listen backlog is full
		}
		conns = append(conns, c)
	}
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	// A new connection meanwhile is answered at once, 503 saying why (the
	// server accepts it with a descriptor it keeps in reserve), instead of
	// waiting in the listen backlog until an idle connection times out.
	fresh := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	res, err := fresh.Get(srv.URL + "/healthz")
	if err != nil {
		t.Fatalf("a new connection with no descriptors left: %v; want a 503 saying so", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || !strings.Contains(string(body), "no file descriptors left") {
		t.Fatalf("a new connection with no descriptors left: %d %s; want 503 saying so", res.StatusCode, body)
	}
	pid := srv.Pid()
	began := time.Now()
	before := cpuTicks(t, pid)
	// Through the kept connection: a put to every shard. A call that
	// needs a new connection waits in the listen backlog until the server
	// has a descriptor to accept it with (the held connections idle out
	// after the server's header timeout): stop there.
	var okCalls, failed int
	var errs []string
	var maybe *shardKey // a put that timed out: stored or not
	for k, hk := range keys {
		cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		_, err := warm.PutRecord(cctx, &sdk.PutRecordInput{StreamName: aws.String(k.stream), PartitionKey: aws.String("k"),
			ExplicitHashKey: hk, Data: []byte("x")})
		stalled := cctx.Err() == context.DeadlineExceeded
		cancel()
		if err == nil {
			okCalls++
			want[k]++
			continue
		}
		if stalled {
			maybe = &k
			t.Logf("put to %s/%s waits for a connection: %v", k.stream, k.shard, err)
			break
		}
		failed++
		errs = append(errs, err.Error())
		var pe *types.ProvisionedThroughputExceededException
		if !errors.As(err, &pe) {
			t.Errorf("put to %s/%s with no descriptors left: %v, want ProvisionedThroughputExceededException (retryable)", k.stream, k.shard, err)
		}
	}
	t.Logf("puts took %v", time.Since(began))
	time.Sleep(time.Second)
	used := cpuTicks(t, pid) - before
	t.Logf("%d connections held past the file limit: %d puts through a kept connection succeeded, %d failed (%v); the server used %d CPU ticks meanwhile",
		len(conns), okCalls, failed, first(errs, 3), used)
	if !srv.Running() {
		t.Fatalf("server died with connections past its open-file limit:\n%s", srv.Logs())
	}
	for _, c := range conns {
		c.Close()
	}
	conns = nil
	closed := time.Now()
	ok := testutil.Within(30*time.Second, func() bool {
		_, err := kc.DescribeLimits(ctx, &sdk.DescribeLimitsInput{})
		return err == nil
	})
	if !ok {
		t.Fatalf("server does not answer once the connections are closed:\n%s", srv.Logs())
	}
	t.Logf("answers %v after the connections were closed", time.Since(closed))
	if maybe != nil {
		// The put that timed out sits in the listen backlog, its bytes
		// sent: the server takes it once it accepts the connection.
		var n int
		var err error
		testutil.Within(10*time.Second, func() bool {
			n, err = readShard(ctx, kc, *maybe)
			return err != nil || n > want[*maybe]
		})
		if err != nil || (n != want[*maybe] && n != want[*maybe]+1) {
			t.Fatalf("read %v after a put that timed out: %d records, %v; want %d or one more", *maybe, n, err, want[*maybe])
		}
		want[*maybe] = n
	}
	assertRecords(ctx, t, kc, want)
	// Every shard takes puts again, without a restart.
	for k, v := range putToEveryShard(ctx, t, kc, names(want), 1) {
		want[k] += v
	}
	assertRecords(ctx, t, kc, want)
}

// names lists the streams of want once each.
func names(want map[shardKey]int) []string {
	seen := map[string]bool{}
	var out []string
	for k := range want {
		if !seen[k.stream] {
			seen[k.stream] = true
			out = append(out, k.stream)
		}
	}
	return out
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// hashKeyOf is the lowest hash key the shard routes.
func hashKeyOf(ctx context.Context, t *testing.T, kc *sdk.Client, k shardKey) *string {
	for _, s := range openShards(ctx, t, kc, k.stream) {
		if *s.ShardId == k.shard {
			return s.HashKeyRange.StartingHashKey
		}
	}
	t.Fatalf("no open shard %s/%s", k.stream, k.shard)
	return nil
}

// subscribeMany registers consumers up to the per-stream limit and past
// it, then holds a SubscribeToShard session of each of them on shards of
// the stream at once; each must get the shard's records.
func subscribeMany(ctx context.Context, t *testing.T, kc *sdk.Client, name string) {
	d, err := kc.DescribeStreamSummary(ctx, &sdk.DescribeStreamSummaryInput{StreamName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	arn := d.StreamDescriptionSummary.StreamARN
	const perStream = 20
	var arns []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	refused, sc := 0, strict(kc)
	for i := range perStream + 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := sc.RegisterStreamConsumer(ctx, &sdk.RegisterStreamConsumerInput{StreamARN: arn, ConsumerName: aws.String(fmt.Sprintf("c%02d", i))})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				arns = append(arns, *out.Consumer.ConsumerARN)
			case isLimit(err):
				refused++
			default:
				t.Errorf("register consumer %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if len(arns) != perStream || refused != 3 {
		t.Fatalf("%d consumers registered and %d refused, want %d and 3", len(arns), refused, perStream)
	}
	for _, a := range arns {
		ok := testutil.Within(30*time.Second, func() bool {
			out, err := kc.DescribeStreamConsumer(ctx, &sdk.DescribeStreamConsumerInput{ConsumerARN: aws.String(a)})
			return err == nil && out.ConsumerDescription.ConsumerStatus == types.ConsumerStatusActive
		})
		if !ok {
			t.Fatalf("consumer %s not ACTIVE", a)
		}
	}
	shards := openShards(ctx, t, kc, name)
	sctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	// One subscription of a consumer to a shard at a time: a second is
	// refused while the first is open.
	in := &sdk.SubscribeToShardInput{ConsumerARN: aws.String(arns[0]), ShardId: shards[0].ShardId,
		StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeLatest}}
	h2 := h2c(kc)
	held, err := h2.SubscribeToShard(sctx, in)
	if err != nil {
		t.Fatal(err)
	}
	var inUse *types.ResourceInUseException
	if _, err := strict(h2).SubscribeToShard(sctx, in); !errors.As(err, &inUse) {
		t.Fatalf("second subscription of a consumer to a shard: %v, want ResourceInUseException", err)
	}
	held.GetStream().Close()
	for i, a := range arns {
		s := shards[(i+1)%len(shards)] // arns[0] just left shards[0]
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := h2.SubscribeToShard(sctx, &sdk.SubscribeToShardInput{ConsumerARN: aws.String(a), ShardId: s.ShardId,
				StartingPosition: &types.StartingPosition{Type: types.ShardIteratorTypeTrimHorizon}})
			if err != nil {
				t.Errorf("subscribe %s to %s: %v", a, *s.ShardId, err)
				return
			}
			es := out.GetStream()
			defer es.Close()
			got := 0
			for ev := range es.Events() {
				if e, ok := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); ok {
					got += len(e.Value.Records)
					if got >= 5 {
						return
					}
				}
			}
			t.Errorf("subscription of %s to %s ended after %d records: %v", a, *s.ShardId, got, es.Err())
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}

// reshardAtLimit splits a shard with every open shard in use (refused),
// merges two (allowed, one shard fewer) and splits again (allowed).
func reshardAtLimit(ctx context.Context, t *testing.T, kc *sdk.Client, name string, want map[shardKey]int) {
	shards := openShards(ctx, t, kc, name)
	mid := func(s types.Shard) *string {
		lo, _ := new(big.Int).SetString(*s.HashKeyRange.StartingHashKey, 10)
		hi, _ := new(big.Int).SetString(*s.HashKeyRange.EndingHashKey, 10)
		return aws.String(new(big.Int).Rsh(new(big.Int).Add(lo, hi), 1).String())
	}
	split := func(s types.Shard) error {
		_, err := strict(kc).SplitShard(ctx, &sdk.SplitShardInput{StreamName: aws.String(name), ShardToSplit: s.ShardId, NewStartingHashKey: mid(s)})
		return err
	}
	if err := split(shards[0]); !isLimit(err) {
		t.Fatalf("split at --max-shards: %v, want LimitExceededException", err)
	}
	if got := openShards(ctx, t, kc, name); len(got) != len(shards) {
		t.Fatalf("refused split left %d open shards, want %d", len(got), len(shards))
	}
	if _, err := kc.MergeShards(ctx, &sdk.MergeShardsInput{StreamName: aws.String(name), ShardToMerge: shards[0].ShardId, AdjacentShardToMerge: shards[1].ShardId}); err != nil {
		t.Fatalf("merge at --max-shards: %v", err)
	}
	waitActive(ctx, t, kc, name)
	after := openShards(ctx, t, kc, name)
	if len(after) != len(shards)-1 {
		t.Fatalf("after merge %d open shards, want %d", len(after), len(shards)-1)
	}
	if err := split(after[len(after)-1]); err != nil {
		t.Fatalf("split below --max-shards after a merge: %v", err)
	}
	waitActive(ctx, t, kc, name)
	// The closed parents keep their records; the children get new ones.
	for k, v := range putToEveryShard(ctx, t, kc, []string{name}, 2) {
		want[k] += v
	}
}
