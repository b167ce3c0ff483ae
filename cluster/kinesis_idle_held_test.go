package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testsrv/kfakegroup"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/jobs"
)

// TestKinesisHeldCommitDoesNotIdleShards is TestHeldCommitDoesNotIdlePartitions
// for Kinesis shards: a shard's reader waits, after handing a batch to the
// worker's loop, until the transaction holding it committed. The test
// holds that commit (the broker answers EndTxn late) for longer than the
// idle timeout: the time does not count toward the shard's idleness, so
// its next record, read a moment after the commit let go, is not late
// for a window that fired on the other shard's watermark.
func TestKinesisHeldCommitDoesNotIdleShards(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake, PostgreSQL, a Kinesis endpoint and a worker")
	}
	testsrv.AWSTestKeys(t)
	pg := testsrv.StartPostgres(t)
	kf, err := kfake.NewCluster(kfake.Ports(0), kfake.SeedTopics(1, "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kf.Close)
	stopGroups, err := kfakegroup.Start(kf, logWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stopGroups)
	brokers := kf.ListenAddrs()
	endpoint := kinesisEndpoint(t, "in:2")
	ctx := context.Background()
	kc := testsrv.KinesisClient(endpoint)

	const job = "kheld"
	spec, err := jobs.Parse([]byte(fmt.Sprintf(`name: %[2]s
source:
  kinesis: {stream: in, endpoint: %[3]q, region: us-east-1, poll_interval: 100ms}
  event_time: "r => r.ts"
operators:
  - id: per-k
    window: {key: "r => r.k", tumbling: 1s, aggregate: {n: count}}
sinks:
  - {id: o, input: per-k, kafka: {brokers: [%[1]s], topic: out}}
`, strings.Join(brokers, ","), job, endpoint)))
	if err != nil {
		t.Fatal(err)
	}

	// The commit that the test holds: the first EndTxn after a shard
	// position was written once armed is set (the transaction holding
	// the batch of shard B's record b@160) sleeps for hold.
	const idle = 2500 * time.Millisecond
	const hold = 4 * time.Second // longer than idle
	var armed, positioned atomic.Bool
	var positions atomic.Value // the positions topic's ID, [16]byte
	positions.Store([16]byte{})
	held, released := make(chan struct{}), make(chan struct{})
	kf.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		if armed.Load() {
			for _, tp := range req.(*kmsg.ProduceRequest).Topics {
				if tp.Topic == PositionsTopic(job) || tp.TopicID == positions.Load().([16]byte) {
					positioned.Store(true)
				}
			}
		}
		return nil, nil, false
	})
	kf.ControlKey(kmsg.EndTxn.Int16(), func(kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		if !positioned.Load() || !armed.CompareAndSwap(true, false) {
			return nil, nil, false
		}
		close(held)
		kf.SleepControl(func() { time.Sleep(hold) })
		close(released)
		return nil, nil, false
	})

	runWorker(t, Config{Brokers: brokers, Spec: spec, Partitions: 1, IdleTimeout: idle, CommitInterval: 100 * time.Millisecond,
		SessionTimeout: 15 * time.Second, Leases: pg.DSN, LeaseDuration: 15 * time.Second})
	db := pg.Pool(t)
	testutil.Eventually(t, time.Minute, func() bool {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM runnel_consumer_leases WHERE stream = 'in' AND group_name = $1 AND owner = 'w1'`,
			GroupName(job)).Scan(&n)
		return err == nil && n == 2
	}, "the worker took both shards' leases")
	admCl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	topics, err := adm.ListTopics(ctx, PositionsTopic(job))
	if err != nil || topics[PositionsTopic(job)].Err != nil {
		t.Fatalf("positions topic: %v %v", err, topics[PositionsTopic(job)].Err)
	}
	positions.Store([16]byte(topics[PositionsTopic(job)].ID))

	const base = int64(1_700_000_000_000)
	// Shard A holds the lower half of the hash keys, B the upper.
	put := func(shard string, ts int64, k string) {
		t.Helper()
		hash := "0"
		if shard == "B" {
			hash = "170141183460469231731687303715884105728" // 2^127
		}
		b, _ := json.Marshal(map[string]any{"k": k, "ts": base + ts})
		if _, err := kc.PutRecord(ctx, &kinesis.PutRecordInput{StreamName: aws.String("in"), Data: b,
			PartitionKey: aws.String(k), ExplicitHashKey: aws.String(hash)}); err != nil {
			t.Fatal(err)
		}
	}
	rep := testsrv.ReadCommitted(t, job+".per-k.repartition", brokers...)
	defer rep.Close()

	put("A", 100, "a")
	put("A", 20_000, "a")
	put("B", 150, "b")
	waitRepartitioned(t, rep, "b", base+150)
	// B's next batch goes into a transaction whose commit is held.
	armed.Store(true)
	put("B", 160, "b")
	<-held
	<-released
	// Not a timed assertion: any pause shorter than the idle timeout
	// after the commit let go (and longer than a commit interval) shows
	// the fault; B's reader was free no longer than the pause.
	time.Sleep(500 * time.Millisecond)
	put("B", 200, "b")
	put("B", 20_000, "b")

	// a@100; b@150, b@160, b@200: the windows before 20 s.
	if counted := countWindows(t, brokers, base, 20_000, 4); counted["b@0"] != 3 {
		t.Fatalf("windows %v, want b@0 counting 3: shard B was taken for idle while its reader waited for the held commit, and its record came late", counted)
	}
}
