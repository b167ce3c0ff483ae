package main

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/cluster"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// chaosSink is a PostgreSQL sink added to workerJob's Kafka sink: the
// same windows inserted into a table (a duplicate would be a second row),
// delivered through the outbox.
const chaosSink = `  - id: pglog
    input: per-page
    postgres: {dsn: "%s", table: views_log, create_table: true}
`

// chaosSession is the workers' --session-timeout in the chaos test (the
// brokers' minimum). A pause of a worker lasts 2 to 6 s longer: past the
// idle timeout (10 s) at times, so the zombie may announce its partitions
// idle, and within the transaction timeout (20 s), so its open
// transaction is still there when it resumes.
const chaosSession = 6 * time.Second

// fencedLog is what a worker logs when it finds that the group removed
// it (cluster.Worker's OnPartitionsLost).
const fencedLog = `msg="fenced: this worker lost its partitions`

// signal sends sig to the worker's process if it runs.
func (w *workerProc) signal(sig syscall.Signal) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.cmd != nil {
		w.cmd.Process.Signal(sig)
	}
}

// running says whether the worker's process runs.
func (w *workerProc) running() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cmd != nil
}

// logName is the log file of the worker's current life.
func (w *workerProc) logName() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.Name()
}

// stop stops a supervised worker with SIGTERM, as an operator scaling in
// would, and checks that it exits cleanly within a minute.
func (w *workerProc) stop() {
	w.t.Helper()
	w.mu.Lock()
	if w.cmd == nil {
		w.mu.Unlock()
		return
	}
	w.killing = true
	cmd, done := w.cmd, w.done
	cmd.Process.Signal(syscall.SIGTERM)
	w.mu.Unlock()
	select {
	case <-done:
	case <-time.After(time.Minute):
		w.t.Errorf("worker %s did not stop within a minute of SIGTERM", w.id)
		cmd.Process.Kill()
		<-done
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.log.Close()
	if !cmd.ProcessState.Success() {
		b, _ := os.ReadFile(w.log.Name())
		w.t.Errorf("worker %s stopped with %v:\n%s", w.id, cmd.ProcessState, testutil.Tail(string(b), 3000))
	}
	w.cmd, w.killing = nil, false
}

// A zombie is a worker paused past its session timeout, while it held
// tasks, and resumed: the log of that life must say it was fenced.
type zombie struct {
	id, log string
}

// Three workers run the job (Kafka sink, and PostgreSQL through the
// outbox) while, in a random order at random moments: a worker is killed
// with SIGKILL and started again; a worker is paused (SIGSTOP) for longer
// than its session timeout, so the group gives its partitions to others,
// then resumed (SIGCONT) as a zombie that still holds its open
// transaction and its tasks; kfake is paused for a moment; a fourth
// worker joins, and leaves with SIGTERM. Clicks keep coming throughout.
// The model is the batch computation: once the input ended, the
// read-committed sink topic and the table each hold every window result
// exactly once, none missing, none wrong; every input partition of every
// stage has an owner and no lag; every zombie logged that it was fenced,
// and rejoined (it is in the group at the end).
func TestWorkerChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake, PostgreSQL and four workers")
	}
	pg := testsrv.StartPostgres(t)
	c := newKafkaCluster(t, func(brokers string) string {
		return fmt.Sprintf(workerJob, brokers) + fmt.Sprintf(chaosSink, pg.DSN)
	}, "clicks", "page-views")
	rng := testutil.Rand(t, 1)
	gen := &clickGen{rng: rng}
	dataRoot := t.TempDir()
	start := func(id string) *workerProc {
		w := &workerProc{t: t, id: id, supervised: true, args: []string{"worker", "--cluster", "kafka://" + c.kafka.Addr,
			"--job", c.job, "--id", id, "--log-level", "info", "--session-timeout", chaosSession.String()}}
		if id != "w3" { // w3 restores from changelogs only
			w.args = append(w.args, "--data", filepath.Join(dataRoot, id))
		}
		w.start(c.bin)
		t.Cleanup(w.kill)
		return w
	}
	workers := []*workerProc{start("w1"), start("w2"), start("w3")}
	t.Cleanup(func() {
		if t.Failed() {
			dumpWorkers(t, "page-views", workers)
		}
	})
	zombies := chaosOps(t, rng, c, gen, &workers, start)

	produceClicks(t, c.prod, gen.make(600))
	produceEnd(t, c.prod, workerPartitions)
	want := batchWindows(gen.all)
	got, order := readResults(t, c.kafka.Addr, len(want), 2*time.Minute)
	t.Log("sink topic page-views (read committed):")
	checkResults(t, got, want, order)
	pgc := &sinksCluster{workerCluster: c, pg: pg}
	if !testutil.Within(time.Minute, func() bool { return len(pgc.tableRows(t, "views_log")) >= len(want) }) {
		t.Errorf("the table did not get all %d windows within a minute", len(want))
	}
	time.Sleep(2 * time.Second) // a delivery round more, to show a duplicate
	t.Log("table views_log (inserts, delivered from the outbox):")
	checkResults(t, pgc.tableRows(t, "views_log"), want, nil)

	checkOwned(t, workers)
	for _, z := range zombies {
		b, _ := os.ReadFile(z.log)
		if !strings.Contains(string(b), fencedLog) {
			t.Errorf("zombie %s did not log that it was fenced:\n%s", z.id, testutil.Tail(string(b), 3000))
			continue
		}
		before, after, _ := strings.Cut(string(b), fencedLog)
		t.Logf("zombie %s:\n%s%s%s", z.id, testutil.Tail(before, 1000), fencedLog, after[:min(len(after), 1500)])
	}
	logRestarts(t, workers)
}

// chaosOps runs the chaos schedule: each kind of fault at least once, in
// a random order, with clicks before, during and after each. It returns
// the zombies (paused and resumed workers' lives).
func chaosOps(t *testing.T, rng *rand.Rand, c *workerCluster, gen *clickGen, workers *[]*workerProc, start func(string) *workerProc) []zombie {
	pause := func(max time.Duration) { time.Sleep(time.Duration(rng.Int64N(int64(max)))) }
	running := func() []*workerProc {
		var out []*workerProc
		for _, w := range *workers {
			if w.running() {
				out = append(out, w)
			}
		}
		return out
	}
	var zombies []zombie
	var extra *workerProc // w4
	ops := []string{"kill", "kill", "pause", "pause", "kafka", "scale", "scale"}
	rng.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	produceClicks(t, c.prod, gen.make(1000))
	for i, op := range ops {
		produceClicks(t, c.prod, gen.make(500))
		pause(2 * time.Second)
		rs := running()
		v := rs[rng.IntN(len(rs))]
		switch op {
		case "kill":
			t.Logf("op %d: kill -9 %s, then start it again", i+1, v.id)
			v.kill()
			produceClicks(t, c.prod, gen.make(300))
			pause(2 * time.Second)
			v.start(c.bin)
		case "pause":
			d := chaosSession + 2*time.Second + time.Duration(rng.Int64N(int64(4*time.Second)))
			owned := tasksHeld(t, v)
			t.Logf("op %d: SIGSTOP %s (tasks %v) for %s, then SIGCONT", i+1, v.id, owned, d.Round(time.Millisecond))
			v.signal(syscall.SIGSTOP)
			produceClicks(t, c.prod, gen.make(300))
			time.Sleep(d)
			v.signal(syscall.SIGCONT)
			if len(owned) > 0 {
				zombies = append(zombies, zombie{v.id, v.logName()})
			}
		case "kafka":
			d := 500*time.Millisecond + time.Duration(rng.Int64N(int64(1500*time.Millisecond)))
			t.Logf("op %d: SIGSTOP kfake for %s, then SIGCONT", i+1, d.Round(time.Millisecond))
			c.kafka.Signal(syscall.SIGSTOP)
			time.Sleep(d)
			c.kafka.Signal(syscall.SIGCONT)
		case "scale":
			if extra == nil {
				t.Logf("op %d: scale out: start w4", i+1)
				extra = start("w4")
				*workers = append(*workers, extra)
			} else if extra.running() {
				t.Logf("op %d: scale in: SIGTERM w4", i+1)
				extra.stop()
			} else {
				t.Logf("op %d: scale out: start w4 again", i+1)
				extra.start(c.bin)
			}
		}
	}
	return zombies
}

// tasksHeld waits (up to half a minute) until the group gave worker w
// tasks, and returns them (none if it did not).
func tasksHeld(t *testing.T, w *workerProc) []string {
	t.Helper()
	url := "http://" + w.listenAddr(t) + "/api/v1/jobs/page-views/cluster"
	var tasks []string
	testutil.Within(30*time.Second, func() bool {
		var st cluster.Status
		if getJSON(t, url, &st) == 200 {
			tasks = tasksOf(&st, w.id)
		}
		return len(tasks) > 0
	})
	return tasks
}

// checkOwned waits until a running worker's cluster view shows a stable
// group of exactly the running workers, every input partition of every
// stage owned by one of them with no lag.
func checkOwned(t *testing.T, workers []*workerProc) {
	t.Helper()
	var ids []string
	var one *workerProc
	for _, w := range workers {
		if w.running() {
			ids = append(ids, w.id)
			one = w
		}
	}
	url := "http://" + one.listenAddr(t) + "/api/v1/jobs/page-views/cluster"
	var why string
	ok := testutil.Within(time.Minute, func() bool {
		var st cluster.Status
		if getJSON(t, url, &st) != 200 {
			why = "no answer"
			return false
		}
		members := workerIDs(&st)
		slices.Sort(members)
		if st.State != "Stable" || !slices.Equal(members, ids) {
			why = fmt.Sprintf("group %s with members %v, want Stable with %v", st.State, members, ids)
			return false
		}
		if len(st.Partitions) != 2*workerPartitions {
			why = fmt.Sprintf("%d partitions, want %d", len(st.Partitions), 2*workerPartitions)
			return false
		}
		for _, p := range st.Partitions {
			if p.Worker == "" || !slices.Contains(ids, p.Worker) || p.Lag != 0 {
				why = fmt.Sprintf("partition %s/%d of stage %d: owner %q, lag %d", p.Topic, p.Partition, p.Stage, p.Worker, p.Lag)
				return false
			}
		}
		return true
	})
	if !ok {
		t.Errorf("the job did not settle within a minute: %s", why)
	}
}
