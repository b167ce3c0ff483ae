package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// kinesisJob is the Kafka tests' job (workerJob) with a Kinesis source
// on a `runnel serve` at endpoint instead of the topic clicks.
func kinesisJob(brokers, endpoint string) string {
	return strings.Replace(fmt.Sprintf(workerJob, brokers), fmt.Sprintf("kafka: {brokers: [%s], topics: [clicks]}", brokers),
		fmt.Sprintf("kinesis: {stream: clicks, endpoint: %q, region: us-east-1, poll_interval: 100ms}", endpoint), 1)
}

// kinesisCluster is kfake as its own process, a `runnel serve` holding the
// stream clicks (2 shards), a PostgreSQL for the shard leases, the runnel
// binary and the job file.
type kinesisCluster struct {
	kafka *testsrv.KafkaProcess
	kin   *testsrv.Runnel
	kc    *kinesis.Client
	pg    *testsrv.Postgres
	bin   string
	job   string
}

func newKinesisCluster(t testing.TB) *kinesisCluster {
	if testing.Short() {
		t.Skip("starts kfake, PostgreSQL, a server and workers")
	}
	testsrv.AWSTestKeys(t)
	c := &kinesisCluster{kafka: testsrv.StartKafkaProcess(t, workerPartitions, "page-views"), bin: testbin.Runnel(t),
		pg: testsrv.StartPostgres(t)}
	c.kin = testsrv.StartRunnel(t)
	c.kin.CreateStream("clicks", 2)
	c.kc = c.kin.Client()
	c.job = filepath.Join(t.TempDir(), "job.yaml")
	job := kinesisJob(c.kafka.Addr, c.kin.URL)
	if !strings.Contains(job, "kinesis: {stream: clicks") {
		t.Fatalf("the job has no kinesis source:\n%s", job)
	}
	if err := os.WriteFile(c.job, []byte(job), 0o644); err != nil {
		t.Fatal(err)
	}
	return c
}

// worker starts a supervised `runnel worker` on the cluster.
func (c *kinesisCluster) worker(t testing.TB, id string) *workerProc {
	w := &workerProc{t: t, id: id, supervised: true, args: []string{"worker", "--cluster", "kafka://" + c.kafka.Addr,
		"--job", c.job, "--id", id, "--log-level", "warn", "--session-timeout", "6s", "--partitions", fmt.Sprint(workerPartitions),
		"--leases-postgres", c.pg.DSN, "--lease-duration", "3s"}}
	w.start(c.bin)
	t.Cleanup(w.kill)
	t.Cleanup(func() {
		if t.Failed() && w.log != nil {
			b, _ := os.ReadFile(w.log.Name())
			t.Logf("worker %s's log:\n%s", id, testutil.Tail(string(b), 4000))
		}
	})
	return w
}

// put writes clicks to the stream, keyed by user.
func (c *kinesisCluster) put(t testing.TB, cs []click) {
	t.Helper()
	for len(cs) > 0 {
		n := min(len(cs), 500)
		var entries []types.PutRecordsRequestEntry
		for _, cl := range cs[:n] {
			b, _ := json.Marshal(cl)
			entries = append(entries, types.PutRecordsRequestEntry{Data: b, PartitionKey: aws.String(cl.User)})
		}
		out, err := c.kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("clicks"), Records: entries})
		if err != nil || aws.ToInt32(out.FailedRecordCount) != 0 {
			t.Fatalf("put clicks: %v (%v failed)", err, out)
		}
		cs = cs[n:]
	}
}

// reshard sets the stream's open shard count.
func (c *kinesisCluster) reshard(t testing.TB, n int32) {
	t.Helper()
	_, err := c.kc.UpdateShardCount(context.Background(), &kinesis.UpdateShardCountInput{StreamName: aws.String("clicks"),
		TargetShardCount: aws.Int32(n), ScalingType: types.ScalingTypeUniformScaling})
	if err != nil {
		t.Fatalf("reshard to %d: %v", n, err)
	}
}

// end writes a record far in event time into every open shard, so every
// window fires.
func (c *kinesisCluster) end(t testing.TB) {
	t.Helper()
	out, err := c.kc.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("clicks")})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(click{TS: 1_800_000_000_000, End: true})
	for _, s := range out.Shards {
		if s.SequenceNumberRange.EndingSequenceNumber != nil {
			continue
		}
		if _, err := c.kc.PutRecord(context.Background(), &kinesis.PutRecordInput{StreamName: aws.String("clicks"), Data: b,
			PartitionKey: aws.String("end"), ExplicitHashKey: s.HashKeyRange.StartingHashKey}); err != nil {
			t.Fatal(err)
		}
	}
}

// check ends the input (see end) and compares the read-committed output
// with the batch computation over input.
func (c *kinesisCluster) check(t *testing.T, input []click, timeout time.Duration) {
	t.Helper()
	c.end(t)
	want := batchWindows(input)
	got, order := readResults(t, c.kafka.Addr, len(want), timeout)
	checkResults(t, got, want, order)
}

// One worker runs the job from a Kinesis stream resharded 2 → 4 while it
// runs: the read-committed output is the batch computation over the input.
func TestWorkerKinesisReshard(t *testing.T) {
	c := newKinesisCluster(t)
	gen := &clickGen{rng: testutil.Rand(t, 1)}
	c.worker(t, "w1")
	c.put(t, gen.make(1500))
	c.reshard(t, 4)
	c.put(t, gen.make(1500))
	c.check(t, gen.all, 3*time.Minute)
}

// A crash between a worker's Kafka commit and its PostgreSQL checkpoint
// leaves a committed position record ahead of the lease table: the
// shard's next owner skips the records it covers. Here the lease table is
// empty and the positions topic says the first shard was processed up to
// its 500th record: the output is the batch computation over the rest.
func TestWorkerKinesisPositionRecordWins(t *testing.T) {
	c := newKinesisCluster(t)
	gen := &clickGen{rng: testutil.Rand(t, 1)}
	c.put(t, gen.make(2000))
	ctx := context.Background()
	shards, err := c.kc.ListShards(ctx, &kinesis.ListShardsInput{StreamName: aws.String("clicks")})
	if err != nil {
		t.Fatal(err)
	}
	first := aws.ToString(shards.Shards[0].ShardId)
	it, err := c.kc.GetShardIterator(ctx, &kinesis.GetShardIteratorInput{StreamName: aws.String("clicks"), ShardId: aws.String(first),
		ShardIteratorType: types.ShardIteratorTypeTrimHorizon})
	if err != nil {
		t.Fatal(err)
	}
	var recs []types.Record
	for iter := it.ShardIterator; len(recs) < 500; {
		// The client has no retryer; a read the transport cut is tried
		// again with the same iterator, which a read does not use up.
		var out *kinesis.GetRecordsOutput
		for try := 0; try < 3; try++ {
			if out, err = c.kc.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(100)}); err == nil {
				break
			}
			t.Logf("read %s: %v (tried again)", first, err)
		}
		if err != nil || len(out.Records) == 0 {
			t.Fatalf("read %s: %v (%d records)", first, err, len(recs))
		}
		recs, iter = append(recs, out.Records...), out.NextShardIterator
	}
	covered := map[string]bool{}
	for _, r := range recs[:500] {
		covered[string(r.Data)] = true
	}
	var rest []click
	for _, cl := range gen.all {
		if b, _ := json.Marshal(cl); !covered[string(b)] {
			rest = append(rest, cl)
		}
	}
	if len(rest) != len(gen.all)-500 {
		t.Fatalf("%d of %d clicks left after the first 500 of %s", len(rest), len(gen.all), first)
	}
	kc, err := kgo.NewClient(kgo.SeedBrokers(c.kafka.Addr))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	compact := "compact"
	if _, err := kadm.NewClient(kc).CreateTopic(ctx, 1, -1, map[string]*string{"cleanup.policy": &compact}, "page-views.kinesis-positions"); err != nil {
		t.Fatal(err)
	}
	pos := fmt.Sprintf(`{"sequence_number":%q,"worker":"w0","epoch":1}`, aws.ToString(recs[499].SequenceNumber))
	if err := kc.ProduceSync(ctx, &kgo.Record{Topic: "page-views.kinesis-positions", Key: []byte(first), Value: []byte(pos)}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	c.worker(t, "w1")
	c.check(t, rest, 3*time.Minute)
}

// TestWorkerKillNine with a Kinesis source: three workers share the
// stream's shards through the PostgreSQL lease table while workers are
// killed with SIGKILL at random moments and restarted, the stream is
// resharded 2 → 4, and the workers scale 1 → 3 → 2: the read-committed
// output is the batch computation over the input, with nothing missing,
// nothing duplicated, no wrong window, and each key's windows in order.
func TestWorkerKinesisKillNine(t *testing.T) {
	c := newKinesisCluster(t)
	rng := testutil.Rand(t, 1)
	gen := &clickGen{rng: rng}
	pause := func(max time.Duration) { time.Sleep(time.Duration(rng.Int64N(int64(max)))) }

	workers := []*workerProc{c.worker(t, "w1")}
	c.put(t, gen.make(1500))
	pause(2 * time.Second)
	t.Log("scale 1 → 3")
	workers = append(workers, c.worker(t, "w2"), c.worker(t, "w3"))
	for i := range 6 {
		c.put(t, gen.make(800))
		if i == 2 {
			t.Log("reshard 2 → 4")
			c.reshard(t, 4)
		}
		pause(3 * time.Second)
		v := workers[rng.IntN(len(workers))]
		t.Logf("kill -9 %s (%d)", v.id, i+1)
		v.kill()
		c.put(t, gen.make(400))
		pause(2 * time.Second)
		v.start(c.bin)
	}
	c.put(t, gen.make(800))
	pause(2 * time.Second)
	t.Log("scale 3 → 2: kill -9 w3 for good")
	workers[2].kill()
	c.put(t, gen.make(800))
	c.check(t, gen.all, 4*time.Minute)
	logRestarts(t, workers)
}
