package jobs

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/runnel-dev/runnel/internal/atomicfile"
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

// isDeleting reports whether a Delete of j began: no run of it begins
// after (rerun), and no submit replaces it, while the delete settles what
// the last run staged and removes the job.
func (j *Job) isDeleting() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.mu.deleting
}

// SettleFailures counts the deletes and replaces of a job that could not
// settle what its last run staged (its target did not answer, say), since
// the manager opened: that output was left staged or lost with the job's
// state.
func (m *Manager) SettleFailures() int64 { return m.settleFailures.Load() }

// settleHook, when set (by tests), is called as a settling begins.
var settleHook func(j *Job)

// markStaged records, durably, that a new run of j may stage output.
func (m *Manager) markStaged(j *Job) error {
	j.mu.Lock()
	j.mu.runs++ // an earlier run's clearStaged leaves the marker alone now
	j.mu.Unlock()
	dir := filepath.Join(m.dir, j.ID)
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

// clearStaged records that run gen of j (j.mu.runs as it began) left
// nothing staged, unless a later run began since.
func (m *Manager) clearStaged(j *Job, gen uint64) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.runs != gen {
		return
	}
	if err := os.Remove(filepath.Join(m.dir, j.ID, stagedMarker)); err != nil && !os.IsNotExist(err) {
		m.log.Error("job stopped at a committed checkpoint, but its marker of staged output stays", "job", j.ID, "err", err)
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
		m.settleFailures.Add(1)
		m.log.Error("what the job's last run staged was not settled before its state went: it is left staged (an S3 sink's objects under its staging prefix)",
			"job", j.ID, "err", err)
		return
	}
	m.log.Info("what the job's last run staged is settled", "job", j.ID)
}

// settle opens j's state from its latest checkpoint (as a start does:
// openState) and each staging sink of j's file, and each operator's
// dead-letter stream sink, on its key space, which settles what it
// staged. The sinks are built only for that (restoreOnly): no target is
// created, and the source and operators are not built.
func (m *Manager) settle(ctx context.Context, j *Job) error {
	if h := settleHook; h != nil {
		h(j)
	}
	cs, err := m.openState(j, nil)
	if err != nil {
		return err
	}
	defer cs.db.Close()
	ids := map[string]bool{}
	for _, s := range j.Spec.Sinks {
		ids[s.ID] = true
	}
	spaces, err := cs.db.Operators()
	if err != nil {
		return err
	}
	for _, id := range spaces {
		ids[id] = true
	}
	for _, id := range slices.Sorted(maps.Keys(ids)) {
		sink, kind := j.Spec.sinkOf(id)
		if !stagingSinkKinds[kind] {
			continue
		}
		sp, err := cs.db.Namespace(id, "sink")
		if err == nil {
			err = m.commitRemovedSink(ctx, j.Spec, id, sink, kind, sp)
		}
		if err != nil {
			return fmt.Errorf("sink %s: %w", id, err)
		}
	}
	return nil
}
