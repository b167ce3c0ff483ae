package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/cluster"
	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// The job of the worker tests: clicks keyed by user in the input, counted
// per page (a key change, so a repartition hop) in tumbling event-time
// windows. Records with "end" only move the watermark past the last window.
const workerJob = `name: page-views
source:
  kafka: {brokers: [%[1]s], topics: [clicks]}
  event_time: "r => r.ts"
  watermark: 2s
operators:
  - id: real
    filter: "r => !r.end"
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 1s
      aggregate: {views: count, total: sum(ms)}
sinks:
  - {id: out, input: per-page, kafka: {brokers: [%[1]s], topic: page-views}}
`

type click struct {
	User string `json:"user"`
	Page string `json:"page"`
	Ms   int64  `json:"ms"`
	TS   int64  `json:"ts"`
	End  bool   `json:"end,omitempty"`
}

// windowRow is a result row, compared as text.
type windowRow struct {
	Start, End int64
	Key        string
	Views      int64
	Total      float64
}

func (r windowRow) String() string {
	return fmt.Sprintf("%s [%d,%d) views=%d total=%g", r.Key, r.Start, r.End, r.Views, r.Total)
}

// clickGen makes clicks whose event times grow with at most 1s of
// disorder, under the job's 2s watermark: no record is late, so the
// windows are those of a batch computation over all of them.
type clickGen struct {
	rng  *rand.Rand
	next int64
	all  []click
}

func (g *clickGen) make(n int) []click {
	out := make([]click, n)
	for i := range out {
		g.next += g.rng.Int64N(4)
		out[i] = click{User: fmt.Sprint("u", g.rng.IntN(40)), Page: fmt.Sprint("/p", g.rng.IntN(12)),
			Ms: g.rng.Int64N(100), TS: 1_700_000_000_000 + g.next + g.rng.Int64N(1000)}
	}
	g.all = append(g.all, out...)
	return out
}

// batchWindows is the batch computation the job must equal.
func batchWindows(clicks []click) []windowRow {
	type k struct {
		page  string
		start int64
	}
	agg := map[k]*windowRow{}
	for _, c := range clicks {
		s := c.TS - c.TS%1000
		r := agg[k{c.Page, s}]
		if r == nil {
			r = &windowRow{Start: s, End: s + 1000, Key: c.Page}
			agg[k{c.Page, s}] = r
		}
		r.Views++
		r.Total += float64(c.Ms)
	}
	out := make([]windowRow, 0, len(agg))
	for _, r := range agg {
		out = append(out, *r)
	}
	sortRows(out)
	return out
}

func sortRows(rs []windowRow) {
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].Key != rs[j].Key {
			return rs[i].Key < rs[j].Key
		}
		return rs[i].Start < rs[j].Start
	})
}

func produceClicks(t testing.TB, cl *kgo.Client, cs []click) {
	t.Helper()
	var recs []*kgo.Record
	for _, c := range cs {
		b, _ := json.Marshal(c)
		recs = append(recs, &kgo.Record{Topic: "clicks", Key: []byte(c.User), Value: b})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatalf("produce clicks: %v", err)
	}
}

// produceEnd writes a record far in event time into every partition, so
// every window fires.
func produceEnd(t testing.TB, cl *kgo.Client, partitions int32) {
	t.Helper()
	for p := range partitions {
		b, _ := json.Marshal(click{TS: 1_800_000_000_000, End: true})
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: "clicks", Partition: p, Value: b}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// workerProc is one `runnel worker` process.
type workerProc struct {
	t    testing.TB
	id   string
	args []string
	cmd  *exec.Cmd
	log  *os.File
	env  []string // added to the test's environment

	// supervised workers are waited for by a goroutine that starts
	// again one that exits on its own, as a process supervisor would
	// (a worker exits when a transaction cannot end within its timeout;
	// docs/scale-out.md); restarts counts those, and done is closed when
	// the current process has ended.
	supervised bool
	bin        string
	mu         sync.Mutex
	killing    bool
	done       chan struct{}
	restarts   int
}

func startWorker(t testing.TB, bin, brokers, job, id string, extra ...string) *workerProc {
	return startWorkerEnv(t, bin, brokers, job, id, nil, extra...)
}

func startWorkerEnv(t testing.TB, bin, brokers, job, id string, env []string, extra ...string) *workerProc {
	w := &workerProc{t: t, id: id, env: env, args: append([]string{"worker", "--cluster", "kafka://" + brokers, "--job", job, "--id", id,
		"--log-level", "warn"}, extra...)}
	w.start(bin)
	t.Cleanup(w.kill)
	return w
}

func (w *workerProc) start(bin string) {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.startLocked(bin)
}

func (w *workerProc) startLocked(bin string) {
	f, err := os.OpenFile(filepath.Join(w.t.TempDir(), w.id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		w.t.Errorf("worker %s: %v", w.id, err)
		return
	}
	w.log, w.bin = f, bin
	w.cmd = exec.Command(bin, w.args...)
	w.cmd.Stdout, w.cmd.Stderr = f, f
	if len(w.env) > 0 {
		w.cmd.Env = append(os.Environ(), w.env...)
	}
	if err := w.cmd.Start(); err != nil {
		w.t.Errorf("start worker %s: %v", w.id, err)
		w.cmd = nil
		return
	}
	if w.supervised {
		cmd, done := w.cmd, make(chan struct{})
		w.done = done
		go func() {
			err := cmd.Wait()
			close(done)
			w.exited(cmd, err)
		}()
	}
}

// exited starts a supervised worker again when it ended on its own.
func (w *workerProc) exited(cmd *exec.Cmd, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.killing || w.cmd != cmd {
		return
	}
	w.log.Close()
	b, _ := os.ReadFile(w.log.Name())
	w.restarts++
	if strings.Contains(string(b), "end transaction") {
		// A transaction that could not end in time: the group kept
		// rebalancing while it was open (see cluster/static.go).
		w.t.Errorf("worker %s exited by itself, its transaction stalled (%v):\n%s", w.id, err, testutil.Tail(string(b), 2000))
	} else {
		w.t.Logf("worker %s exited by itself (%v); starting it again:\n%s", w.id, err, testutil.Tail(string(b), 2000))
	}
	time.Sleep(200 * time.Millisecond)
	w.startLocked(w.bin)
}

// kill stops the worker with SIGKILL (if it runs) and checks that it had
// not exited on its own with an error (a supervised worker's own exits
// are started again and logged instead).
func (w *workerProc) kill() {
	w.mu.Lock()
	if w.cmd == nil {
		w.mu.Unlock()
		return
	}
	if w.supervised {
		w.killing = true
		w.cmd.Process.Kill()
		done := w.done
		w.mu.Unlock()
		<-done
		w.mu.Lock()
		w.log.Close()
		w.cmd, w.killing = nil, false
		w.mu.Unlock()
		return
	}
	defer w.mu.Unlock()
	if w.cmd.ProcessState == nil {
		w.cmd.Process.Kill()
	}
	err := w.cmd.Wait()
	w.log.Close()
	if st := w.cmd.ProcessState; st != nil && st.Exited() {
		b, _ := os.ReadFile(w.log.Name())
		w.t.Errorf("worker %s exited by itself (%v):\n%s", w.id, err, b)
	}
	w.cmd = nil
}

// pollSecond hands each record cl fetches within a second to each.
func pollSecond(cl *kgo.Client, each func(*kgo.Record)) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	cl.PollFetches(ctx).EachRecord(each)
}

// readResults reads the sink topic (read committed) from the start until
// it has want rows or the timeout passes, then a little longer to catch
// duplicates.
func readResults(t testing.TB, brokers string, want int, timeout time.Duration) (rows []windowRow, perKeyOrder []string) {
	t.Helper()
	cl := testsrv.ReadCommitted(t, "page-views", brokers)
	defer cl.Close()
	last := map[string]int64{}
	deadline := time.Now().Add(timeout)
	var extra time.Time
	for time.Now().Before(deadline) {
		if len(rows) >= want && extra.IsZero() {
			extra = time.Now().Add(5 * time.Second)
		}
		if !extra.IsZero() && time.Now().After(extra) {
			break
		}
		pollSecond(cl, func(r *kgo.Record) {
			var m struct {
				Start int64   `json:"window_start"`
				End   int64   `json:"window_end"`
				Key   string  `json:"key"`
				Views int64   `json:"views"`
				Total float64 `json:"total"`
			}
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Errorf("result %q: %v", r.Value, err)
				return
			}
			if m.Start <= last[m.Key] {
				perKeyOrder = append(perKeyOrder, fmt.Sprintf("%s: window %d after %d", m.Key, m.Start, last[m.Key]))
			}
			last[m.Key] = m.Start
			rows = append(rows, windowRow{m.Start, m.End, m.Key, m.Views, m.Total})
		})
	}
	sortRows(rows)
	return rows, perKeyOrder
}

func checkResults(t *testing.T, got, want []windowRow, order []string) {
	t.Helper()
	if d := testutil.Diff(want, got); d != "" {
		seen := map[string]int{}
		dups := 0
		for _, r := range got {
			if seen[r.String()]++; seen[r.String()] == 2 {
				dups++
			}
		}
		t.Errorf("results differ from the batch computation (%d rows, want %d; %d duplicated):\n%s", len(got), len(want), dups, d)
	}
	if len(order) > 0 {
		t.Errorf("per-key order broken:\n%s", slices.Concat(order[:min(len(order), 20)]))
	}
}

// workerCluster is kfake as its own process with the job's topics, the
// runnel binary, the job file and a producer of clicks.
type workerCluster struct {
	kafka *testsrv.KafkaProcess
	bin   string
	job   string
	prod  *kgo.Client
}

const workerPartitions = 4

func newWorkerCluster(t testing.TB) *workerCluster {
	return newKafkaCluster(t, func(brokers string) string { return fmt.Sprintf(workerJob, brokers) }, "clicks", "page-views")
}

// newKafkaCluster is a workerCluster with the given topics (of
// workerPartitions partitions each) and the job file job(brokers).
func newKafkaCluster(t testing.TB, job func(brokers string) string, topics ...string) *workerCluster {
	c := &workerCluster{kafka: testsrv.StartKafkaProcess(t, workerPartitions, topics...), bin: testbin.Runnel(t)}
	c.job = filepath.Join(t.TempDir(), "job.yaml")
	if err := os.WriteFile(c.job, []byte(job(c.kafka.Addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	if c.prod, err = kgo.NewClient(kgo.SeedBrokers(c.kafka.Addr), kgo.ProducerLinger(5*time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.prod.Close)
	return c
}

func (c *workerCluster) worker(t testing.TB, id string, extra ...string) *workerProc {
	return startWorker(t, c.bin, c.kafka.Addr, c.job, id, extra...)
}

// serveJob starts `runnel serve` as cluster member s1 of c's Kafka and
// submits the cluster's job to it, which must become a cluster job. It
// returns the server and the job file it submitted.
func (c *workerCluster) serveJob(t testing.TB) (*testbin.Server, string) {
	srv := testbin.Start(t, testbin.Options{LogLevel: "info", Flags: []string{"--cluster", "kafka://" + c.kafka.Addr,
		"--cluster-id", "s1", "--cluster-session-timeout", "6s"}})
	job := fmt.Sprintf(workerJob, c.kafka.Addr)
	if st, body := srv.Do("POST", "/api/v1/jobs", "application/yaml", job); st != http.StatusCreated || !strings.Contains(string(body), `"cluster":true`) {
		t.Fatalf("submit to serve --cluster: %d %s, want 201 and a cluster job", st, body)
	}
	return srv, job
}

// consumedAndKilled runs worker w1 with a --data directory over n new
// clicks of gen until the group has consumed them, then kills it.
func (c *workerCluster) consumedAndKilled(t testing.TB, gen *clickGen, n int) (w *workerProc, data string) {
	data = t.TempDir()
	w = c.worker(t, "w1", "--data", data, "--log-level", "info")
	produceClicks(t, c.prod, gen.make(n))
	c.waitConsumed(t)
	w.kill()
	return w, data
}

// One worker runs the job from Kafka to Kafka: the read-committed output
// is the batch computation over the input.
func TestWorkerWindowsOverKafka(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake and a worker")
	}
	c := newWorkerCluster(t)
	gen := &clickGen{rng: testutil.Rand(t, 1)}
	c.worker(t, "w1", "--session-timeout", "6s")
	produceClicks(t, c.prod, gen.make(3000))
	produceEnd(t, c.prod, workerPartitions)
	want := batchWindows(gen.all)
	got, order := readResults(t, c.kafka.Addr, len(want), time.Minute)
	checkResults(t, got, want, order)
}

// Three workers run the job while workers are killed with SIGKILL at
// random moments and restarted, after a scale-out from one worker to
// three and before a scale-in to two: the read-committed output is the
// batch computation over the input, with nothing missing, nothing
// duplicated, no wrong window, and each key's windows in order. Two of
// the workers keep local state, so tasks restore both ways. No worker
// may stop by itself on a transaction that could not end.
func TestWorkerKillNine(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake and three workers")
	}
	c := newWorkerCluster(t)
	rng := testutil.Rand(t, 1)
	gen := &clickGen{rng: rng}

	// w1 and w2 keep local state (the same directory in every life), w3
	// restores from changelogs only.
	dataRoot := t.TempDir()
	supervised := func(id string) *workerProc {
		w := &workerProc{t: t, id: id, supervised: true, args: []string{"worker", "--cluster", "kafka://" + c.kafka.Addr,
			"--job", c.job, "--id", id, "--log-level", "info", "--session-timeout", "6s"}}
		if id != "w3" {
			w.args = append(w.args, "--data", filepath.Join(dataRoot, id))
		}
		w.start(c.bin)
		t.Cleanup(w.kill)
		return w
	}
	workers := killScenario(t, rng, gen, c.prod, c.bin, supervised)
	want := batchWindows(gen.all)
	got, order := readResults(t, c.kafka.Addr, len(want), 3*time.Minute)
	checkResults(t, got, want, order)
	logRestarts(t, workers)
}

// killScenario is the schedule of the kill tests: one worker started
// (w1), then two more (w2, w3); six times, clicks and a kill -9 of a
// random worker at a random moment, more clicks, and its restart; then w3
// killed for good (3 → 2) and the end records. It returns the workers.
func killScenario(t *testing.T, rng *rand.Rand, gen *clickGen, prod *kgo.Client, bin string, start func(id string) *workerProc) []*workerProc {
	t.Helper()
	pause := func(max time.Duration) { time.Sleep(time.Duration(rng.Int64N(int64(max)))) }
	workers := []*workerProc{start("w1")}
	produceClicks(t, prod, gen.make(1500))
	pause(2 * time.Second)
	t.Log("scale 1 → 3")
	workers = append(workers, start("w2"), start("w3"))
	for i := range 6 {
		produceClicks(t, prod, gen.make(800))
		pause(3 * time.Second)
		v := workers[rng.IntN(len(workers))]
		t.Logf("kill -9 %s (%d)", v.id, i+1)
		v.kill()
		produceClicks(t, prod, gen.make(400))
		pause(2 * time.Second)
		v.start(bin)
	}
	produceClicks(t, prod, gen.make(800))
	pause(2 * time.Second)
	t.Log("scale 3 → 2: kill -9 w3 for good")
	workers[2].kill()
	produceClicks(t, prod, gen.make(800))
	produceEnd(t, prod, workerPartitions)
	// Cleanups run last first: this one runs before the workers' kills.
	t.Cleanup(func() {
		if t.Failed() {
			dumpWorkers(t, "page-views", workers)
		}
	})
	return workers
}

// logRestarts logs how often each supervised worker exited by itself.
func logRestarts(t *testing.T, workers []*workerProc) {
	for _, w := range workers {
		w.mu.Lock()
		if w.restarts > 0 {
			t.Logf("worker %s exited by itself %d times and was started again", w.id, w.restarts)
		}
		w.mu.Unlock()
	}
}

// waitConsumed waits until the job's group consumed every partition of
// the source and of the repartition topic (the committed offset at most
// one short of the end: the end may be a transaction marker).
func (c *workerCluster) waitConsumed(t testing.TB) {
	t.Helper()
	adm := kadm.NewClient(c.prod)
	group := cluster.GroupName("page-views")
	testutil.Eventually(t, 3*time.Minute, func() bool {
		lags, err := adm.Lag(context.Background(), group)
		if err != nil || lags[group].FetchErr != nil || lags[group].DescribeErr != nil {
			return false
		}
		topics := 0
		for _, ps := range lags[group].Lag {
			topics++
			for _, l := range ps {
				if l.Err != nil || l.Commit.At < 0 || l.Lag > 1 {
					return false
				}
			}
		}
		return topics == 2
	}, "the workers consumed their input")
}

// restoredRe matches a worker's "task restored" log line (text format).
var restoredRe = regexp.MustCompile(`msg="task restored" task=(\S+) .*? local=(\d+) from_offset=(\d+) tail=(\d+)`)

// A worker restarted with its --data directory restores its tasks from
// its local state and the changelog records after it, not from the whole
// changelog, and its output still equals the batch computation.
func TestWorkerRestoresFromLocalState(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake and a worker")
	}
	c := newWorkerCluster(t)
	gen := &clickGen{rng: testutil.Rand(t, 1)}
	w, _ := c.consumedAndKilled(t, gen, 3000)
	first, _ := os.ReadFile(w.log.Name())
	w.start(c.bin)
	produceEnd(t, c.prod, workerPartitions)
	want := batchWindows(gen.all)
	got, order := readResults(t, c.kafka.Addr, len(want), 2*time.Minute)
	checkResults(t, got, want, order)

	sum := func(log []byte) (tasks, local, tail int) {
		for _, m := range restoredRe.FindAllSubmatch(log, -1) {
			tasks++
			n, _ := strconv.Atoi(string(m[2]))
			local += n
			n, _ = strconv.Atoi(string(m[4]))
			tail += n
		}
		return
	}
	w.kill()
	second, _ := os.ReadFile(w.log.Name())
	tasks1, local1, tail1 := sum(first)
	tasks2, local2, tail2 := sum(second)
	t.Logf("first life: %d tasks restored, %d local records, %d changelog records; second: %d, %d, %d",
		tasks1, local1, tail1, tasks2, local2, tail2)
	if local1 != 0 {
		t.Errorf("the first life restored %d records from an empty data directory", local1)
	}
	if tasks2 < workerPartitions || local2 == 0 || tail2 >= local2 {
		t.Errorf("the restarted worker restored %d tasks from %d local records and %d changelog records: want all %d tasks, mostly from local state\n%s",
			tasks2, local2, tail2, workerPartitions, testutil.Tail(string(second), 3000))
	}
}

// A task with no local state (its worker on a new machine, an empty
// --data) restores from its snapshot on S3-compatible storage (versitygw)
// plus the changelog records after it, and the output still equals the
// batch computation.
func TestWorkerRestoresFromSnapshot(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake, versitygw and a worker")
	}
	s3p := testsrv.StartS3(t, "snaps")
	c := newWorkerCluster(t)
	gen := &clickGen{rng: testutil.Rand(t, 1)}
	snap := "s3://snaps/runnel?endpoint=" + s3p.Endpoint
	args := []string{"--snapshot", snap, "--snapshot-every", "1", "--log-level", "info"}
	w := startWorkerEnv(t, c.bin, c.kafka.Addr, c.job, "w1", s3p.Env(), append([]string{"--data", t.TempDir()}, args...)...)
	produceClicks(t, c.prod, gen.make(3000))
	c.waitConsumed(t)
	testutil.Eventually(t, 2*time.Minute, func() bool {
		return len(s3p.Objects(t, "snaps", "runnel/page-views/per-page/")) == workerPartitions
	}, "a snapshot of every task")
	w.kill()
	// The same worker id on a new machine: an empty data directory.
	w = startWorkerEnv(t, c.bin, c.kafka.Addr, c.job, "w1", s3p.Env(), append([]string{"--data", t.TempDir()}, args...)...)
	produceEnd(t, c.prod, workerPartitions)
	want := batchWindows(gen.all)
	got, order := readResults(t, c.kafka.Addr, len(want), 2*time.Minute)
	checkResults(t, got, want, order)
	w.kill()
	log, _ := os.ReadFile(w.log.Name())
	fromSnap := strings.Count(string(log), `msg="task state read from its snapshot"`)
	tasks, local := 0, 0
	for _, m := range restoredRe.FindAllSubmatch(log, -1) {
		tasks++
		n, _ := strconv.Atoi(string(m[2]))
		local += n
	}
	if fromSnap != workerPartitions || tasks != workerPartitions || local == 0 {
		t.Errorf("the worker on an empty data directory restored %d tasks (%d records from snapshots), %d of them from snapshots: want all %d\n%s",
			tasks, local, fromSnap, workerPartitions, testutil.Tail(string(log), 3000))
	}
}

// A worker stopped with SIGTERM leaves the group before it exits, although
// it is a static member (which Kafka keeps in the group across restarts):
// its partitions move at once, not after the session timeout.
func TestWorkerLeavesGroupOnStop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake and two workers")
	}
	c := newWorkerCluster(t)
	gen := &clickGen{rng: testutil.Rand(t, 1)}
	c.worker(t, "w1")
	w2 := c.worker(t, "w2")
	produceClicks(t, c.prod, gen.make(500))
	adm := kadm.NewClient(c.prod)
	group := cluster.GroupName("page-views")
	ctx := context.Background()
	testutil.Eventually(t, 3*time.Minute, func() bool {
		return len(ownedBy(ctx, adm, group, "w1")) > 0 && len(ownedBy(ctx, adm, group, "w2")) > 0
	}, "both workers own source partitions")
	w2.mu.Lock()
	if err := w2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	err := w2.cmd.Wait()
	w2.log.Close()
	w2.cmd = nil
	w2.mu.Unlock()
	if err != nil {
		b, _ := os.ReadFile(w2.log.Name())
		t.Fatalf("worker w2 stopped with %v:\n%s", err, b)
	}
	gs, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range gs[group].Members {
		if m.ClientID == cluster.TransactionalID("page-views", "w2") {
			t.Errorf("the stopped worker w2 is still a member of %s (member %s)", group, m.MemberID)
		}
	}
}
