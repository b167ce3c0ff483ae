package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/atomicfile"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

// Checkpointing of the manager's jobs: every job keeps its operator state
// in a Pebble store under DIR/<id>/state, takes a checkpoint every
// checkpoint.every, resumes from its latest checkpoint when it starts
// again (after a crash or a restart), and can be stopped with a savepoint
// and started from one (kept under the savepoints directory).

// Errors of savepoints.
var (
	ErrSavepointNotFound = errors.New("jobs: savepoint not found")
	ErrIncompatible      = errors.New("jobs: the savepoint does not fit the job file")
	ErrNotRunning        = errors.New("jobs: job is not running")
)

// CheckpointInfo is one checkpoint of a job, as the API reports it.
type CheckpointInfo struct {
	Epoch uint64    `json:"epoch"`
	Time  time.Time `json:"time"`
	// DurationMS is the whole checkpoint, barrier to commit (the store
	// part alone for checkpoints of an earlier run).
	DurationMS float64 `json:"duration_ms"`
	// HeldMS is how long the sources were held at the barrier: no record
	// was read meanwhile.
	HeldMS    *float64 `json:"held_ms,omitempty"`
	Size      int64    `json:"size_bytes"`
	Status    string   `json:"status"`
	Savepoint string   `json:"savepoint,omitempty"`
	Error     string   `json:"error,omitempty"`
}

// Checkpoint statuses besides state.StatusComplete.
const (
	CheckpointFailed = "failed"
)

// ckptState is a job's checkpoint bookkeeping for one run.
type ckptState struct {
	mu      sync.Mutex // serialises checkpoints, savepoints and closing db
	db      *state.DB
	restore *engine.Snapshot
	// run records checkpoints of this run: full durations, hold times,
	// failures and savepoint names, by epoch (failures by attempt).
	run      map[uint64]CheckpointInfo
	failed   []CheckpointInfo
	warnings []string
	// skipped is how many damaged checkpoints the restore passed over.
	skipped int
	closed  bool
	// done is closed once the store is closed after the run ended.
	done chan struct{}
	// listed is the history last reported, for reports made while a
	// checkpoint holds mu (one an operator stuck in a long call delays).
	listed atomic.Pointer[[]CheckpointInfo]
	// diskFull is the job's warning while its checkpoints fail because the
	// disk is full; nil once one succeeds.
	diskFull atomic.Pointer[string]
}

func newCkptState(db *state.DB, restore *engine.Snapshot) *ckptState {
	return &ckptState{db: db, restore: restore, run: map[uint64]CheckpointInfo{}, done: make(chan struct{})}
}

// stateful reports whether the operator kind keeps state in checkpoints.
func stateful(kind string) bool {
	k := lookupOperator(kind)
	return k != nil && k.Stateful
}

// snapshotExtra is what the manager adds to each checkpoint's snapshot.
type snapshotExtra struct {
	JobFile  string         `json:"job_file"`
	Stateful []statefulNode `json:"stateful"`
	// Stream and StreamCreated name the incarnation of the stream the
	// source read (for a stream source): its positions are positions of
	// that one only (sourceMoved).
	Stream        string    `json:"stream,omitempty"`
	StreamCreated time.Time `json:"stream_created,omitzero"`
}

type statefulNode struct {
	ID   string `json:"id"`
	Kind string `json:"kind"`
}

func extraOf(spec *Spec, src []byte) json.RawMessage {
	b, _ := json.Marshal(snapshotExtraOf(spec, src))
	return b
}

func snapshotExtraOf(spec *Spec, src []byte) snapshotExtra {
	e := snapshotExtra{JobFile: string(src)}
	for _, op := range spec.Operators {
		if stateful(op.Kind()) {
			e.Stateful = append(e.Stateful, statefulNode{ID: op.ID, Kind: op.Kind()})
		}
	}
	return e
}

// compatible says why a snapshot's state cannot be used by spec, or nil:
// every stateful operator of the snapshot must exist in spec with the same
// id and kind.
func compatible(snap *engine.Snapshot, spec *Spec) error {
	var e snapshotExtra
	if len(snap.Extra) > 0 {
		if err := json.Unmarshal(snap.Extra, &e); err != nil {
			return fmt.Errorf("%w: unreadable savepoint metadata: %v", ErrIncompatible, err)
		}
	}
	kinds := map[string]string{}
	for _, op := range spec.Operators {
		kinds[op.ID] = op.Kind()
	}
	var problems []string
	for _, n := range e.Stateful {
		switch k, ok := kinds[n.ID]; {
		case !ok:
			problems = append(problems, fmt.Sprintf("operator %q (%s) has state in the savepoint but is not in the job file", n.ID, n.Kind))
		case k != n.Kind:
			problems = append(problems, fmt.Sprintf("operator %q was a %s and is now a %s", n.ID, n.Kind, k))
		}
	}
	if len(problems) > 0 {
		names := operatorNames(func(k *operatorKind) bool { return k.Stateful })
		return fmt.Errorf("%w: %s; stateful operators (%s) must keep their ids and kinds", ErrIncompatible, strings.Join(problems, "; "), strings.Join(names, ", "))
	}
	return nil
}

func (m *Manager) stateDir(id string) string { return filepath.Join(m.dir, id, "state") }

func (m *Manager) stateOptions() state.Options {
	return state.Options{Logger: m.log, Retain: m.retain, Failpoint: m.failpoint}
}

func (m *Manager) jobStateOptions(j *Job) state.Options {
	o := m.stateOptions()
	if o.Retain == 0 {
		o.Retain = j.Spec.Checkpoint.Retain
	}
	return o
}

// openState opens a job's store: restored from its newest intact
// checkpoint if it has one (a crash or restart), or new. Damaged or lost
// checkpoints on the way are job warnings and ERROR logs (restoreProblems).
// built is the job as built for the run: its source checks its positions.
func (m *Manager) openState(j *Job, built *Built) (*ckptState, error) {
	dir := m.stateDir(j.ID)
	db, info, meta, rep, err := state.RestoreNewestGood(dir, m.jobStateOptions(j))
	warnings := m.restoreProblems(j, rep, info.Epoch, err)
	switch {
	case errors.Is(err, state.ErrNoCheckpoint):
		// No checkpoint completed: the job starts from its sources'
		// beginning, so whatever an earlier run wrote to the live store
		// (state, staged results) must go too, or it would count twice.
		// Checkpoints moved aside as damaged stay.
		if err := clearState(dir); err != nil {
			return nil, fmt.Errorf("clear state of job %s: %w", j.ID, err)
		}
		db, err = state.Open(dir, m.jobStateOptions(j))
		if err != nil {
			return nil, fmt.Errorf("open state of job %s: %w", j.ID, err)
		}
		cs := newCkptState(db, nil)
		cs.warnings, cs.skipped = warnings, len(rep.Skipped)
		return cs, nil
	case err != nil:
		// No intact checkpoint: the job stays down and says why, and
		// nothing is moved or removed.
		return nil, fmt.Errorf("restore state of job %s: %w; the checkpoints are kept as they are under %s (see docs/checkpoints.md)", j.ID, err, dir)
	}
	snap, err := engine.ParseSnapshot(meta)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("restore job %s from checkpoint %d: %w", j.ID, info.Epoch, err)
	}
	if err := compatible(snap, j.Spec); err != nil {
		db.Close()
		return nil, err
	}
	if snap.Job != j.ID {
		if err := dropSinkState(db, j.Spec); err != nil {
			db.Close()
			return nil, fmt.Errorf("restore job %s from a checkpoint of job %s: %w", j.ID, snap.Job, err)
		}
	} else {
		gone, err := m.dropStagedOfGoneStreams(j, db, snap)
		warnings = append(warnings, gone...)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("restore job %s from checkpoint %d: %w", j.ID, info.Epoch, err)
		}
		w, err := m.commitRemovedSinks(j, db, snap)
		if err != nil {
			m.log.Error("staged output of a removed sink not committed", "job", j.ID, "epoch", snap.Epoch, "err", err)
			db.Close()
			return nil, fmt.Errorf("restore job %s from checkpoint %d: %w", j.ID, info.Epoch, err)
		}
		warnings = append(warnings, w...)
	}
	if w := m.sourceMoved(j, snap); w != "" {
		m.log.Error("checkpoint positions are of another stream", "job", j.ID, "epoch", snap.Epoch, "problem", w)
		warnings = append(warnings, w)
	}
	moved, err := m.checkSourcePositions(j, jobSource(built), snap)
	if err != nil {
		db.Close()
		return nil, err
	}
	warnings = append(warnings, moved...)
	cs := newCkptState(db, snap)
	cs.warnings, cs.skipped = warnings, len(rep.Skipped)
	retention := m.retentionWarnings(j, snap)
	for _, w := range retention {
		m.log.Error("checkpoint invalidated by stream retention", "job", j.ID, "epoch", snap.Epoch, "problem", w)
	}
	cs.warnings = append(cs.warnings, retention...)
	m.log.Info("job restored from checkpoint", "job", j.ID, "epoch", info.Epoch, "taken", info.Time)
	return cs, nil
}

// restoreProblems turns what the restore found wrong into job warnings,
// each also an ERROR log. restored is the epoch restored (0: none; err
// says why).
func (m *Manager) restoreProblems(j *Job, rep state.RestoreReport, restored uint64, err error) []string {
	var out []string
	from := fmt.Sprintf("checkpoint %d", restored)
	if restored == 0 {
		from = "its sources' start (no checkpoint is left)"
	}
	if err != nil && !errors.Is(err, state.ErrNoCheckpoint) {
		from = "" // nothing restored: the job fails with err
	}
	for _, s := range rep.Skipped {
		w := fmt.Sprintf("checkpoint %d is damaged (%v)", s.Epoch, s.Err)
		if from != "" {
			w += fmt.Sprintf("; the job resumed from %s instead, reading again what came after it (a stream sink may repeat results committed since)", from)
		}
		if s.MovedTo != "" {
			w += "; its files were moved to " + s.MovedTo
		}
		m.log.Error("damaged checkpoint skipped", "job", j.ID, "epoch", s.Epoch, "restored", restored, "err", s.Err, "moved_to", s.MovedTo)
		out = append(out, w)
	}
	if rep.Lost != 0 {
		w := fmt.Sprintf("the manifest of checkpoint %d, the newest the job completed, is missing", rep.Lost)
		if from != "" {
			w += fmt.Sprintf("; the job resumed from %s instead, reading again what came after it (a stream sink may repeat results committed since)", from)
		}
		if rep.LostMovedTo != "" {
			w += "; what was left of it was moved to " + rep.LostMovedTo
		}
		m.log.Error("checkpoint manifest missing", "job", j.ID, "epoch", rep.Lost, "restored", restored, "moved_to", rep.LostMovedTo)
		out = append(out, w)
	}
	return out
}

// clearState removes a job's state directory but for the checkpoints
// moved aside as damaged.
func clearState(dir string) error {
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.Name() == state.DamagedDir {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// checkpointLoop checkpoints a running job every spec.Checkpoint.Every
// until it ends, then closes its store.
func (m *Manager) checkpointLoop(j *Job, rj *engine.Job, cs *ckptState) {
	every := j.Spec.Checkpoint.Every
	if every <= 0 {
		every = DefaultCheckpointEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-rj.Done():
			cs.mu.Lock()
			cs.closed = true
			if err := cs.db.Close(); err != nil {
				m.log.Error("close job state", "job", j.ID, "err", err)
			}
			cs.relist(j.stateDir)
			cs.mu.Unlock()
			m.ended(j, rj)
			close(cs.done)
			return
		case <-t.C:
			if _, err := m.checkpoint(j, rj, cs, engine.CheckpointOptions{}, ""); err != nil &&
				!errors.Is(err, engine.ErrNotRunning) && !errors.Is(err, ErrNotRunning) {
				m.log.Error("checkpoint failed", "job", j.ID, "err", err)
			}
		}
	}
}

// checkpoint takes one checkpoint of rj; with savepoint set it also
// exports it as that savepoint.
func (m *Manager) checkpoint(j *Job, rj *engine.Job, cs *ckptState, o engine.CheckpointOptions, savepoint string) (CheckpointInfo, error) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.closed {
		return CheckpointInfo{}, fmt.Errorf("%w: %s", ErrNotRunning, j.ID)
	}
	o.Extra = m.checkpointExtra(j)
	timeout := max(j.Spec.Checkpoint.Every, 30*time.Second)
	if o.Stop {
		timeout = 10 * time.Second // a stop falls back to a plain stop after this
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	begin := time.Now()
	res, err := rj.Checkpoint(ctx, o)
	if err != nil {
		if errors.Is(err, engine.ErrNotRunning) {
			return CheckpointInfo{}, err
		}
		ci := CheckpointInfo{Time: begin.UTC(), DurationMS: ms(time.Since(begin)), Status: CheckpointFailed, Error: err.Error()}
		cs.noteDiskFull(err, begin)
		cs.failed = append(cs.failed, ci)
		if len(cs.failed) > 20 {
			cs.failed = cs.failed[1:]
		}
		return ci, err
	}
	cs.diskFull.Store(nil)
	held := ms(res.Held)
	ci := CheckpointInfo{Epoch: res.Epoch, Time: res.Time.UTC(), DurationMS: ms(res.Duration), HeldMS: &held,
		Size: res.Size, Status: res.Status}
	if savepoint != "" {
		if err := m.exportSavepoint(j, res.Epoch, savepoint); err != nil {
			cs.run[res.Epoch] = ci
			return ci, fmt.Errorf("checkpoint %d was taken but not saved as savepoint %s: %w", res.Epoch, savepoint, err)
		}
		ci.Savepoint = savepoint
	}
	cs.run[res.Epoch] = ci
	cs.relist(j.stateDir)
	m.log.Debug("checkpoint", "job", j.ID, "epoch", res.Epoch, "held", res.Held, "duration", res.Duration, "size", res.Size)
	return ci, nil
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Checkpoints lists a job's checkpoints, oldest first: the complete ones
// its store keeps and the failed attempts of this run.
func (m *Manager) Checkpoints(id string) ([]CheckpointInfo, error) {
	j, err := m.job(id)
	if err != nil {
		return nil, err
	}
	return j.checkpoints(), nil
}

func (j *Job) checkpoints() []CheckpointInfo {
	j.mu.Lock()
	cs := j.mu.ckpt
	j.mu.Unlock()
	if cs == nil {
		// The job has not run since the server started: its store is
		// closed, and the checkpoints it keeps are those on disk.
		return storedCheckpoints(j.stateDir, nil)
	}
	if !cs.mu.TryLock() {
		if l := cs.listed.Load(); l != nil {
			return *l
		}
		return nil
	}
	defer cs.mu.Unlock()
	return cs.relist(j.stateDir)
}

// relist lists the checkpoints of cs (cs.mu held) and keeps the list for
// the reads that find cs.mu held: it is called after each checkpoint and
// when the store closes, so that such a read lists every checkpoint
// taken (a read right after a stop listed the stop's checkpoint only once
// the server restarted).
func (cs *ckptState) relist(dir string) []CheckpointInfo {
	var out []CheckpointInfo
	if !cs.closed {
		out = checkpointInfos(cs.db.Checkpoints(), cs.run)
	} else {
		out = storedCheckpoints(dir, cs.run)
	}
	out = append(out, cs.failed...)
	sort.SliceStable(out, func(a, b int) bool { return out[a].Time.Before(out[b].Time) })
	cs.listed.Store(&out)
	return out
}

// Savepoints.

var savepointName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

func (m *Manager) savepointPath(name string) string { return filepath.Join(m.savepoints, name) }

// newSavepointName names a savepoint of job id "ID-MS", MS the time in
// milliseconds, one later than the last name given when two come in the
// same millisecond, so that two savepoints never share a name.
func (m *Manager) newSavepointName(id string) string {
	for {
		last, now := m.savepointMS.Load(), time.Now().UnixMilli()
		ms := max(now, last+1)
		if m.savepointMS.CompareAndSwap(last, ms) {
			return fmt.Sprintf("%s-%d", id, ms)
		}
	}
}

// exportSavepoint keeps checkpoint epoch of job j as savepoint name: the
// job file and a standalone copy of the checkpoint.
func (m *Manager) exportSavepoint(j *Job, epoch uint64, name string) error {
	// Written whole beside the savepoints, then renamed in: a crash leaves
	// no savepoint half-written under its name (NewManager removes what it
	// leaves).
	dir := m.savepointPath(name)
	tmp := dir + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return err
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return err
	}
	if err := streams.WriteFileAtomic(vfs.Default, filepath.Join(tmp, "job.yaml"), j.Source); err != nil {
		return err
	}
	if _, err := state.ExportCheckpoint(vfs.Default, m.stateDir(j.ID), epoch, filepath.Join(tmp, "state")); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	if err := atomicfile.SyncDir(tmp); err != nil {
		return err
	}
	m.failAt("savepoint-exported")
	if err := os.Rename(tmp, dir); err != nil {
		return err
	}
	return atomicfile.SyncDir(m.savepoints)
}

// SavepointInfo describes a kept savepoint.
type SavepointInfo struct {
	Name  string    `json:"name"`
	Job   string    `json:"job"`
	Epoch uint64    `json:"epoch"`
	Time  time.Time `json:"time"`
	Size  int64     `json:"size_bytes"`
}

// Savepoint takes a checkpoint of a running job and keeps it as a
// savepoint named JOB-EPOCH; with stop the job's sources stop at it and
// the job ends (kept stopped across restarts).
func (m *Manager) Savepoint(id string, stop bool) (SavepointInfo, error) {
	j, err := m.job(id)
	if err != nil {
		return SavepointInfo{}, err
	}
	j.mu.Lock()
	rj, cs := j.mu.run, j.mu.ckpt
	j.mu.Unlock()
	if rj == nil || cs == nil || rj.Status().State != engine.Running {
		return SavepointInfo{}, fmt.Errorf("%w: %q is %s; a savepoint is taken of a running job (a job that is not running restarts from its checkpoints: GET /api/v1/jobs/%s/checkpoints)",
			ErrNotRunning, id, j.Info(false).State, id)
	}
	if stop {
		j.mu.Lock()
		j.mu.stopped = true
		j.mu.Unlock()
		if err := m.persist(j); err != nil {
			return SavepointInfo{}, fmt.Errorf("save job %s: %w", id, err)
		}
	}
	name := m.newSavepointName(j.ID)
	ci, err := m.checkpoint(j, rj, cs, engine.CheckpointOptions{Stop: stop}, name)
	if stop {
		m.finishStop(rj, err)
	}
	if err != nil {
		if !stop {
			// A task that fails under the checkpoint fails the checkpoint
			// before the run has ended and says it failed: give it the
			// moment it takes.
			select {
			case <-rj.Done():
			case <-time.After(failSettle):
			}
		}
		if st := rj.Status(); st.State == engine.Failed {
			// The job failed under the checkpoint (a record its operators
			// refuse, say): that is the job's state, not the server's fault.
			return SavepointInfo{}, fmt.Errorf("%w: job %q failed while its savepoint was taken: %s", ErrNotRunning, id, st.Reason)
		}
		return SavepointInfo{}, err
	}
	return SavepointInfo{Name: name, Job: j.ID, Epoch: ci.Epoch, Time: ci.Time, Size: ci.Size}, nil
}

// failSettle bounds how long Savepoint waits, after its checkpoint failed,
// for the run to end failed: a run that goes on had a checkpoint fault.
const failSettle = 2 * time.Second

// finishStop waits for a job whose sources stopped at a final checkpoint
// to drain; if the checkpoint failed, it stops the job the plain way.
func (m *Manager) finishStop(rj *engine.Job, ckptErr error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if ckptErr != nil {
		rj.Stop(ctx)
		return
	}
	select {
	case <-rj.Done():
	case <-ctx.Done():
		rj.Stop(ctx)
	}
}

// Savepoints lists the kept savepoints, newest first.
func (m *Manager) Savepoints() ([]SavepointInfo, error) {
	ents, err := os.ReadDir(m.savepoints)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, nil
		}
		return nil, err
	}
	var out []SavepointInfo
	for _, e := range ents {
		if !e.IsDir() || strings.HasSuffix(e.Name(), ".tmp") {
			continue
		}
		if sp, err := m.savepoint(e.Name()); err == nil {
			out = append(out, sp)
		}
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Time.After(out[b].Time) })
	return out, nil
}

func (m *Manager) savepoint(name string) (SavepointInfo, error) {
	if !savepointName.MatchString(name) {
		return SavepointInfo{}, fmt.Errorf("%w: %q is not a savepoint name", ErrSavepointNotFound, name)
	}
	dir := filepath.Join(m.savepointPath(name), "state")
	info, meta, err := state.ReadCheckpoint(vfs.Default, dir, state.Latest)
	if err != nil {
		if _, serr := os.Stat(m.savepointPath(name)); os.IsNotExist(serr) {
			// (the server's paths are no business of the caller's)
			return SavepointInfo{}, fmt.Errorf("%w: there is no savepoint named %s (GET /api/v1/savepoints lists them)", ErrSavepointNotFound, name)
		}
		return SavepointInfo{}, fmt.Errorf("%w: %s: %v", ErrSavepointNotFound, name, err)
	}
	sp := SavepointInfo{Name: name, Epoch: info.Epoch, Time: info.Time, Size: info.Size}
	if snap, err := engine.ParseSnapshot(meta); err == nil {
		sp.Job = snap.Job
	}
	return sp, nil
}
