package jobs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/runnel-dev/runnel/engine"
)

// Starting jobs. A start builds the job (its sinks connect to their
// targets), opens its state (committing what an earlier run staged) and
// begins its run; any of it may wait on a target that does not answer (a
// paused database: a connect waits up to 30 s). So the jobs a server
// finds running when it starts are started in the background, at most
// bootConcurrency at a time, while the server already answers: each shows
// state starting until its run begins, and the manager's BootStarting
// counts those not done yet (a server's readiness).
//
// A start in progress is the job's (Job.mu.starting), with a context of
// its own (beginStart): a stop and the manager's Close cancel it, so the
// step waiting on a target returns at once (the 30 s stay its bound), and
// the start gives up; a run begun meanwhile is stopped once it returns.
// Delete, replace, resume and Close wait for the start to return
// (waitEnded, waitStarted), which then is prompt. What the job's last run
// staged, a start cut short may not have settled: a delete or replace
// settles it before the job's state goes (settle.go).
//
// A start by the server (at its start, or a restart attempt of the job's
// restart strategy) that fails counts as a failure of the job's restart
// strategy (startFailed); one a user asked for (submit, resume, restart,
// deploy) answers its error to the user instead.

// bootConcurrency is how many jobs start at once at the manager's start.
const bootConcurrency = 2

// booting is the manager's background start of its jobs.
type booting struct {
	// pending counts the jobs whose start at the manager's start has
	// not returned.
	pending atomic.Int64
	// done is closed once every one has returned.
	done chan struct{}
}

// startBoot starts js in the background, bootConcurrency at a time.
func (m *Manager) startBoot(js []*Job) {
	m.boot.done = make(chan struct{})
	m.boot.pending.Store(int64(len(js)))
	go func() {
		defer close(m.boot.done)
		sem := make(chan struct{}, bootConcurrency)
		var wg sync.WaitGroup
		for _, j := range js {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer func() {
					m.boot.pending.Add(-1)
					<-sem
					wg.Done()
				}()
				m.start(j)
				m.startFailed(j)
			}()
		}
		wg.Wait()
	}()
}

// wait waits until every start at the manager's start has returned.
func (b *booting) wait() {
	if b.done != nil {
		<-b.done
	}
}

// Booted is closed once every job the manager found running when it
// opened has begun its run, failed to start or been stopped.
func (m *Manager) Booted() <-chan struct{} { return m.boot.done }

// BootStarting reports how many of the jobs the manager found running
// when it opened are still starting: 0 once each has begun its run,
// failed to start or been stopped.
func (m *Manager) BootStarting() int { return int(m.boot.pending.Load()) }

// beginStart marks a start of j in progress until the returned func is
// called, and returns the start's context: canceled (its cause saying
// why) when j is stopped (as a delete or replace of a starting job needs
// first) or the manager closes, so that a step waiting on a target that
// does not answer (a connect, a restore's commit) returns at once. It is
// called with j.mu not held.
func (m *Manager) beginStart(j *Job) (ctx context.Context, end func()) { return m.track(j, true) }

// track is beginStart; a start of a stopped job's is canceled at once
// when stop is set (a delete's settling is not).
func (m *Manager) track(j *Job, stop bool) (ctx context.Context, end func()) {
	done := make(chan struct{})
	ctx, cancel := context.WithCancelCause(context.Background())
	j.mu.Lock()
	j.mu.starting, j.mu.startCtx, j.mu.startCancel = done, ctx, cancel
	stopped := j.mu.stopped
	j.mu.Unlock()
	// Close cancels the starts it finds after marking the manager
	// closed: a start that began meanwhile sees it closed here.
	if m.isClosed() {
		cancel(errClosing)
	} else if stopped && stop {
		cancel(errStopped)
	}
	return ctx, func() {
		j.mu.Lock()
		if j.mu.starting == done {
			j.mu.starting, j.mu.startCtx, j.mu.startCancel = nil, nil, nil
		}
		j.mu.Unlock()
		cancel(nil)
		close(done)
	}
}

// Causes of a start's cancel.
var (
	errStopped = errors.New("jobs: the job was stopped while it started")
	errClosing = errors.New("jobs: the server is shutting down")
)

// cancelStart cuts j's start in progress (if any) short with cause.
func (j *Job) cancelStart(cause error) {
	j.mu.Lock()
	cancel := j.mu.startCancel
	j.mu.Unlock()
	if cancel != nil {
		cancel(cause)
	}
}

// startCtx is the context of j's start in progress; Background when none
// is (a step of a start reached some other way).
func (j *Job) startCtx() context.Context {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.startCtx != nil {
		return j.mu.startCtx
	}
	return context.Background()
}

func (m *Manager) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.mu.closed
}

// waitEnded waits until the job's start in progress (if any) returned and
// its run (if any) ended and its state store is closed.
func (j *Job) waitEnded() {
	j.waitStarted()
	j.mu.Lock()
	rj, cs := j.mu.run, j.mu.ckpt
	j.mu.Unlock()
	if rj != nil {
		<-rj.Done()
	}
	if cs != nil {
		<-cs.done
	}
}

// waitStarted waits until j's start in progress (if any) has returned.
func (j *Job) waitStarted() {
	j.mu.Lock()
	ch := j.mu.starting
	j.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// givenUp reports whether a start of j is to give up: j was stopped by a
// user, or the manager is closing.
func (m *Manager) givenUp(j *Job) bool {
	m.mu.Lock()
	closed := m.mu.closed
	m.mu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	return closed || j.mu.stopped
}

// start builds j from its file and starts it from its latest checkpoint.
// A failure is the job's startErr; a start cut short by a stop or the
// manager's close is no failure of the job's.
func (m *Manager) start(j *Job) {
	ctx, end := m.beginStart(j)
	defer end()
	if m.givenUp(j) {
		return
	}
	fail := func(err error) {
		if m.givenUp(j) {
			m.log.Info("job stopped before its run began", "job", j.ID, "err", err)
			return
		}
		j.mu.Lock()
		j.mu.startErr = err
		j.mu.Unlock()
		j.failureEntry(err.Error())
		m.log.Error("job failed to start", "job", j.ID, "err", err)
	}
	built, err := Build(j.Spec, Env{Store: m.store, Files: m.files, Resume: true, Logger: m.log, onSkip: j.skipEntry, ctx: ctx})
	if err != nil {
		fail(err)
		return
	}
	if m.givenUp(j) {
		closeSinks(built)
		return
	}
	cs, err := m.openState(j, built)
	if err != nil {
		closeSinks(built)
		fail(err)
		return
	}
	m.run(ctx, j, built, cs)
}

func closeSinks(built *Built) {
	for _, sk := range built.Graph.Sinks {
		sk.Sink.Close()
	}
}

// run starts a built job over its opened state store (restoring from
// cs.restore when set) and its checkpoint loop; a job stopped (or a
// manager closed) meanwhile is not started, and its sinks and store are
// closed. ctx is the start's (beginStart): it bounds the engine's setup,
// which settles what the last run staged, not the run.
func (m *Manager) run(ctx context.Context, j *Job, built *Built, cs *ckptState) {
	if m.givenUp(j) {
		closeSinks(built)
		cs.closed = true
		cs.db.Close()
		m.log.Info("job stopped before its run began", "job", j.ID)
		return
	}
	// From here the run may stage output (and the engine's setup settles
	// what an earlier run staged): a delete settles it if the run does
	// not end at a committed checkpoint (settle.go).
	if err := m.markStaged(j); err != nil {
		closeSinks(built)
		cs.closed = true
		cs.db.Close()
		j.mu.Lock()
		j.mu.startErr = fmt.Errorf("start job %s: %w", j.ID, err)
		j.mu.Unlock()
		m.log.Error("job failed to start", "job", j.ID, "err", err)
		return
	}
	opts := m.options
	opts.State, opts.Restore = cs.db, cs.restore
	j.outputs.tap(built.Graph, j.errorTap)
	rj, err := engine.StartSetup(context.Background(), ctx, built.Graph, opts)
	if err != nil && m.givenUp(j) {
		closeSinks(built)
		cs.closed = true
		cs.db.Close()
		m.log.Info("job stopped before its run began", "job", j.ID, "err", err)
		return
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	j.mu.built = built
	if err != nil {
		j.mu.startErr = err
		cs.closed = true
		cs.db.Close()
		j.failureEntry(err.Error())
		m.log.Error("job failed to start", "job", j.ID, "err", err)
		return
	}
	j.mu.run = rj
	j.mu.ckpt = cs
	go m.checkpointLoop(j, rj, cs)
	m.log.Info("job started", "job", j.ID)
}
