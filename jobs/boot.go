package jobs

import (
	"context"
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
// A start in progress is the job's (Job.mu.starting): a stop marks the
// job stopped and the start gives up at its next step, or the run it
// began is stopped once it returns; delete, replace, resume and the
// manager's Close wait for it to return (waitEnded, waitStarted).
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
// called. It is called with j.mu not held.
func (j *Job) beginStart() (end func()) {
	done := make(chan struct{})
	j.mu.Lock()
	j.mu.starting = done
	j.mu.Unlock()
	return func() {
		j.mu.Lock()
		if j.mu.starting == done {
			j.mu.starting = nil
		}
		j.mu.Unlock()
		close(done)
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
// A failure is the job's startErr.
func (m *Manager) start(j *Job) {
	defer j.beginStart()()
	if m.givenUp(j) {
		return
	}
	fail := func(err error) {
		j.mu.Lock()
		j.mu.startErr = err
		j.mu.Unlock()
		j.failureEntry(err.Error())
		m.log.Error("job failed to start", "job", j.ID, "err", err)
	}
	built, err := Build(j.Spec, Env{Store: m.store, Files: m.files, Resume: true, Logger: m.log, onSkip: j.skipEntry})
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
	m.run(j, built, cs)
}

func closeSinks(built *Built) {
	for _, sk := range built.Graph.Sinks {
		sk.Sink.Close()
	}
}

// run starts a built job over its opened state store (restoring from
// cs.restore when set) and its checkpoint loop; a job stopped (or a
// manager closed) meanwhile is not started, and its sinks and store are
// closed.
func (m *Manager) run(j *Job, built *Built, cs *ckptState) {
	if m.givenUp(j) {
		closeSinks(built)
		cs.closed = true
		cs.db.Close()
		m.log.Info("job stopped before its run began", "job", j.ID)
		return
	}
	opts := m.options
	opts.State, opts.Restore = cs.db, cs.restore
	j.outputs.tap(built.Graph, j.errorTap)
	rj, err := engine.Start(context.Background(), built.Graph, opts)
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
