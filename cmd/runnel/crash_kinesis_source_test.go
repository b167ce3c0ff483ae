package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5"

	"github.com/runnel-dev/runnel/client/producer"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/kpl"
)

// kinesisCrashJob reads the stream `events` of the remote Runnel at
// endpoint from where it is when the job first opens it (start: latest),
// sums per key over 10-second event-time windows and writes the windows
// exactly once to PostgreSQL at dsn.
func kinesisCrashJob(endpoint, dsn string) string {
	return perKeyJob("kinesis-crash", kinesisSource(endpoint, "latest"), "1s",
		fmt.Sprintf("  - {id: table, input: per-key, postgres: {dsn: %q, table: results, create_table: true}}", dsn), "300ms")
}

// kinesisSource is the source lines of a job reading the stream `events`
// of the Kinesis endpoint from start.
func kinesisSource(endpoint, start string) string {
	return fmt.Sprintf("  kinesis: {stream: events, endpoint: %q, region: us-east-1, start: %s, poll_interval: 50ms}", endpoint, start)
}

// kinesisRun is a job's server (srv) reading a remote Runnel's Kinesis
// stream `events` into PostgreSQL.
type kinesisRun struct {
	t      *testing.T
	ctx    context.Context
	rng    *rand.Rand // seeded with the test's seed
	remote *testsrv.Runnel
	pg     *testsrv.Postgres
	srv    *supervised
}

// startKinesisRun starts the remote Runnel with the streams remoteStreams
// (its --streams flag), PostgreSQL, and the job's server.
func startKinesisRun(t *testing.T, remoteStreams string) *kinesisRun {
	t.Helper()
	r := &kinesisRun{t: t, ctx: context.Background(), rng: rand.New(rand.NewSource(int64(testutil.Seed(t))))}
	testsrv.AWSTestKeys(t)
	r.remote = testsrv.StartRunnel(t, "--streams", remoteStreams)
	r.pg = testsrv.StartPostgres(t)
	r.srv = newSupervised(t)
	r.srv.start()
	return r
}

func (r *kinesisRun) submit(job string) {
	r.t.Helper()
	if st, b := r.srv.Do("POST", "/api/v1/jobs", "application/yaml", job); st != 201 {
		r.t.Fatalf("submit: %d %s", st, b)
	}
}

// checkTable computes the windows of the input stream (checking that
// every record prod had acknowledged is there), waits up to wait for the
// table to hold as many and compares them; it returns the windows.
func (r *kinesisRun) checkTable(prod *kinesisCrashProducer, wait time.Duration) map[windowKey]windowVal {
	t := r.t
	t.Helper()
	want := kinesisStreamWindows(t, r.remote, prod.sent())
	conn := r.pg.Connect(t)
	defer conn.Close(r.ctx)
	var got map[windowKey][]windowVal
	if !testutil.Within(wait, func() bool {
		got = tableWindows(t, conn)
		return len(got) >= len(want)
	}) {
		t.Logf("after %v the table holds %d of %d windows\n%s", wait, len(got), len(want), r.srv.Logs())
	}
	compareWindows(t, "postgres table", want, got)
	return want
}

// TestKinesisSourceExactlyOnceKill9 runs a windowed job reading a Kinesis
// stream of a second `runnel serve` (start: latest) into PostgreSQL on the
// real binary, and SIGKILLs the job's server at seeded random moments, at
// least 5 times, while client/producer writes the input: half the batches
// KPL-aggregated (so positions carry sub-sequence numbers), half record by
// record, and the stream resharded from 2 to 4 shards half-way. Every
// restart resumes from the checkpointed positions (the latest start as the
// time the shard was first opened, sequence/sub-sequence numbers after
// that). The table must then hold exactly the windows a batch computation
// over the stream's user records gives (as a KCL reads them: de-aggregated,
// filtered to each shard's hash range): nothing missing, nothing twice,
// nothing wrong; and the stream must hold every record produced.
func TestKinesisSourceExactlyOnceKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary twice and PostgreSQL; skipped in -short mode")
	}
	r := startKinesisRun(t, "events:2")
	r.submit(kinesisCrashJob(r.remote.URL, r.pg.DSN))
	// start: latest skips what the stream held when the job first opened
	// its shards: produce once a checkpoint holds those opening positions.
	if !testutil.Within(2*time.Minute, func() bool { return completedCheckpoints(r.srv) > 0 }) {
		t.Fatalf("no checkpoint of the job after 2 minutes\n%s", r.srv.Logs())
	}

	prod := newKinesisCrashProducer(t, r.remote)
	// Aggregated batches so large that one aggregated record holds more
	// user records than the job reads at once (512): reads end inside
	// aggregated records, and checkpoints hold positions with
	// sub-sequence numbers.
	const batches, aggBatch, plainBatch = 30, 1500, 100
	produced := prod.produce(r.ctx, batches, aggBatch, plainBatch, 100*time.Millisecond, func(b int) error {
		if b != batches/2 {
			return nil
		}
		// The reshard: both shards split; the children are read after
		// their parents, from their beginning.
		_, err := r.remote.Client().UpdateShardCount(r.ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String("events"),
			TargetShardCount: aws.Int32(4), ScalingType: types.ScalingTypeUniformScaling})
		if err != nil {
			return fmt.Errorf("reshard: %w", err)
		}
		return nil
	})
	kills := r.srv.killWhileProducing(r.rng, produced, 5)
	t.Logf("%d kills while %d records were produced", kills, prod.n)
	prod.end(r.ctx, t)
	r.checkTable(prod, 3*time.Minute)
}

// completedCheckpoints counts the job's completed checkpoints, 0 while
// the server does not answer.
func completedCheckpoints(srv *supervised) int {
	st, b := srv.Do("GET", "/api/v1/jobs/kinesis-crash", "", "")
	if st != 200 {
		return 0
	}
	var v jobView
	if json.Unmarshal(b, &v) != nil {
		return 0
	}
	return v.completed()
}

// kinesisCrashProducer writes the input through two producers, one
// aggregating, and keeps what it sent.
type kinesisCrashProducer struct {
	agg, plain *producer.Producer
	n          int // records put so far
	mu         sync.Mutex
	failed     []producer.Result
	acked      map[string]int // record id → acknowledgements
}

func newKinesisCrashProducer(t *testing.T, remote *testsrv.Runnel) *kinesisCrashProducer {
	t.Helper()
	p := &kinesisCrashProducer{acked: map[string]int{}}
	onResult := func(r producer.Result) {
		p.mu.Lock()
		defer p.mu.Unlock()
		if r.Err != nil {
			p.failed = append(p.failed, r)
			return
		}
		var v struct{ ID string }
		json.Unmarshal(r.Data, &v)
		p.acked[v.ID]++
	}
	var err error
	for _, x := range []struct {
		p   **producer.Producer
		agg bool
	}{{&p.agg, true}, {&p.plain, false}} {
		*x.p, err = producer.New(context.Background(), producer.Target{Stream: "events", Client: remote.Client()},
			producer.Options{Aggregate: x.agg, Linger: 5 * time.Millisecond, OnResult: onResult})
		if err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// batch puts batch b: aggN records aggregated when b is even, plainN
// records one by one when it is odd (20 keys, event times 20 ms apart and
// increasing with the put order), and waits until they are acknowledged:
// each shard's event times then only grow.
func (p *kinesisCrashProducer) batch(ctx context.Context, b, aggN, plainN int) error {
	pr, n := p.plain, plainN
	if b%2 == 0 {
		pr, n = p.agg, aggN
	}
	rng := rand.New(rand.NewSource(int64(b)))
	for range n {
		seq := p.n
		p.n++
		k := fmt.Sprintf("k%02d", rng.Intn(20))
		d := fmt.Appendf(nil, `{"id":"r%d","k":%q,"ts":%d,"v":%d}`, seq, k, crashBase+int64(seq)*20, rng.Intn(100))
		if err := pr.Put(ctx, k, d); err != nil {
			return err
		}
	}
	return pr.Flush(ctx)
}

// produce puts batches batches (see batch) gap apart, calling before
// ahead of each, and reports on the channel it returns when it is done
// or the first error.
func (p *kinesisCrashProducer) produce(ctx context.Context, batches, aggN, plainN int, gap time.Duration, before func(b int) error) <-chan error {
	produced := make(chan error, 1)
	go func() {
		for b := range batches {
			if before != nil {
				if err := before(b); err != nil {
					produced <- err
					return
				}
			}
			if err := p.batch(ctx, b, aggN, plainN); err != nil {
				produced <- err
				return
			}
			time.Sleep(gap)
		}
		produced <- nil
	}()
	return produced
}

// end puts the end records (see ends) and closes the producers.
func (p *kinesisCrashProducer) end(ctx context.Context, t *testing.T) {
	t.Helper()
	if err := p.ends(ctx); err != nil {
		t.Fatal(err)
	}
	p.close(t)
}

// ends puts a record far ahead in event time under 64 keys, so every open
// shard has one and the watermark passes every window of the input.
func (p *kinesisCrashProducer) ends(ctx context.Context) error {
	for i := range 64 {
		if err := p.plain.Put(ctx, fmt.Sprintf("end-%d", i), fmt.Appendf(nil, `{"id":"end%d","k":"end","ts":%d,"v":0}`, i, crashBase+10_000_000)); err != nil {
			return err
		}
	}
	return p.plain.Flush(ctx)
}

func (p *kinesisCrashProducer) close(t *testing.T) {
	t.Helper()
	for _, pr := range []*producer.Producer{p.agg, p.plain} {
		if err := pr.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.failed {
		t.Errorf("producer: record %s failed: %v", r.Data, r.Err)
	}
}

// sent returns the ids of the records the producers had acknowledged.
func (p *kinesisCrashProducer) sent() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.acked
}

// kinesisStreamWindows reads every shard of the remote stream from its
// beginning with GetRecords, de-aggregates KPL records and drops user
// records outside their shard's hash range (as the KCL does), checks that
// every acknowledged record is there, and computes the windows over what
// it read: the batch answer the job must give.
func kinesisStreamWindows(t *testing.T, remote *testsrv.Runnel, acked map[string]int) map[windowKey]windowVal {
	t.Helper()
	ctx := context.Background()
	c := remote.Client()
	ls, err := c.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("events")})
	if err != nil {
		t.Fatal(err)
	}
	ranges := map[string]streams.HashRange{}
	for _, sh := range ls.Shards {
		if ranges[*sh.ShardId], err = hashRangeOf(sh.HashKeyRange); err != nil {
			t.Fatal(err)
		}
	}
	want := map[windowKey]windowVal{}
	seen := map[string]int{}
	for _, r := range testsrv.ReadKinesis(t, c, "events") {
		var users [][]byte
		recs, ok, err := kpl.Deaggregate(r.Data)
		switch {
		case err != nil:
			t.Fatalf("shard %s record %s: %v", r.Shard, r.Seq, err)
		case !ok:
			users = append(users, r.Data)
		default:
			if recs, err = kpl.Filter(recs, ranges[r.Shard]); err != nil {
				t.Fatal(err)
			}
			for _, u := range recs {
				users = append(users, u.Data)
			}
		}
		for _, d := range users {
			var v struct {
				ID, K string
				TS, V int64
			}
			if err := json.Unmarshal(d, &v); err != nil {
				t.Fatalf("record %s: %v", d, err)
			}
			seen[v.ID]++
			if v.K == "end" {
				continue
			}
			w := windowKey{v.K, v.TS - v.TS%10_000}
			want[w] = windowVal{want[w].N + 1, want[w].Total + v.V}
		}
	}
	var lost []string
	for id := range acked {
		if seen[id] == 0 {
			lost = append(lost, id)
		}
	}
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	t.Logf("input stream: %d shards, %d user records (%d repeated), %d windows", len(ls.Shards), len(seen), dups, len(want))
	if len(lost) > 0 {
		t.Errorf("%d acknowledged records are not in the input stream as a KCL reads it, e.g. %s", len(lost), strings.Join(lost[:min(8, len(lost))], " "))
	}
	return want
}

func hashRangeOf(r *types.HashKeyRange) (streams.HashRange, error) {
	lo, err := streams.ParseHashKey(aws.ToString(r.StartingHashKey))
	if err != nil {
		return streams.HashRange{}, err
	}
	hi, err := streams.ParseHashKey(aws.ToString(r.EndingHashKey))
	return streams.HashRange{Start: lo, End: hi}, err
}

// tableWindows reads the job's PostgreSQL table (nil while it does not
// exist yet).
func tableWindows(t *testing.T, conn *pgx.Conn) map[windowKey][]windowVal {
	t.Helper()
	got, err := queryWindows(t, context.Background(), conn)
	if err != nil {
		if strings.Contains(err.Error(), "does not exist") {
			return nil
		}
		t.Fatal(err)
	}
	return got
}

// queryWindows reads the window rows of the table results through conn;
// a row that does not scan fails the test.
func queryWindows(t *testing.T, ctx context.Context, conn *pgx.Conn) (map[windowKey][]windowVal, error) {
	t.Helper()
	rows, err := conn.Query(ctx, `SELECT key, (extract(epoch from window_start) * 1000)::bigint, n, total FROM results`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	got := map[windowKey][]windowVal{}
	for rows.Next() {
		var k windowKey
		var v windowVal
		if err := rows.Scan(&k.Key, &k.Start, &v.N, &v.Total); err != nil {
			t.Fatal(err)
		}
		got[k] = append(got[k], v)
	}
	return got, rows.Err()
}
