package cluster

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// A zombie, a worker the group removed (silent past its session timeout)
// that has not heard of it yet, must not commit an idle mark: a task of
// the next stage on a worker still in the zombie's generation (a
// cooperative rebalance lets members read on while it runs) would count
// the partition idle, though its new owner has records to read, and fire
// windows before them. An idle mark carries no input offsets, and a
// transaction without offsets commits whatever the group says, so the
// worker commits the partition's offset with it, which the broker refuses
// from a member it no longer knows.
//
// Here the worker reads a record from each partition and commits, is
// removed from the group, and hears nothing of it (its heartbeats are
// answered as if it were still a member); its partitions then go quiet
// for the idle timeout. No idle mark of its generation may be committed
// after its removal.
func TestZombieIdleMarksAreFenced(t *testing.T) {
	if testing.Short() {
		t.Skip("runs kfake and a worker")
	}
	const parts = 2
	kf, brokers := kafkaCluster(t, parts, "in", "out")
	spec := windowJob(t, "zombie", brokers)
	var logs testutil.Buffer
	const idle = 5 * time.Second
	runWorker(t, Config{Brokers: brokers, Spec: spec, IdleTimeout: idle, Log: slog.New(slog.NewTextHandler(&logs, nil))})

	prod, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer prod.Close()
	adm := kadm.NewClient(prod)
	ctx := context.Background()
	group := GroupName("zombie")
	for p := range int32(parts) {
		b, _ := json.Marshal(map[string]any{"k": "a", "ts": 1_700_000_000_000})
		if err := prod.ProduceSync(ctx, &kgo.Record{Topic: "in", Partition: p, Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, time.Minute, func() bool {
		lags, err := adm.Lag(ctx, group)
		if err != nil || lags[group].FetchErr != nil || lags[group].DescribeErr != nil {
			return false
		}
		n := 0
		for _, ps := range lags[group].Lag {
			for _, l := range ps {
				// The end may be a transaction marker.
				if l.Err != nil || l.Commit.At < 0 || l.Lag > 1 {
					return false
				}
				n++
			}
		}
		return n == 2*parts
	}, "the worker consumed a record of each partition and its watermarks")

	// The worker becomes a zombie: removed from the group, its
	// heartbeats still answered.
	kf.ControlKey(int16(kmsg.Heartbeat), func(req kmsg.Request) (kmsg.Response, error, bool) {
		kf.KeepControl()
		return req.(*kmsg.HeartbeatRequest).ResponseKind(), nil, true
	})
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil || len(gs[group].Members) != 1 {
		t.Fatalf("group %s: %v %+v, want one member", group, err, gs[group])
	}
	resp, err := adm.LeaveGroup(ctx, kadm.LeaveGroup(group).InstanceIDs(TransactionalID("zombie", "w1")).Reason("zombie"))
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		t.Fatal(err)
	}
	rep := "zombie.per-k.repartition"
	ends, err := adm.ListEndOffsets(ctx, rep)
	if err != nil {
		t.Fatal(err)
	}
	removedAt := time.Now()

	// Read the repartition topic (read committed) until the zombie has
	// tried to announce its partitions idle (an aborted transaction after
	// the idle timeout) or an idle mark of it was committed.
	cl := testsrv.ReadCommitted(t, rep, brokers...)
	defer cl.Close()
	var late []string
	testutil.Eventually(t, time.Minute, func() bool {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer cancel()
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			end, _ := ends.Lookup(rep, r.Partition)
			if producer, ok := header(r, hdrWatermark); ok && string(r.Value) == idleValue && r.Offset >= end.Offset {
				gen, _ := header(r, hdrGeneration)
				late = append(late, producer+" in generation "+string(gen)+" at offset "+strconv.FormatInt(r.Offset, 10))
			}
		})
		return len(late) > 0 || (time.Since(removedAt) > idle && strings.Contains(logs.String(), "transaction aborted"))
	}, "the zombie announced its partitions idle")
	if len(late) > 0 {
		t.Errorf("the zombie committed idle marks after the group removed it:\n%s\nits log:\n%s",
			strings.Join(late, "\n"), testutil.Tail(logs.String(), 3000))
	}
}
