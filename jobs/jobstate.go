package jobs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/runnel-dev/runnel/engine"
)

// A job's lifecycle state is kept in DIR/<id>/state.json, next to its job
// file, so that a restart of the server does what the user last asked:
// a running job runs on (from its latest checkpoint), a stopped job stays
// stopped, a finished job stays finished (its bounded input is done; its
// sinks are not opened again, so a file sink keeps its output).
//
// The file is written atomically (a temporary file, synced, renamed, the
// directory synced). It is read strictly: a file that does not parse, has
// fields this version does not know, names an unknown state or is missing
// next to a job file is damage, and the job comes up failed with the
// problem as its reason (and an ERROR log): it is never started on a
// guess, since starting a job the user had stopped or that had finished
// repeats its output.

// Persisted job states (state.json "state").
const (
	persistRunning  = "running"
	persistStopped  = StateStopped
	persistFinished = "finished"
	// persistFailed: the job's last run failed; it stays failed, with its
	// reason, until it is resumed or submitted again.
	persistFailed = "failed"
)

const stateFileVersion = 1

// persisted is state.json. Files written before the version field carry
// created and stopped only (version 0).
type persisted struct {
	Version int        `json:"version"`
	Created time.Time  `json:"created"`
	State   string     `json:"state,omitempty"`
	Ended   *time.Time `json:"ended,omitempty"`
	Stopped bool       `json:"stopped,omitempty"`
	// Reason is why a failed job failed.
	Reason string `json:"reason,omitempty"`
	// Owner is the job's owner (Job.Owner).
	Owner string `json:"owner,omitempty"`
}

// ErrStateDamaged marks a job whose state.json cannot be trusted.
var ErrStateDamaged = errors.New("jobs: job state file damaged")

// readJobState reads and checks a job's state.json.
func readJobState(path string) (persisted, error) {
	var p persisted
	b, err := os.ReadFile(path)
	if err != nil {
		if os.IsNotExist(err) {
			return p, fmt.Errorf("%w: %s is missing", ErrStateDamaged, path)
		}
		return p, fmt.Errorf("%w: read %s: %w", ErrStateDamaged, path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return p, fmt.Errorf("%w: %s: %v", ErrStateDamaged, path, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return p, fmt.Errorf("%w: %s: data after the JSON object", ErrStateDamaged, path)
	}
	switch p.Version {
	case 0:
		if p.State != "" {
			return p, fmt.Errorf("%w: %s: a state without a version", ErrStateDamaged, path)
		}
		p.State = persistRunning
		if p.Stopped {
			p.State = persistStopped
		}
	case stateFileVersion:
		switch p.State {
		case persistRunning, persistStopped, persistFinished, persistFailed:
		default:
			return p, fmt.Errorf("%w: %s: unknown state %q (want running, stopped, finished or failed)", ErrStateDamaged, path, p.State)
		}
		if p.Stopped {
			return p, fmt.Errorf("%w: %s: version %d has no \"stopped\" field", ErrStateDamaged, path, p.Version)
		}
	default:
		return p, fmt.Errorf("%w: %s: version %d is not one this server reads (%d)", ErrStateDamaged, path, p.Version, stateFileVersion)
	}
	if p.Created.IsZero() {
		return p, fmt.Errorf("%w: %s: no \"created\" time", ErrStateDamaged, path)
	}
	return p, nil
}

// stateHint is what the reason of a job with a damaged state file tells
// the operator to do.
func stateHint(dir string) string {
	return fmt.Sprintf("the job was not started; repair %s (see docs/checkpoints.md) and restart the server, or submit the job again to start it from scratch",
		filepath.Join(dir, "state.json"))
}

// ended records how a run of j ended: a job whose sources ended is kept
// finished across restarts; failures, stops and finishes are logged.
func (m *Manager) ended(j *Job, rj *engine.Job) {
	st := rj.Status()
	switch st.State {
	case engine.Finished:
		j.mu.Lock()
		j.mu.finished = true
		j.mu.ended = time.Now().UTC()
		j.mu.Unlock()
		if err := m.persist(j); err != nil {
			m.log.Error("job finished, but its state could not be saved: it will start again with the server", "job", j.ID, "err", err)
		}
		m.log.Info("job finished", "job", j.ID)
	case engine.Failed:
		j.mu.Lock()
		j.mu.failed = st.Reason
		j.mu.ended = time.Now().UTC()
		j.mu.Unlock()
		if err := m.persist(j); err != nil {
			m.log.Error("job failed, and its state could not be saved: it will start again with the server", "job", j.ID, "err", err)
		}
		j.failureEntry(st.Reason)
		m.log.Error("job failed", "job", j.ID, "reason", st.Reason)
		m.restartFailed(j, rj)
	default:
		m.log.Info("job stopped", "job", j.ID)
	}
}
