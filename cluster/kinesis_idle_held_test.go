package cluster

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
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
	rig := startKinesisRig(t, "in:2")
	expireGroupMembers(t, rig.kf)
	brokers := rig.brokers
	ctx := context.Background()
	kc := testsrv.KinesisClient(rig.endpoint)
	const job = "kheld"
	spec := rig.windowJob(t, job)

	// The commit that the test holds: the first EndTxn after a shard
	// position was written once armed is set (the transaction holding
	// the batch of shard B's record b@160) sleeps for hold.
	const idle = 2500 * time.Millisecond
	const hold = 4 * time.Second // longer than idle
	var positioned atomic.Bool
	var positions atomic.Value // the positions topic's ID, [16]byte
	positions.Store([16]byte{})
	h := holdCommit(rig.kf, hold, positioned.Load)
	rig.kf.ControlKey(kmsg.Produce.Int16(), func(req kmsg.Request) (kmsg.Response, error, bool) {
		rig.kf.KeepControl()
		if h.armed.Load() {
			for _, tp := range req.(*kmsg.ProduceRequest).Topics {
				if tp.Topic == PositionsTopic(job) || tp.TopicID == positions.Load().([16]byte) {
					positioned.Store(true)
				}
			}
		}
		return nil, nil, false
	})

	runWorker(t, Config{Brokers: brokers, Spec: spec, Partitions: 1, IdleTimeout: idle, CommitInterval: 100 * time.Millisecond,
		SessionTimeout: 15 * time.Second, Leases: rig.pg.DSN, LeaseDuration: 15 * time.Second})
	db := rig.pg.Pool(t)
	testutil.Eventually(t, time.Minute, func() bool {
		shards, err := leasedShards(ctx, db, GroupName(job), "w1")
		return err == nil && len(shards) == 2
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
	h.armed.Store(true)
	put("B", 160, "b")
	<-h.held
	<-h.released
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
