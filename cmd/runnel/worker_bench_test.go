package main

import (
	"context"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/runnel-dev/runnel/cluster"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// BenchmarkWorker runs the worker test's job over 200,000 clicks already in
// Kafka with one worker and reports records/s from the worker's start to
// the last window's result (group join and changelog topics included) and
// the worker process's CPU time per record. Compare with
// `runnel bench job --only js`, the same kind of job in one process.
func BenchmarkWorker(b *testing.B) {
	const n = 200_000
	for range b.N {
		c := newWorkerCluster(b)
		gen := &clickGen{rng: testutil.Rand(b, 1)}
		for range n / 10_000 {
			produceClicks(b, c.prod, gen.make(10_000))
		}
		produceEnd(b, c.prod, workerPartitions)
		want := len(batchWindows(gen.all))
		start := time.Now()
		w := c.worker(b, "w1")
		got, _ := readResults(b, c.kafka.Addr, want, 10*time.Minute)
		rows := len(got)
		elapsed := time.Since(start)
		w.cmd.Process.Signal(syscall.SIGTERM)
		w.cmd.Wait()
		st := w.cmd.ProcessState
		w.cmd = nil
		if rows != want {
			log, _ := os.ReadFile(w.log.Name())
			b.Fatalf("%d result rows, want %d; worker log:\n%s", rows, want, log)
		}
		cpu := st.UserTime() + st.SystemTime()
		b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
		b.ReportMetric(float64(cpu.Microseconds())/n, "worker-cpu-µs/record")
	}
}

// BenchmarkWorkerFailover runs two workers under a steady input, kills one
// with SIGKILL and reports the seconds until every source partition it
// owned has its committed offset moving again (processed by the other).
func BenchmarkWorkerFailover(b *testing.B) {
	for range b.N {
		c := newWorkerCluster(b)
		cl := c.prod
		adm := kadm.NewClient(cl)
		gen := &clickGen{rng: testutil.Rand(b, 1)}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { // the steady input
			defer close(done)
			for ctx.Err() == nil {
				produceClicks(b, cl, gen.make(200))
				time.Sleep(50 * time.Millisecond)
			}
		}()
		// RUNNEL_FAILOVER_SESSION sets --session-timeout (default: the worker's).
		var args []string
		if s := os.Getenv("RUNNEL_FAILOVER_SESSION"); s != "" {
			args = []string{"--session-timeout", s}
		}
		w1 := c.worker(b, "w1", args...)
		w2 := c.worker(b, "w2", args...)
		group := cluster.GroupName("page-views")
		var owned []int32
		testutil.Eventually(b, 2*time.Minute, func() bool {
			owned = ownedBy(ctx, adm, group, "w2")
			return len(owned) > 0 && len(ownedBy(ctx, adm, group, "w1")) > 0
		}, "both workers own source partitions")
		time.Sleep(3 * time.Second)
		before, err := adm.FetchOffsets(ctx, group)
		if err != nil {
			b.Fatal(err)
		}
		killed := time.Now()
		w2.kill()
		testutil.Eventually(b, 2*time.Minute, func() bool {
			now, err := adm.FetchOffsets(ctx, group)
			if err != nil {
				return false
			}
			for _, p := range owned {
				o, _ := now.Lookup("clicks", p)
				was, _ := before.Lookup("clicks", p)
				if o.At <= was.At {
					return false
				}
			}
			return true
		}, "the killed worker's partitions processed again")
		b.ReportMetric(time.Since(killed).Seconds(), "s-to-failover")
		cancel()
		<-done
		w1.kill()
	}
}

// ownedBy returns the source partitions the group assigned to a worker
// (a member's client id is the worker's transactional id).
func ownedBy(ctx context.Context, adm *kadm.Client, group, worker string) []int32 {
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return nil
	}
	var out []int32
	for _, m := range gs[group].Members {
		if m.ClientID != cluster.TransactionalID("page-views", worker) {
			continue
		}
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				if t.Topic == "clicks" {
					out = append(out, t.Partitions...)
				}
			}
		}
	}
	return out
}
