package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/atomicfile"
	"github.com/runnel-dev/runnel/state"
)

// Lifecycle beside submit, stop and resume: restart a job from a chosen
// checkpoint or savepoint, deploy a new job file over a job (from a
// savepoint of it), and delete a job with its state.

// Errors of the lifecycle.
var (
	ErrCheckpointNotFound = errors.New("jobs: checkpoint not found")
	// ErrRunning is the error of an action that needs the job stopped.
	ErrRunning = errors.New("jobs: the job is running")
	// ErrNameMismatch is the error of deploying a file whose name is not
	// the job's.
	ErrNameMismatch = errors.New("jobs: the job file names another job")
)

// RestartFrom says where Restart restarts a job from: exactly one of a
// checkpoint epoch of the job's own and a savepoint name.
type RestartFrom struct {
	Checkpoint string
	Savepoint  string
}

// Restart starts a job that is not running (stopped, failed or finished)
// again from one of its checkpoints or from a savepoint (of it, or of any
// job whose stateful operators fit its file), with the job file it was
// submitted with. The job's live state is replaced by the checkpoint's;
// the checkpoints newer than it go with it.
func (m *Manager) Restart(id string, from RestartFrom) (*Job, error) {
	j, err := m.job(id)
	if err != nil {
		return nil, err
	}
	if (from.Checkpoint == "") == (from.Savepoint == "") {
		return nil, errors.New("jobs: restart needs a checkpoint or a savepoint (one of them)")
	}
	if err := m.notRunning(j, "restart"); err != nil {
		return nil, err
	}
	j.waitEnded()
	stateDir := m.stateDir(id)
	var src string // the state directory and epoch to export
	epoch := state.Latest
	switch {
	case from.Checkpoint != "":
		e, perr := strconv.ParseUint(from.Checkpoint, 10, 64)
		if perr != nil {
			return nil, fmt.Errorf("%w: %q is not a checkpoint id (an epoch number, from GET /api/v1/jobs/%s/checkpoints)", ErrCheckpointNotFound, from.Checkpoint, id)
		}
		if _, _, err := state.ReadCheckpoint(vfs.Default, stateDir, e); err != nil {
			if errors.Is(err, state.ErrNoCheckpoint) {
				// (the server's paths are no business of the caller's)
				return nil, fmt.Errorf("%w: job %q has no complete checkpoint %d (GET /api/v1/jobs/%s/checkpoints lists them)", ErrCheckpointNotFound, id, e, id)
			}
			return nil, fmt.Errorf("%w: job %q has no complete checkpoint %d: %v", ErrCheckpointNotFound, id, e, err)
		}
		src, epoch = stateDir, e
	default:
		if _, err := m.savepoint(from.Savepoint); err != nil {
			return nil, err
		}
		src = filepath.Join(m.savepointPath(from.Savepoint), "state")
	}
	_, meta, err := state.ReadCheckpoint(vfs.Default, src, epoch)
	if err != nil {
		return nil, fmt.Errorf("read the checkpoint to restart %s from: %w", id, err)
	}
	snap, err := engine.ParseSnapshot(meta)
	if err != nil {
		return nil, fmt.Errorf("read the checkpoint to restart %s from: %w", id, err)
	}
	if err := compatible(snap, j.Spec); err != nil {
		return nil, err
	}
	j.mu.Lock()
	deleting := j.mu.deleting
	j.mu.Unlock()
	if deleting {
		return nil, errDeleting(id)
	}
	if err := m.replaceState(src, epoch, stateDir); err != nil {
		return nil, fmt.Errorf("restart %s: %w", id, err)
	}
	j.restarts.reset()
	j.mu.Lock()
	return m.rerun(j, "job restarted", "job", id, "checkpoint", from.Checkpoint, "savepoint", from.Savepoint)
}

// replaceState makes checkpoint epoch of state directory src the only
// content of state directory dst: exported beside dst, then swapped in.
// A crash between the swap's two renames leaves no dst but a complete
// export; recoverState finishes the swap at the next start.
func (m *Manager) replaceState(src string, epoch uint64, dst string) error {
	fresh, old := dst+restartSuffix, dst+oldSuffix
	for _, d := range []string{fresh, old} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if _, err := state.ExportCheckpoint(vfs.Default, src, epoch, fresh); err != nil {
		return err
	}
	parent := filepath.Dir(dst)
	if err := atomicfile.SyncDir(parent); err != nil {
		return err
	}
	if err := os.Rename(dst, old); err != nil && !os.IsNotExist(err) {
		os.RemoveAll(fresh)
		return err
	}
	m.failAt("restart-state-aside")
	if err := os.Rename(fresh, dst); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(parent); err != nil {
		return err
	}
	return os.RemoveAll(old)
}

// Where replaceState exports and sets aside a job's state directory.
const (
	restartSuffix = ".restart.tmp"
	oldSuffix     = ".old.tmp"
)

// recoverState finishes or undoes a replaceState a crash cut short: with
// no state directory but a complete export (the export precedes the
// swap), the export becomes the state; what was set aside goes.
func (m *Manager) recoverState(dst string) error {
	fresh, old := dst+restartSuffix, dst+oldSuffix
	if _, err := os.Stat(dst); os.IsNotExist(err) {
		if _, err := os.Stat(fresh); err == nil {
			if err := os.Rename(fresh, dst); err != nil {
				return err
			}
			m.log.Info("restored state installed after a crash cut its restart short", "dir", dst)
		}
	}
	for _, d := range []string{fresh, old} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	return atomicfile.SyncDir(filepath.Dir(dst))
}

// ErrJobOwned is the error of replacing, deleting or deploying over a job
// that another owner manages.
var ErrJobOwned = errors.New("jobs: the job is managed by its owner")

// checkOwner refuses an action by owner on j when j's owner is another.
func checkOwner(j *Job, owner string) error {
	if j.Owner == owner {
		return nil
	}
	if j.Owner == "" {
		return &saidError{msg: fmt.Sprintf("jobs: job %q is a user's job, not one of %s", j.ID, owner), is: ErrJobOwned}
	}
	return &saidError{msg: fmt.Sprintf("jobs: job %q is managed by %s: replace, deploy over or delete it there (stop, resume and restart work here)", j.ID, j.Owner), is: ErrJobOwned}
}

// notRunning refuses an action on a running job (ErrRunning).
func (m *Manager) notRunning(j *Job, action string) error {
	m.mu.Lock()
	closed := m.mu.closed
	m.mu.Unlock()
	if closed {
		return errors.New("jobs: the server is shutting down")
	}
	if j.running() {
		return errRunning(j, action)
	}
	return nil
}

func errRunning(j *Job, action string) error {
	return fmt.Errorf("%w: stop it first (DELETE /api/v1/jobs/%s or runnel jobs stop %s), then %s it", ErrRunning, j.ID, j.ID, action)
}

// Delete removes a job that is not running, with its job file, its state
// and its checkpoints. Savepoints taken of it are kept. A start of the job
// in progress (a stopped job's, which its stop cut short) is waited for;
// what the job's last run left staged is settled first (settleStaged). A
// job with an owner is refused (ErrJobOwned): its owner deletes it
// (DeleteOwned).
func (m *Manager) Delete(id string) error { return m.DeleteOwned(id, "") }

// DeleteOwned is Delete by owner: of a job that owner manages ("" for a
// user's job).
func (m *Manager) DeleteOwned(id, owner string) error {
	j, err := m.job(id)
	if err != nil {
		return err
	}
	if err := checkOwner(j, owner); err != nil {
		return err
	}
	if err := m.notRunning(j, "delete"); err != nil {
		return err
	}
	// From here no run of j begins (a Resume, a restart attempt) and no
	// submit replaces it: the settling below may take long, and the job
	// goes after it. (m.mu as well: a submit checks under it.)
	m.mu.Lock()
	j.mu.Lock()
	var refused error
	switch {
	case j.mu.deleting || m.mu.jobs[id] != j:
		refused = errDeleting(id)
	case j.runningLocked():
		refused = errRunning(j, "delete")
	}
	j.mu.deleting = j.mu.deleting || refused == nil
	j.mu.Unlock()
	m.mu.Unlock()
	if refused != nil {
		return refused
	}
	j.waitEnded()
	m.settleStaged(context.Background(), j)
	m.mu.Lock()
	if m.mu.jobs[id] == j {
		delete(m.mu.jobs, id)
		j.markGone()
	}
	m.mu.Unlock()
	if err := m.removeJobDir(id); err != nil {
		return fmt.Errorf("delete job %s: %w", id, err)
	}
	m.log.Info("job deleted", "job", id)
	return nil
}

// DeployFrom says what state Deploy starts the new job file from.
type DeployFrom string

// Deploy starting points.
const (
	// DeploySavepoint carries the job's state over: a savepoint of the
	// running job (taken as it stops), or the latest checkpoint of a job
	// that is not running.
	DeploySavepoint DeployFrom = "savepoint"
	// DeployNone starts the new file from nothing.
	DeployNone DeployFrom = "none"
)

// Deployed is the outcome of a Deploy.
type Deployed struct {
	Job *Job
	// Savepoint is the savepoint the new file started from ("" for none).
	Savepoint string
}

// Deploy replaces job id with a new job file of the same name. With
// DeploySavepoint the job's state goes over to the new file: a change
// that does not fit it (a stateful operator removed, renamed or of
// another kind) is refused with ErrIncompatible before anything stops.
// A job with an owner is refused (ErrJobOwned): see DeployOwned.
func (m *Manager) Deploy(id string, src []byte, from DeployFrom) (Deployed, error) {
	return m.DeployOwned(id, src, from, "")
}

// DeployOwned is Deploy by owner: over a job that owner manages ("" for a
// user's job); the new job has the same owner.
func (m *Manager) DeployOwned(id string, src []byte, from DeployFrom, owner string) (Deployed, error) {
	spec, err := Parse(src)
	if err != nil {
		return Deployed{}, err
	}
	j, err := m.job(id)
	if err != nil {
		return Deployed{}, err
	}
	if err := checkOwner(j, owner); err != nil {
		return Deployed{}, err
	}
	if spec.Name != id {
		return Deployed{}, fmt.Errorf("%w: the file's name is %q, the job is %q; a job keeps its name (submit the file as a new job instead)", ErrNameMismatch, spec.Name, id)
	}
	if err := m.checkFiles(spec); err != nil {
		return Deployed{}, err
	}
	switch from {
	case DeployNone:
		if j.running() {
			if err := m.Stop(id); err != nil {
				return Deployed{}, err
			}
		}
		j.waitEnded()
		nj, err := m.SubmitWith(src, SubmitOptions{Replace: true, Owner: owner})
		return Deployed{Job: nj}, err
	case DeploySavepoint, "":
	default:
		return Deployed{}, fmt.Errorf("jobs: deploy from %q: use savepoint or none", from)
	}
	if err := compatible(&engine.Snapshot{Extra: extraOf(j.Spec, j.Source)}, spec); err != nil {
		return Deployed{}, fmt.Errorf("%w; to deploy anyway, deploy with from=none (the job starts from no state and reads its input from the file's start position)", err)
	}
	var name string
	if j.running() {
		sp, err := m.Savepoint(id, true)
		if err != nil {
			return Deployed{}, fmt.Errorf("take a savepoint of %s to deploy from: %w", id, err)
		}
		name = sp.Name
	} else {
		j.waitEnded()
		info, _, err := state.ReadCheckpoint(vfs.Default, m.stateDir(id), state.Latest)
		switch {
		case errors.Is(err, state.ErrNoCheckpoint) || errors.Is(err, os.ErrNotExist):
			// No state to carry over.
		case err != nil:
			return Deployed{}, fmt.Errorf("read the latest checkpoint of %s to deploy from: %w", id, err)
		default:
			name = m.newSavepointName(id)
			if err := m.exportSavepoint(j, info.Epoch, name); err != nil {
				return Deployed{}, fmt.Errorf("keep checkpoint %d of %s as savepoint %s to deploy from: %w", info.Epoch, id, name, err)
			}
		}
	}
	nj, err := m.SubmitWith(src, SubmitOptions{Savepoint: name, Replace: true, Owner: owner})
	if err != nil {
		return Deployed{Savepoint: name}, err
	}
	m.log.Info("job deployed", "job", id, "savepoint", name)
	return Deployed{Job: nj, Savepoint: name}, nil
}

// goneCh is closed once the job has left its manager: deleted, or
// replaced by a submit of its name.
func (j *Job) goneCh() <-chan struct{} {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.gone == nil {
		j.mu.gone = make(chan struct{})
	}
	return j.mu.gone
}

func (j *Job) markGone() {
	j.goneCh()
	j.mu.Lock()
	defer j.mu.Unlock()
	select {
	case <-j.mu.gone:
	default:
		close(j.mu.gone)
	}
}
