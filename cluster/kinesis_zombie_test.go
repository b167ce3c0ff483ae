package cluster

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// A zombie of a Kinesis job, a worker whose shard lease another worker
// took over (it was silent past the lease duration) and that has not
// heard of it yet, must not commit an idle mark for the shard: the
// stages it feeds would count the shard idle, though its new owner has
// records to read, and fire windows before them. The shard's lease, not
// the Kafka group, says who owns a shard, so the mark's group generation
// does not help; the transaction goes through the lease table's fenced
// commit, which refuses it.
//
// Here the worker takes the lease of the stream's one shard; the test
// then holds the group's lock in the lease table (so the worker's Syncs
// wait and it keeps believing it holds the lease) and gives the lease to
// another worker. Once the idle timeout passed, no idle mark of the
// shard may be committed after the takeover.
func TestKinesisZombieIdleMarksAreFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake, PostgreSQL, a Kinesis endpoint and a worker")
	}
	rig := startKinesisRig(t, "in:1")
	brokers := rig.brokers
	ctx := context.Background()
	const job = "kzombie"
	spec := rig.windowJob(t, job)
	var logs testutil.Buffer
	const idle = 5 * time.Second
	runWorker(t, Config{Brokers: brokers, Spec: spec, Partitions: 1, IdleTimeout: idle, Leases: rig.pg.DSN,
		LeaseDuration: 3 * time.Second, Log: slog.New(slog.NewTextHandler(&logs, nil))})

	// The worker holds the shard's lease.
	db := rig.pg.Pool(t)
	group := GroupName(job)
	var shard string
	testutil.Eventually(t, time.Minute, func() bool {
		shards, err := leasedShards(ctx, db, group, "w1")
		if err != nil || len(shards) == 0 {
			return false
		}
		shard = shards[0]
		return true
	}, "the worker took the shard's lease")

	// The worker becomes a zombie: its Syncs wait for the group's lock,
	// which the test holds while the lease goes to w2.
	lock := rig.pg.Connect(t)
	defer lock.Close(ctx)
	key := pgx.Identifier{"runnel_consumer_leases"}.Sanitize() + "/in/" + group
	if _, err := lock.Exec(ctx, `SELECT pg_advisory_lock(hashtextextended($1, 0))`, key); err != nil {
		t.Fatal(err)
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			if _, err := lock.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, key); err != nil {
				t.Fatal(err)
			}
		}
	}
	defer unlock()
	tag, err := lock.Exec(ctx, `UPDATE runnel_consumer_leases SET owner = 'w2', epoch = epoch + 1, expires_at = now() + interval '1 hour'
		WHERE stream = 'in' AND group_name = $1 AND shard = $2 AND owner = 'w1'`, group, shard)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("take the lease over: %v (%v)", err, tag)
	}
	if _, err := lock.Exec(ctx, `INSERT INTO runnel_consumer_workers (stream, group_name, worker, expires_at)
		VALUES ('in', $1, 'w2', now() + interval '1 hour')`, group); err != nil {
		t.Fatal(err)
	}
	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	rep := job + ".per-k.repartition"
	ends, err := adm.ListEndOffsets(ctx, rep)
	if err != nil || ends.Error() != nil || len(ends[rep]) != 1 {
		t.Fatalf("end offsets of %s: %v %v %v, want one partition", rep, err, ends.Error(), ends[rep])
	}
	end, _ := ends.Lookup(rep, 0)

	// Read the repartition topic (read committed, from the end at the
	// takeover) until an idle mark of the shard was committed, or the
	// worker waits for the lock in a fenced commit (its Syncs wait on
	// another statement).
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{rep: {0: kgo.NewOffset().At(end.Offset)}}),
		kgo.KeepControlRecords()) // a transaction's marker shows how far the read got
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var late []string
	next := end.Offset
	poll := func() {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			next = r.Offset + 1
			if producer, ok := header(r, hdrWatermark); ok && producer == shard && string(r.Value) == idleValue && !r.Attrs.IsControl() {
				gen, _ := header(r, hdrGeneration)
				late = append(late, "generation "+gen+" at offset "+strconv.FormatInt(r.Offset, 10))
			}
		})
	}
	// The fenced commit's lock statement (client/consumer's CommitFenced),
	// waiting: should its text change, the wait below times out.
	fenced := func() bool {
		var n int
		err := db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'
			AND query = 'SELECT pg_advisory_xact_lock(hashtextextended($1, 0))'`).Scan(&n)
		return err == nil && n > 0
	}
	testutil.Eventually(t, time.Minute, func() bool {
		poll()
		return len(late) > 0 || fenced()
	}, "the zombie announced the shard idle")
	if len(late) == 0 {
		// Let the fenced commit see the lease, then read what was
		// committed up to the worker's abort.
		unlock()
		testutil.Eventually(t, time.Minute, func() bool {
			return strings.Contains(logs.String(), "a shard lease is no longer this worker's")
		}, "the worker's fenced commit refused the idle mark")
		testutil.Eventually(t, time.Minute, func() bool {
			return strings.Contains(logs.String(), "transaction aborted (the lease table did not confirm its shard leases)")
		}, "the worker's loop says why its transaction was aborted (not a rebalance)")
		stable, err := adm.ListCommittedOffsets(ctx, rep)
		if err != nil || stable.Error() != nil {
			t.Fatalf("last stable offset of %s: %v %v", rep, err, stable.Error())
		}
		to, _ := stable.Lookup(rep, 0)
		testutil.Eventually(t, time.Minute, func() bool {
			poll()
			return next >= to.Offset
		}, "the repartition topic was read to its last stable offset")
	}
	if len(late) > 0 {
		t.Errorf("the zombie committed idle marks of shard %s after its lease was taken over:\n%s\nits log:\n%s",
			shard, strings.Join(late, "\n"), testutil.Tail(logs.String(), 3000))
	}
}
