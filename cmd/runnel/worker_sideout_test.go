package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// A window's late records go to a Kafka sink (`late: per-page`) from the
// task that found them late, in its transaction: across a kill -9 and a
// restart of the worker, each late record is in the sink topic exactly
// once, and the window results are still the batch computation over the
// records that were on time.
func TestWorkerLateRecordsToKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake and a worker")
	}
	c := newKafkaCluster(t, func(brokers string) string {
		return fmt.Sprintf(workerJob, brokers) + fmt.Sprintf("  - {id: late-out, late: per-page, kafka: {brokers: [%s], topic: late-clicks}}\n", brokers)
	}, "clicks", "page-views", "late-clicks")
	gen := &clickGen{rng: testutil.Rand(t, 1)}
	w := c.worker(t, "w1")
	produceClicks(t, c.prod, gen.make(1500))
	produceEnd(t, c.prod, workerPartitions)
	want := batchWindows(gen.all)
	got, order := readResults(t, c.kafka.Addr, len(want), 3*time.Minute)
	checkResults(t, got, want, order)

	// Late: far behind the watermark every window task has now.
	var late []string
	lateClicks := func(from, n int) []click {
		var cs []click
		for i := from; i < from+n; i++ {
			ck := click{User: fmt.Sprint("u", i%40), Page: fmt.Sprint("/p", i%12), Ms: int64(1000 + i), TS: 1_700_000_000_500}
			cs = append(cs, ck)
			late = append(late, fmt.Sprintf("%s %s %d", ck.User, ck.Page, ck.Ms))
		}
		return cs
	}
	produceClicks(t, c.prod, lateClicks(0, 30))
	w.kill()
	w.start(c.bin)
	produceClicks(t, c.prod, lateClicks(30, 30))

	cl := testsrv.ReadCommitted(t, "late-clicks", c.kafka.Addr)
	defer cl.Close()
	var seen []string
	poll := func() {
		pollSecond(cl, func(r *kgo.Record) {
			var ck click
			if err := json.Unmarshal(r.Value, &ck); err != nil {
				t.Errorf("late record %q: %v", r.Value, err)
				return
			}
			seen = append(seen, fmt.Sprintf("%s %s %d", ck.User, ck.Page, ck.Ms))
		})
	}
	testutil.Eventually(t, 3*time.Minute, func() bool { poll(); return len(seen) >= len(late) }, "late records in late-clicks: %d of %d", len(seen), len(late))
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		poll()
	}
	sort.Strings(late)
	sort.Strings(seen)
	if d := testutil.Diff(late, seen); d != "" {
		t.Errorf("the late sink's records are not the late records, once each:\n%s", d)
	}
	got, order = readResults(t, c.kafka.Addr, len(want), time.Minute)
	checkResults(t, got, want, order)
}

// A job whose operators send dead letters to a stream is refused by a
// worker, saying why and what to do instead.
func TestWorkerRefusesDeadLetters(t *testing.T) {
	job := filepath.Join(t.TempDir(), "job.yaml")
	src := strings.Replace(fmt.Sprintf(workerJob, "127.0.0.1:1"), `filter: "r => !r.end"`, "filter: \"r => !r.end\"\n    on_error: {dead_letter: bad-clicks}", 1)
	if err := os.WriteFile(job, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runCLI(t, nil, "worker", "--cluster", "kafka://127.0.0.1:1", "--job", job, "--id", "w1", "--listen", "off")
	if code == 0 || !strings.Contains(stderr, "operator real: on_error: dead letters go to a Runnel stream") {
		t.Errorf("worker with dead letters: exit %d\n%s", code, stderr)
	}
}
