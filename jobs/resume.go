package jobs

import (
	"errors"
	"fmt"
)

// Resume starts a stopped or failed job again from its latest checkpoint
// (its state, source positions and watermarks), with the job file it was
// submitted with. A running job is refused with ErrJobExists; a finished
// job with ErrFinished (its bounded input is done: submit it again to run
// it from the start).
func (m *Manager) Resume(id string) (*Job, error) {
	j, err := m.job(id)
	if err != nil {
		return nil, err
	}
	m.mu.Lock()
	closed := m.mu.closed
	m.mu.Unlock()
	if closed {
		return nil, errors.New("jobs: the server is shutting down")
	}
	if j.running() {
		return nil, alreadyRunning(id)
	}
	j.waitEnded() // a stop may still be draining the last run
	j.mu.Lock()
	switch {
	case j.mu.finished:
		j.mu.Unlock()
		return nil, fmt.Errorf("%w: %q read all its input; submit it again to run it from the start", ErrFinished, id)
	case !j.mu.stopped && j.mu.failed == "" && j.mu.startErr == nil:
		j.mu.Unlock()
		return nil, alreadyRunning(id)
	}
	j.restarts.reset()
	return m.rerun(j, "job resumed from its latest checkpoint", "job", id)
}

// rerun starts job j again as a new run, saving and logging it first. It
// is called with j.mu held, so that the caller's check that j may run
// again and the reset are one step, and unlocks it.
func (m *Manager) rerun(j *Job, msg string, logArgs ...any) (*Job, error) {
	if j.mu.deleting {
		j.mu.Unlock()
		return nil, errDeleting(j.ID)
	}
	j.mu.stopped, j.mu.finished, j.mu.failed, j.mu.startErr = false, false, "", nil
	j.mu.run, j.mu.ckpt = nil, nil
	j.mu.Unlock()
	if err := m.persist(j); err != nil {
		err = fmt.Errorf("save job %s: %w", j.ID, err)
		j.mu.Lock()
		j.mu.startErr = err // not left starting with no start in progress
		j.mu.Unlock()
		return nil, err
	}
	m.log.Info(msg, logArgs...)
	m.start(j)
	j.mu.Lock()
	serr := j.mu.startErr
	j.mu.Unlock()
	if serr != nil {
		return nil, serr
	}
	return j, nil
}

// ErrFinished is the error of resuming a job whose sources ended.
var ErrFinished = errors.New("jobs: the job has finished")

// alreadyRunning is ErrJobExists said of the job being resumed, whose name
// the sentinel's "a job of that name" would only repeat.
func alreadyRunning(id string) error {
	return &saidError{msg: fmt.Sprintf("jobs: %q is running already", id), is: ErrJobExists}
}

// saidError is a sentinel error (errors.Is finds it) with its own words.
// errDeleting is the error of starting or deleting a job a Delete is
// removing: ErrJobNotFound, as it is once the Delete returned.
func errDeleting(id string) error {
	return &saidError{msg: fmt.Sprintf("jobs: %q is being deleted", id), is: ErrJobNotFound}
}

type saidError struct {
	msg string
	is  error
}

func (e *saidError) Error() string        { return e.msg }
func (e *saidError) Is(target error) bool { return target == e.is }
