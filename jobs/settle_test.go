package jobs

import (
	"errors"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

// promptly bounds a wait for a call that must not wait on a paused target.
// It is not a measure of speed: the call's old wait was a connect's 30 s
// bound, and the call must return while the target is still paused.
const promptly = 20 * time.Second

// returnsWhilePaused runs f and fails the test unless it returns within
// promptly, while the target it must not wait for stays paused.
func returnsWhilePaused(t *testing.T, what string, f func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(promptly):
		t.Fatalf("%s did not return within %s while the target stayed paused: it waits on the target", what, promptly)
	}
}

// failCommits is a Failpoint that, once set, fails every checkpoint after
// it is durable and before the sinks commit it: a run stopped then leaves
// its final checkpoint's output staged, as a crash there would.
func failCommits(on *atomic.Bool) func(string) error {
	return func(step string) error {
		if on.Load() && step == engine.CheckpointBeforeCommit {
			return errors.New("failpoint: before-commit")
		}
		return nil
	}
}

// submitWritten submits e's jobs ids and waits until each wrote the 10
// rows put into its stream.
func (e *bootEnv) submitWritten(t *testing.T, m *Manager, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if _, err := m.Submit([]byte(e.job(id, ""))); err != nil {
			t.Fatal(err)
		}
		e.put(id, 0, 10)
		e.waitRows(id, 10)
	}
}

// stagedAtClose runs e's jobs ids (checkpoints hourly) until each read the
// 10 records put into its stream, then closes their manager with a
// failpoint failing the commits: each job's final checkpoint is durable,
// its output staged and not committed.
func stagedAtClose(t *testing.T, e *bootEnv, ids ...string) {
	t.Helper()
	var failing atomic.Bool
	cfg := e.cfg
	cfg.Failpoint = failCommits(&failing)
	m := startManager(t, cfg)
	for _, id := range ids {
		if _, err := m.Submit([]byte(strings.Replace(e.job(id, ""), "every: 100ms", "every: 1h", 1))); err != nil {
			t.Fatal(err)
		}
		e.put(id, 0, 10)
		if !testutil.Within(30*time.Second, func() bool { return sourceRead(t, m, id) == 10 }) {
			t.Fatalf("job %s read %d records, want 10", id, sourceRead(t, m, id))
		}
	}
	failing.Store(true)
	m.Close()
}

// openStarting opens a manager on e's configuration (its target paused)
// and checks that each of the jobs ids is starting.
func openStarting(t *testing.T, e *bootEnv, ids ...string) *Manager {
	t.Helper()
	m, err := NewManager(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if s, r := jobState(m, id); s != StateStarting {
			t.Fatalf("job %s is %s (%s), want starting", id, s, r)
		}
	}
	return m
}

// TestDeleteWhileStartingSettlesPostgres: jobs whose last run left a
// completed checkpoint's rows staged (its commit cut short) are found
// running when the manager opens, with their PostgreSQL paused, and are
// stopped while they start; one is deleted, the other replaced by a job
// writing another table. The delete and the replace settle what the runs
// staged once the cluster answers: each table holds every row of its
// job's checkpoint, once, and the replacement writes its own.
func TestDeleteWhileStartingSettlesPostgres(t *testing.T) {
	e := newBootEnv(t)
	stagedAtClose(t, e, "a", "b")
	for _, id := range []string{"a", "b"} {
		if n := len(e.rows(id)); n != 0 {
			t.Fatalf("table %s holds %d rows before the restart, want none (the commit was cut short)", id, n)
		}
	}

	resume := e.pause()
	m := openStarting(t, e, "a", "b")
	defer m.Close()
	for _, id := range []string{"a", "b"} {
		if err := m.Stop(id); err != nil {
			t.Fatal(err)
		}
	}
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
	if err := <-replaced; err != nil {
		t.Fatal(err)
	}
	e.waitRows("a", 10)
	e.waitRows("b", 10)
	e.put("b", 10, 20)
	e.waitRows("c", 20)
}

// TestDeleteWhileStartingSettlesS3: the same with an S3 sink (versitygw,
// paused): the job's last run left objects staged; deleted while it
// starts, it leaves none under the staging prefix, and its checkpoint's
// objects are published.
func TestDeleteWhileStartingSettlesS3(t *testing.T) {
	if testing.Short() {
		t.Skip("starts versitygw; skipped in -short mode")
	}
	gw := testsrv.StartS3(t, "lake")
	for _, kv := range gw.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	st, dir, log := managerStore(t)
	if _, err := st.CreateStream("in", 1, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	putN(t, st, "in", 0, 20)
	var failing atomic.Bool
	cfg := ManagerConfig{Store: st, Dir: filepath.Join(dir, "jobs"), Logger: log}
	fcfg := cfg
	fcfg.Failpoint = failCommits(&failing)
	m := startManager(t, fcfg)
	job := `name: lake
source: {stream: in}
sinks:
  - id: out
    s3: {endpoint: ` + gw.Endpoint + `, region: ` + testsrv.S3Region + `, path_style: true, bucket: lake, prefix: rows/, format: jsonl}
checkpoint: {every: 1h}
`
	if _, err := m.Submit([]byte(job)); err != nil {
		t.Fatal(err)
	}
	if !testutil.Within(30*time.Second, func() bool { return sourceRead(t, m, "lake") == 20 }) {
		t.Fatalf("the job read %d records, want 20", sourceRead(t, m, "lake"))
	}
	failing.Store(true)
	m.Close()
	if staged := gw.Objects(t, "lake", "_runnel-staging/"); len(staged) == 0 {
		t.Fatal("nothing staged after a stop whose commit was cut short")
	}
	if rows := gw.Objects(t, "lake", "rows/"); len(rows) != 0 {
		t.Fatalf("published before the restart: %v", rows)
	}

	gw.Signal(syscall.SIGSTOP)
	t.Cleanup(func() { gw.Signal(syscall.SIGCONT) })
	m, err := NewManager(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if s, r := jobState(m, "lake"); s != StateStarting {
		t.Fatalf("job lake is %s (%s), want starting", s, r)
	}
	if err := m.Stop("lake"); err != nil {
		t.Fatal(err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- m.Delete("lake") }()
	gw.Signal(syscall.SIGCONT)
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	if staged := gw.Objects(t, "lake", "_runnel-staging/"); len(staged) != 0 {
		t.Fatalf("the deleted job left staged objects: %v", staged)
	}
	if rows := gw.Objects(t, "lake", "rows/"); len(rows) == 0 {
		t.Fatal("the checkpoint's objects were not published")
	}
}

// TestDeleteAndCloseWhileTargetPaused: jobs found running when the
// manager opens, stopped cleanly before (nothing staged), start while
// their PostgreSQL is paused. A delete of one (after its stop) and the
// manager's Close return while the cluster is still paused: the stop and
// the close cut the starts short instead of waiting out the connect's
// bound.
func TestDeleteAndCloseWhileTargetPaused(t *testing.T) {
	e := newBootEnv(t)
	m := startManager(t, e.cfg)
	e.submitWritten(t, m, "a", "b")
	m.Close()

	resume := e.pause()
	m = openStarting(t, e, "a", "b")
	if err := m.Stop("a"); err != nil {
		t.Fatal(err)
	}
	returnsWhilePaused(t, "delete of job a stopped while it started", func() error { return m.Delete("a") })
	if _, err := m.Get("a"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("deleted job: %v", err)
	}
	returnsWhilePaused(t, "Close while job b starts", func() error { m.Close(); return nil })
	resume()

	// Job b, closed while it started, starts again with the next
	// manager and writes what came meanwhile.
	m = startManager(t, e.cfg)
	e.put("b", 10, 20)
	waitState(t, m, "b", "running")
	e.waitRows("b", 20)
}

// TestDeleteUnsettledIsCounted: a delete whose settling cannot finish (its
// PostgreSQL paused, the manager closed meanwhile) goes on and is counted
// in SettleFailures, the figure an operator's alert watches.
func TestDeleteUnsettledIsCounted(t *testing.T) {
	e := newBootEnv(t)
	stagedAtClose(t, e, "a")

	resume := e.pause()
	defer resume()
	m, err := NewManager(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Stop("a"); err != nil {
		t.Fatal(err)
	}
	settling := make(chan struct{}, 1)
	settleHook = func(*Job) { settling <- struct{}{} }
	defer func() { settleHook = nil }()
	deleted := make(chan error, 1)
	go func() { deleted <- m.Delete("a") }()
	select {
	case <-settling:
	case err := <-deleted:
		t.Fatalf("the delete returned (%v) before it settled", err)
	}
	returnsWhilePaused(t, "Close while a delete settles", func() error { m.Close(); return nil })
	if err := <-deleted; err != nil {
		t.Fatalf("a delete whose settling was cut short: %v, want it done", err)
	}
	if n := m.SettleFailures(); n != 1 {
		t.Fatalf("SettleFailures = %d, want 1", n)
	}
}
