package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

// bootEnv is a store, a jobs directory and a real PostgreSQL cluster that
// jobs write to, for managers opened one after another on them.
type bootEnv struct {
	t   *testing.T
	st  *streams.Store
	dir string
	pg  *testsrv.Postgres
	cfg ManagerConfig
}

func newBootEnv(t *testing.T) *bootEnv {
	if testing.Short() {
		t.Skip("starts PostgreSQL; skipped in -short mode")
	}
	st, dir, log := managerStore(t)
	pg := testsrv.StartPostgres(t)
	e := &bootEnv{t: t, st: st, dir: dir, pg: pg, cfg: ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log}}
	conn := pg.Connect(t)
	defer conn.Close(context.Background())
	for _, table := range []string{"a", "b", "c"} {
		if _, err := conn.Exec(context.Background(), "CREATE TABLE "+table+" (i bigint NOT NULL)"); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// job is a job file that writes the records of stream NAME-in to table
// NAME of the cluster, exactly once, with the extra top-level lines.
func (e *bootEnv) job(name, extra string) string {
	return fmt.Sprintf(`name: %s
source: {stream: %s-in}
operators:
  - {id: m, map: "r => ({i: r.i})"}
sinks:
  - {id: pg, postgres: {dsn: %q, table: %s}}
checkpoint: {every: 100ms}
%s`, name, name, e.pg.DSN, name, extra)
}

// put puts records from..to-1 into stream NAME-in.
func (e *bootEnv) put(name string, from, to int) {
	e.t.Helper()
	var recs []streams.PutRecord
	for i := from; i < to; i++ {
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprint(i), Data: fmt.Appendf(nil, `{"i":%d}`, i)})
	}
	if _, err := e.st.Put(context.Background(), name+"-in", recs); err != nil {
		e.t.Fatal(err)
	}
}

// rows counts the rows of table name by i (nil when the cluster does not
// answer).
func (e *bootEnv) rows(name string) map[int]int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := e.pg.Connect(e.t)
	defer conn.Close(context.Background())
	rs, err := conn.Query(ctx, "SELECT i FROM "+name)
	if err != nil {
		return nil
	}
	defer rs.Close()
	got := map[int]int{}
	for rs.Next() {
		var i int
		if err := rs.Scan(&i); err != nil {
			return nil
		}
		got[i]++
	}
	return got
}

// waitRows waits until table name holds rows 0..n-1 and checks that it
// holds each exactly once and nothing else.
func (e *bootEnv) waitRows(name string, n int) {
	e.t.Helper()
	var got map[int]int
	testutil.Within(60*time.Second, func() bool {
		got = e.rows(name)
		return len(got) >= n
	})
	if len(got) != n {
		e.t.Fatalf("table %s holds %d distinct rows, want %d", name, len(got), n)
	}
	for i := range n {
		if got[i] != 1 {
			e.t.Fatalf("table %s holds row %d %d times, want once", name, i, got[i])
		}
	}
}

// pause stops (SIGSTOP) every process of the cluster until the returned
// func resumes them (SIGCONT); the test's cleanup resumes them too.
func (e *bootEnv) pause() (resume func()) {
	e.t.Helper()
	pids := e.pg.Processes()
	if len(pids) == 0 {
		e.t.Fatal("no PostgreSQL process to pause")
	}
	for _, p := range pids {
		// A backend listed may have exited since (a closed connection's):
		// nothing to pause there.
		if err := syscall.Kill(p, syscall.SIGSTOP); err != nil && !errors.Is(err, syscall.ESRCH) {
			e.t.Fatal(err)
		}
	}
	resumed := false
	resume = func() {
		if !resumed {
			resumed = true
			for _, p := range pids {
				syscall.Kill(p, syscall.SIGCONT)
			}
		}
	}
	e.t.Cleanup(resume)
	return resume
}

// jobState is job id's state and reason in m.
func jobState(m *Manager, id string) (string, string) {
	in, err := m.Get(id)
	if err != nil {
		return err.Error(), ""
	}
	return in.State, in.Reason
}

// TestBootStartsJobsInTheBackground: a manager opened while the
// PostgreSQL its job writes to is paused returns at once, the job showing
// starting (BootStarting counts it); once the cluster is resumed the job
// runs on from its checkpoint and the table holds every record once.
func TestBootStartsJobsInTheBackground(t *testing.T) {
	e := newBootEnv(t)
	m := startManager(t, e.cfg)
	if _, err := m.Submit([]byte(e.job("a", ""))); err != nil {
		t.Fatal(err)
	}
	e.put("a", 0, 100)
	e.waitRows("a", 100)
	m.Close()

	resume := e.pause()
	m, err := NewManager(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if s, r := jobState(m, "a"); s != StateStarting || m.BootStarting() != 1 {
		t.Fatalf("with its target paused the job is %s (%s), %d starting; want it starting in the background", s, r, m.BootStarting())
	}
	if _, err := m.Resume("a"); !errors.Is(err, ErrJobExists) {
		t.Fatalf("resume of a starting job: %v, want ErrJobExists", err)
	}
	e.put("a", 100, 200)
	resume()
	waitState(t, m, "a", "running")
	if n := m.BootStarting(); n != 0 {
		t.Fatalf("%d jobs starting once the job runs", n)
	}
	e.waitRows("a", 200)
}

// TestBootStartFailureRestartsByStrategy: a job with a restart strategy
// whose target is down when the manager opens fails to start, waits for
// its strategy's next attempt, and runs by itself once the target is back,
// writing every record once; the same job without a strategy stays
// failed, as before.
func TestBootStartFailureRestartsByStrategy(t *testing.T) {
	e := newBootEnv(t)
	m := startManager(t, e.cfg)
	if _, err := m.Submit([]byte(e.job("a", "restart: {strategy: fixed-delay, delay: 200ms, attempts: 1000}\n"))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Submit([]byte(e.job("b", ""))); err != nil {
		t.Fatal(err)
	}
	e.put("a", 0, 100)
	e.put("b", 0, 100)
	e.waitRows("a", 100)
	e.waitRows("b", 100)
	m.Close()

	e.pg.Stop(t)
	m, err := NewManager(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var in Info
	if !testutil.Within(60*time.Second, func() bool {
		in, _ = m.Get("a")
		return in.Restarting != nil
	}) {
		t.Fatalf("job a failed to start with its target down but waits for no restart: %s (%s)", in.State, in.Reason)
	}
	if in.State != "failed" || !strings.Contains(in.Reason, "postgres sink pg") || in.Restarting.Attempts != 1000 {
		t.Fatalf("job a waiting for its restart: %s %q %+v", in.State, in.Reason, in.Restarting)
	}
	waitState(t, m, "b", "failed")
	e.put("a", 100, 200)
	e.pg.Start(t)
	waitState(t, m, "a", "running")
	e.waitRows("a", 200)
	if in, _ := m.Get("a"); in.Restarting != nil {
		t.Fatalf("running job still waits for a restart: %+v", in.Restarting)
	}
	if in, _ := m.Get("b"); in.State != "failed" || in.Restarting != nil {
		t.Fatalf("job b without a strategy: %s %+v, want failed with no restart", in.State, in.Restarting)
	}
}

// TestStopDeleteReplaceDuringBootStart: jobs starting in the background
// (their target paused) are stopped at once; a delete and a replace wait
// for their starts to give up (the stop cut them short), and no run of
// theirs begins.
func TestStopDeleteReplaceDuringBootStart(t *testing.T) {
	e := newBootEnv(t)
	m := startManager(t, e.cfg)
	e.submitWritten(t, m, "a", "b")
	m.Close()

	resume := e.pause()
	m, err := NewManager(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ja, _ := m.job("a")
	jb, _ := m.job("b")
	for _, id := range []string{"a", "b"} {
		if s, r := jobState(m, id); s != StateStarting {
			t.Fatalf("job %s is %s (%s), want starting", id, s, r)
		}
		if err := m.Delete(id); !errors.Is(err, ErrRunning) {
			t.Fatalf("delete of starting job %s: %v, want ErrRunning", id, err)
		}
		if err := m.Stop(id); err != nil {
			t.Fatal(err)
		}
		if s, _ := jobState(m, id); s != StateStopped {
			t.Fatalf("job %s stopped while starting is %s", id, s)
		}
	}
	// A delete and a replace wait for the starts to give up, which the
	// stops cut short; the replacement's own start waits for the
	// cluster.
	deleted := make(chan error, 1)
	go func() { deleted <- m.Delete("a") }()
	replaced := make(chan error, 1)
	go func() {
		_, err := m.SubmitWith([]byte(strings.NewReplacer("table: b", "table: c", "id: pg,", "id: pg2,").Replace(e.job("b", ""))), SubmitOptions{Replace: true})
		replaced <- err
	}()
	resume()
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if _, err := m.Get("a"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("deleted job: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.cfg.Dir, "a")); !os.IsNotExist(err) {
		t.Fatalf("deleted job's directory: %v", err)
	}
	if err := <-replaced; err != nil {
		t.Fatal(err)
	}
	for _, j := range []*Job{ja, jb} {
		j.mu.Lock()
		rj, starting := j.mu.run, j.mu.starting
		j.mu.Unlock()
		if rj != nil || starting != nil {
			t.Fatalf("job %s stopped while starting: run %t, start in progress %t", j.ID, rj != nil, starting != nil)
		}
	}
	// The replacement starts from no state: it writes every record of
	// b-in to table c, once (its sink is named anew: the progress rows
	// of the replaced job's sink would hold back its first epochs).
	e.put("b", 10, 20)
	waitState(t, m, "b", "running")
	e.waitRows("c", 20)
}
