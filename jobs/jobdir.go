package jobs

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/runnel-dev/runnel/internal/atomicfile"
	"github.com/runnel-dev/runnel/streams"
)

// A job's directory (DIR/ID: job.yaml, state.json and the Pebble state
// under state/) changes as a whole or not at all, so that a crash at any
// point leaves either the job as it was or the job as it was to become:
// never a deleted job that comes back with part of its state, nor a job
// file beside another job's state.
//
//   - A deletion renames the directory aside as ID.N.deleted.tmp, makes the
//     rename durable, then removes it.
//   - A submit prepares the new directory aside as ID.N.new.tmp (job file,
//     state file, state exported from a savepoint), renames it to
//     ID.N.ready.tmp once complete and durable, moves the old directory
//     aside as deleted, and renames the ready one into place.
//
// At start, recoverJobDirs finishes a submit cut between its last two
// renames (a ready directory whose job has no directory) and removes every
// other directory set aside, and savepoints not written whole. Job ids have no dots, so ID is the name up to
// the first.
const (
	newSuffix     = ".new.tmp"
	readySuffix   = ".ready.tmp"
	deletedSuffix = ".deleted.tmp"
)

// aside names a directory for job id beside the jobs.
func (m *Manager) aside(id, suffix string) string {
	return filepath.Join(m.dir, fmt.Sprintf("%s.%d%s", id, time.Now().UnixNano(), suffix))
}

// failAt runs the crash-testing failpoint of a step, if one is set.
func (m *Manager) failAt(step string) {
	if m.failpoint != nil {
		_ = m.failpoint(step)
	}
}

// removeJobDir deletes the directory of job id, if it has one: renamed
// aside durably first, then removed.
func (m *Manager) removeJobDir(id string) error {
	tomb := m.aside(id, deletedSuffix)
	if err := os.Rename(filepath.Join(m.dir, id), tomb); err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		return err
	}
	if err := atomicfile.SyncDir(m.dir); err != nil {
		return err
	}
	m.failAt("job-dir-aside")
	return os.RemoveAll(tomb)
}

// installJobDir makes prepared, a complete directory for job id, its
// directory, replacing the one it has, if any.
func (m *Manager) installJobDir(id, prepared string) error {
	if err := atomicfile.SyncDir(prepared); err != nil {
		return err
	}
	ready := strings.TrimSuffix(prepared, newSuffix) + readySuffix
	if err := os.Rename(prepared, ready); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(m.dir); err != nil {
		return err
	}
	m.failAt("job-dir-ready")
	dir := filepath.Join(m.dir, id)
	tomb := m.aside(id, deletedSuffix)
	err := os.Rename(dir, tomb)
	switch {
	case err == nil:
		m.failAt("job-dir-old-aside")
	case !os.IsNotExist(err):
		return err
	}
	if err := os.Rename(ready, dir); err != nil {
		return err
	}
	if err := atomicfile.SyncDir(m.dir); err != nil {
		return err
	}
	m.failAt("job-dir-installed")
	if err := os.RemoveAll(tomb); err != nil && !os.IsNotExist(err) {
		m.log.Error("remove the replaced job's directory", "job", id, "dir", tomb, "err", err)
	}
	return nil
}

// recoverJobDirs puts the jobs directory back in order after a crash (see
// above): a ready directory whose job has none becomes the job's; every
// other directory set aside goes.
func (m *Manager) recoverJobDirs() error {
	ents, err := os.ReadDir(m.dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() || !strings.HasSuffix(name, ".tmp") {
			continue
		}
		id, _, _ := strings.Cut(name, ".")
		path := filepath.Join(m.dir, name)
		if strings.HasSuffix(name, readySuffix) && nameRE.MatchString(id) {
			if _, err := os.Stat(filepath.Join(m.dir, id)); os.IsNotExist(err) {
				if err := os.Rename(path, filepath.Join(m.dir, id)); err != nil {
					return err
				}
				m.log.Info("job directory installed after a crash cut its submit short", "job", id)
				continue
			}
		}
		if strings.HasSuffix(name, readySuffix) || strings.HasSuffix(name, newSuffix) || strings.HasSuffix(name, deletedSuffix) {
			if err := os.RemoveAll(path); err != nil {
				return err
			}
			m.log.Info("removed a job directory set aside before a crash", "dir", name)
		}
	}
	if err := atomicfile.SyncDir(m.dir); err != nil {
		return err
	}
	// A savepoint is written whole beside the others, then renamed in
	// (exportSavepoint): one a crash cut short goes.
	sps, err := os.ReadDir(m.savepoints)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	for _, e := range sps {
		if e.IsDir() && strings.HasSuffix(e.Name(), ".tmp") {
			if err := os.RemoveAll(filepath.Join(m.savepoints, e.Name())); err != nil {
				return err
			}
			m.log.Info("removed a savepoint a crash cut short", "dir", e.Name())
		}
	}
	return nil
}

// persist writes j's job file and state. It takes j's state and writes it
// under persistMu, so the last state taken is the one on disk.
func (m *Manager) persist(j *Job) error { return m.persistIn(j, filepath.Join(m.dir, j.ID)) }

// persistIn is persist writing into dir.
func (m *Manager) persistIn(j *Job, dir string) error {
	m.persistMu.Lock()
	defer m.persistMu.Unlock()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	j.mu.Lock()
	p := persisted{Version: stateFileVersion, Created: j.Created, State: persistRunning, Owner: j.Owner}
	switch {
	case j.mu.stopped:
		p.State = persistStopped
	case j.mu.finished:
		p.State = persistFinished
	case j.mu.failed != "":
		p.State, p.Reason = persistFailed, j.mu.failed
	}
	if !j.mu.ended.IsZero() {
		ended := j.mu.ended
		p.Ended = &ended
	}
	j.mu.Unlock()
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := streams.WriteFileAtomic(vfs.Default, filepath.Join(dir, "job.yaml"), j.Source); err != nil {
		return err
	}
	return streams.WriteFileAtomic(vfs.Default, filepath.Join(dir, "state.json"), b)
}
