package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/runnel-dev/runnel/internal/atomicfile"
	"github.com/runnel-dev/runnel/state"
)

// Settling what a job's last run staged before its state goes. A run's
// transactional sinks stage output (S3 objects under the staging prefix,
// rows and records kept in the job's state) that a checkpoint's commit
// publishes; what a run that did not end at a committed checkpoint left
// staged, the next start settles as it opens the sinks' state: it
// publishes what a completed checkpoint staged and discards the rest.
// A job deleted or replaced before a start did so (a stop or the
// server's close cut its start short, or it failed) would leave that
// output behind for good: objects in the staging prefix that nothing
// deletes, a completed checkpoint's rows never written. So a delete or a
// replace settles it first, as a start would, without beginning a run.
//
// The marker file stagedMarker in the job's directory says that there may
// be such output: it is made (durably) before a run's setup begins, and
// removed once a run stopped at a committed final checkpoint; a job that
// finished committed its last checkpoint too. A job without it (stopped
// at its final checkpoint, closed with the server, or never run) has
// nothing staged, so its delete needs none of its targets: a delete
// while a target does not answer returns at once.

// stagedMarker is the file in a job's directory whose presence says its
// last run may have left output staged.
const stagedMarker = "staged"

// settleTimeout bounds a delete's or a replace's settling of what the
// job's last run staged (each sink's connect is bounded by 30 s too).
const settleTimeout = 2 * time.Minute

// markStaged records, durably, that job id's run may stage output.
func (m *Manager) markStaged(id string) error {
	dir := filepath.Join(m.dir, id)
	p := filepath.Join(dir, stagedMarker)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	f, err := os.Create(p)
	if err != nil {
		return fmt.Errorf("mark staged output: %w", err)
	}
	err = errors.Join(f.Sync(), f.Close())
	if err == nil {
		err = atomicfile.SyncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("mark staged output: %w", err)
	}
	return nil
}

// clearStaged records that job id has nothing staged.
func (m *Manager) clearStaged(id string) {
	if err := os.Remove(filepath.Join(m.dir, id, stagedMarker)); err != nil && !os.IsNotExist(err) {
		m.log.Error("job stopped at a committed checkpoint, but its marker of staged output stays", "job", id, "err", err)
	}
}

// hasStaged reports whether j's last run may have left output staged.
func (m *Manager) hasStaged(j *Job) bool {
	j.mu.Lock()
	finished := j.mu.finished
	j.mu.Unlock()
	if finished {
		return false
	}
	_, err := os.Stat(filepath.Join(m.dir, j.ID, stagedMarker))
	return err == nil
}

// settleStaged settles what j's last run left staged, if it may have left
// any, before j's state goes: j is built, its state opened from its
// latest checkpoint and each transactional sink's state opened, which
// publishes and discards as a start does; no run begins. j is not
// running and no start of it is in progress. The settling counts as a
// start of j's (beginStart): the manager's Close cuts it short, and so
// does a cancel of ctx (a replacing job's start). A settling that fails
// is logged, and the delete or replace goes on: the output is left as it
// was.
func (m *Manager) settleStaged(ctx context.Context, j *Job) {
	if !m.hasStaged(j) {
		return
	}
	sctx, end := m.track(j, false)
	defer end()
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	stop := context.AfterFunc(sctx, cancel)
	defer stop()
	if err := m.settle(ctx, j); err != nil {
		m.log.Error("what the job's last run staged was not settled before its state went: it is left staged (an S3 sink's objects under its staging prefix)",
			"job", j.ID, "err", err)
		return
	}
	m.log.Info("what the job's last run staged is settled", "job", j.ID)
}

func (m *Manager) settle(ctx context.Context, j *Job) error {
	built, err := Build(j.Spec, Env{Store: m.store, Files: m.files, Resume: true, Logger: m.log, ctx: ctx})
	if err != nil {
		return err
	}
	defer closeSinks(built)
	cs, err := m.openState(j, built)
	if err != nil {
		return err
	}
	defer cs.db.Close()
	for _, s := range built.Graph.Sinks {
		tx, ok := s.Sink.(interface {
			OpenState(context.Context, *state.Space) error
		})
		if !ok {
			continue
		}
		sp, err := cs.db.Namespace(s.ID, "sink")
		if err == nil {
			err = tx.OpenState(ctx, sp)
		}
		if err != nil {
			return fmt.Errorf("open state of sink %s: %w", s.ID, err)
		}
	}
	return nil
}
