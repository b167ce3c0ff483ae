package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams/kpl"
)

// kinesisRemoteJob reads the stream `events` of the remote Runnel at
// remote, sums per key over 10-second event-time windows and writes the
// windows exactly once to PostgreSQL at dsn, and at least once to the
// stream `out` of the remote Runnel and of kinesis-local at local.
func kinesisRemoteJob(remote, dsn, local string) string {
	return perKeyJob("kinesis-remote", kinesisSource(remote, "trim_horizon"), "1s", fmt.Sprintf(
		"  - {id: table, input: per-key, postgres: {dsn: %q, table: results, create_table: true}}\n"+
			"  - {id: remote, input: per-key, kinesis: {stream: out, endpoint: %q, region: us-east-1}}\n"+
			"  - {id: local, input: per-key, kinesis: {stream: out, endpoint: %q, region: us-east-1, aggregate: true}}",
		dsn, remote, local), "300ms")
}

// remoteChaos is what TestKinesisRemoteDies does to the servers: the
// remote Runnel (killed and started again on its data directory and
// port, or paused), kinesis-local (paused, never killed: it keeps its
// streams in memory) and the job's own server (killed).
type remoteChaos struct {
	t      *testing.T
	rng    *rand.Rand
	remote *testsrv.Runnel
	local  *testsrv.KinesisLocal
	srv    *supervised
	counts map[string]int
	// remoteBack is when the latest outage of the remote ended.
	remoteBack time.Time
}

// step does one thing at random, then waits for it to be undone; each
// outage lasts 0.3 to 4 s.
func (c *remoteChaos) step(ctx context.Context) {
	outage := time.Duration(300+c.rng.Intn(3700)) * time.Millisecond
	switch n := c.rng.Intn(10); {
	case n < 3:
		c.counts["remote killed"]++
		c.remote.Kill()
		ready := c.jobServerDiesToo(outage)
		c.startRemote()
		c.remoteBack = time.Now()
		ready()
	case n < 5:
		c.counts["remote paused"]++
		c.remote.Signal(syscall.SIGSTOP)
		ready := c.jobServerDiesToo(outage)
		c.remote.Signal(syscall.SIGCONT)
		c.remoteBack = time.Now()
		ready()
	case n < 7:
		c.counts["kinesis-local paused"]++
		c.local.Signal(syscall.SIGSTOP)
		time.Sleep(outage)
		c.local.Signal(syscall.SIGCONT)
	case n < 8:
		c.counts["job server killed"]++
		c.srv.Kill()
		c.srv.start()
	default:
		// A reshard of the input or of the remote sink's stream: its
		// shards split, or merged back.
		stream := []string{"events", "out"}[c.rng.Intn(2)]
		d, err := c.remote.Client().DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(stream)})
		if err != nil {
			c.t.Fatalf("describe %s: %v", stream, err)
		}
		target := int32(4)
		if aws.ToInt32(d.StreamDescriptionSummary.OpenShardCount) >= 4 {
			target = 2
		}
		_, err = c.remote.Client().UpdateShardCount(ctx, &kinesis.UpdateShardCountInput{StreamName: aws.String(stream),
			TargetShardCount: aws.Int32(target), ScalingType: types.ScalingTypeUniformScaling})
		switch {
		case err == nil:
			c.counts[fmt.Sprintf("%s resharded to %d", stream, target)]++
		case kinesisconn.Code(err) == "ResourceInUseException" || kinesisconn.Code(err) == "InvalidArgumentException" || kinesisconn.Code(err) == "LimitExceededException":
			// Already that many, or another reshard is under way.
		default:
			c.t.Errorf("reshard %s to %d: %v", stream, target, err)
		}
	}
}

// jobServerDiesToo waits out an outage of the remote, during which the
// job's server is killed and started again one time in three: the job
// starts while the remote does not answer. The returned func waits until
// that server is ready, once the outage is over: `runnel serve` starts
// its jobs before it listens, and a job's start lists its kinesis
// source's shards, so the server cannot be ready before the remote is.
func (c *remoteChaos) jobServerDiesToo(outage time.Duration) (ready func()) {
	if c.rng.Intn(3) != 0 {
		time.Sleep(outage)
		return func() {}
	}
	c.counts["job server killed during the outage"]++
	c.srv.Kill()
	started := make(chan error, 1)
	go func() { started <- c.srv.TryStart() }()
	time.Sleep(outage)
	return func() {
		if err := <-started; err != nil {
			c.t.Fatalf("the job's server, started during an outage of the remote: %v", err)
		}
	}
}

func (c *remoteChaos) startRemote() {
	for try := 1; ; try++ {
		err := c.remote.TryStart()
		if err == nil {
			return
		}
		if try == 3 {
			c.t.Fatalf("the remote runnel serve does not start again: %v", err)
		}
	}
}

// TestKinesisRemoteDies runs a checkpointing job on the real binary that
// reads a Kinesis stream of a second `runnel serve` and writes 10-second
// windows exactly once to PostgreSQL and at least once to a kinesis sink
// on that server and to one on kinesis-local, while client/producer
// writes the input; at seeded random moments the remote server is killed
// and started again or paused, kinesis-local is paused, either server's
// streams are resharded, and the job's own server is killed. After the
// last outage the table must hold each window of a batch computation
// over the input stream exactly once, and each kinesis sink's records,
// deduplicated by runnel_id, the same windows (each at least once). A
// job's server killed during an outage starts while the remote is down.
// Last, the remote is paused for 15 s under the running job, which must
// warn, naming the endpoint and the stream, that it gets no answer.
func TestKinesisRemoteDies(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary twice, kinesis-local and PostgreSQL; skipped in -short mode")
	}
	r := startKinesisRun(t, "events:2,out:2")
	ctx, remote, srv := r.ctx, r.remote, r.srv
	local := testsrv.StartKinesisLocal(t, "CREATE_STREAM_DURATION=100ms", "UPDATE_SHARD_COUNT_DURATION=100ms")
	lc := testsrv.KinesisClient(local.URL)
	// kinesis-local may say it listens a moment before it answers.
	var err error
	if !testutil.Within(time.Minute, func() bool {
		_, err = lc.CreateStream(ctx, &kinesis.CreateStreamInput{StreamName: aws.String("out"), ShardCount: aws.Int32(2)})
		return err == nil || !kinesisconn.Retryable(err)
	}) || err != nil {
		t.Fatalf("create kinesis-local's stream out: %v", err)
	}
	if !testutil.Within(time.Minute, func() bool {
		d, err := lc.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String("out")})
		return err == nil && d.StreamDescriptionSummary.StreamStatus == types.StreamStatusActive
	}) {
		t.Fatal("kinesis-local's stream out is not ACTIVE after a minute")
	}
	r.submit(kinesisRemoteJob(remote.URL, r.pg.DSN, local.URL))

	prod := newKinesisCrashProducer(t, remote)
	const batches, aggBatch, plainBatch = 16, 400, 100
	produced := prod.produce(ctx, batches, aggBatch, plainBatch, 300*time.Millisecond, nil)
	rng := r.rng
	chaos := &remoteChaos{t: t, rng: rng, remote: remote, local: local, srv: srv, counts: map[string]int{}}
	for done, steps := false, 0; !done || steps < 6; steps++ {
		select {
		case err := <-produced:
			if err != nil {
				t.Fatal(err)
			}
			done = true
		default:
		}
		time.Sleep(time.Duration(200+rng.Intn(1000)) * time.Millisecond)
		chaos.step(ctx)
	}
	// A pause of the remote half as long again as the job's call timeout
	// (10 s) under the running job: it must warn that the remote does
	// not answer. First 11 s after the last outage of the remote, longer
	// than the longest backoff (10 s): a failure in the series of an
	// earlier outage is warned of only every tenth time, the pause must
	// start a new one.
	time.Sleep(11*time.Second - time.Since(chaos.remoteBack))
	mark := len(srv.AllLogs())
	remote.Signal(syscall.SIGSTOP)
	time.Sleep(15 * time.Second)
	remote.Signal(syscall.SIGCONT)
	if !checkRemoteWarned(t, srv.AllLogs()[mark:], remote.URL) {
		_, b := srv.Do("GET", "/api/v1/jobs/kinesis-remote", "", "")
		t.Logf("the job after the pause: %s", b)
	}
	t.Logf("chaos: %v, then a 15 s pause of the remote", chaos.counts)
	prod.end(ctx, t)
	want := r.checkTable(prod, 2*time.Minute)
	for _, out := range []struct {
		what string
		c    *kinesis.Client
	}{{"remote runnel's stream out", remote.Client()}, {"kinesis-local's stream out", lc}} {
		var got map[windowKey][]windowVal
		testutil.Within(time.Minute, func() bool {
			got = sinkWindows(t, out.c)
			return len(got) >= len(want)
		})
		compareWindows(t, out.what+" (deduplicated by runnel_id)", want, got)
	}
}

// sinkWindows reads the stream out through c, de-aggregates its records
// and keeps one row per runnel_id; the same id with other contents fails
// the test.
func sinkWindows(t *testing.T, c *kinesis.Client) map[windowKey][]windowVal {
	t.Helper()
	byID := map[string]string{}
	got := map[windowKey][]windowVal{}
	for _, d := range userRecords(t, testsrv.ReadKinesis(t, c, "out")) {
		var v struct {
			WindowStart int64  `json:"window_start"`
			Key         string `json:"key"`
			N           int64  `json:"n"`
			Total       int64  `json:"total"`
			ID          string `json:"runnel_id"`
		}
		if err := json.Unmarshal(d, &v); err != nil {
			t.Fatalf("sink record %s: %v", d, err)
		}
		if prev, ok := byID[v.ID]; ok {
			if prev != string(d) {
				t.Errorf("runnel_id %s names two records: %s and %s", v.ID, prev, d)
			}
			continue
		}
		byID[v.ID] = string(d)
		if v.Key == "end" {
			continue
		}
		k := windowKey{v.Key, v.WindowStart}
		got[k] = append(got[k], windowVal{v.N, v.Total})
	}
	return got
}

// checkRemoteWarned checks that the job's server logged, at WARN, that
// endpoint did not answer, naming it and the stream (and the shard, for
// calls on one), in logs: its output during a pause of the remote. Which
// part of the job waits on the remote (the source's reads, or the sink's
// flush that holds a checkpoint and so the reads) depends on the moment.
func checkRemoteWarned(t *testing.T, logs, endpoint string) bool {
	t.Helper()
	var warned []string
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, " WARN ") && strings.Contains(line, "endpoint="+endpoint) && strings.Contains(line, "stream=") {
			warned = append(warned, line)
		}
	}
	if len(warned) == 0 {
		t.Errorf("the job's server did not warn, naming %s and a stream, while the remote was paused; its output then:\n%s", endpoint, testutil.Tail(logs, 4000))
		return false
	}
	t.Logf("while the remote was paused the job's server warned %d times, first: %s", len(warned), warned[0])
	return true
}

// userRecords returns the data of recs with KPL aggregated records
// de-aggregated into their user records.
func userRecords(t *testing.T, recs []testsrv.KinesisRecord) [][]byte {
	t.Helper()
	var out [][]byte
	for _, r := range recs {
		users, ok, err := kpl.Deaggregate(r.Data)
		switch {
		case err != nil:
			t.Fatalf("shard %s record %s: %v", r.Shard, r.Seq, err)
		case !ok:
			out = append(out, r.Data)
		default:
			for _, u := range users {
				out = append(out, u.Data)
			}
		}
	}
	return out
}
