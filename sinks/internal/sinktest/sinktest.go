// Package sinktest holds what the tests of the exactly-once sinks share:
// the job's state store opened as a restarted job opens it, and one
// checkpoint epoch driven through a sink.
package sinktest

import (
	"context"
	"errors"
	"testing"

	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/epochs"
	"github.com/runnel-dev/runnel/state"
)

// Restore opens the state store in dir from its latest checkpoint (a fresh
// store when there is none), as a restarted job does, and returns it with
// the key space of the sink named sink.
func Restore(t testing.TB, dir, sink string) (*state.DB, *state.Space) {
	t.Helper()
	db, _, _, err := state.Restore(dir, state.Latest, state.Options{})
	if errors.Is(err, state.ErrNoCheckpoint) {
		db, err = state.Open(dir, state.Options{})
	}
	if err != nil {
		t.Fatal(err)
	}
	sp, err := db.Namespace(sink, "sink")
	if err != nil {
		t.Fatal(err)
	}
	return db, sp
}

// Open opens s, which the caller just created (err is the creation's
// error), on the key space of the sink named sink in a fresh state store
// in a temporary directory. Both are closed when the test ends.
func Open(t testing.TB, s sinks.Transactional, err error, sink string) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sp, err := db.Namespace(sink, "sink")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.OpenState(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
}

// Epoch writes rows to s, pre-commits them under epoch e and checkpoints
// db: the epoch is durable, not yet committed.
func Epoch(t testing.TB, s sinks.Transactional, db *state.DB, e uint64, rows ...sinks.Row) {
	t.Helper()
	preCommit(t, s, e, rows)
	if _, err := db.Checkpoint(e, nil); err != nil {
		t.Fatal(err)
	}
}

// Checkpoint is one whole checkpoint of a running job for s: rows
// written, pre-committed under epoch e and committed.
func Checkpoint(t testing.TB, s sinks.Transactional, e uint64, rows []sinks.Row) {
	t.Helper()
	preCommit(t, s, e, rows)
	if err := s.Commit(context.Background(), e); err != nil {
		t.Fatal(err)
	}
}

// preCommit writes rows to s and pre-commits them under epoch e.
func preCommit(t testing.TB, s sinks.Transactional, e uint64, rows []sinks.Row) {
	t.Helper()
	ctx := context.Background()
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.PreCommit(ctx, e); err != nil {
		t.Fatal(err)
	}
}

// Job is a checkpointed job's use of one exactly-once sink across
// simulated crashes: each Open restores the state store in Dir as a
// restarted job does and opens a new sink (from New) on it.
type Job[S sinks.Transactional] struct {
	T *testing.T
	// Dir is the job's state directory; Sink the sink's name, whose key
	// space the sink gets.
	Dir, Sink string
	New       func() (S, error)
	// DB and S are the store and the sink of the current run.
	DB *state.DB
	S  S
}

// Open restores the store, creates the sink and returns the error of its
// OpenState.
func (j *Job[S]) Open() error {
	j.T.Helper()
	db, sp := Restore(j.T, j.Dir, j.Sink)
	s, err := j.New()
	if err != nil {
		j.T.Fatal(err)
	}
	j.DB, j.S = db, s
	return s.OpenState(context.Background(), sp)
}

// Crash drops the sink and the store without a final checkpoint.
func (j *Job[S]) Crash() {
	j.S.Close()
	j.DB.Close()
}

// Start is Open, failing the test on an error.
func (j *Job[S]) Start() {
	j.T.Helper()
	if err := j.Open(); err != nil {
		j.T.Fatal(err)
	}
}

// EpochErr writes rows, pre-commits them under e and checkpoints (see
// Epoch); with commit, it also commits them and returns Commit's error.
func (j *Job[S]) EpochErr(e uint64, commit bool, rows ...sinks.Row) error {
	j.T.Helper()
	Epoch(j.T, j.S, j.DB, e, rows...)
	if commit {
		return j.S.Commit(context.Background(), e)
	}
	return nil
}

// Epoch is EpochErr, failing the test on an error.
func (j *Job[S]) Epoch(e uint64, commit bool, rows ...sinks.Row) {
	j.T.Helper()
	if err := j.EpochErr(e, commit, rows...); err != nil {
		j.T.Fatal(err)
	}
}

// StageLegacy stages rows under epoch e with package sinks/epochs in the
// space of the sink named sink in the store in dir, as a sink did before
// sinks kept an incarnation (none is stored), and checkpoints the store:
// a checkpoint taken before the upgrade.
func StageLegacy(t testing.TB, dir, sink string, e uint64, rows ...epochs.Row) {
	t.Helper()
	db, sp := Restore(t, dir, sink)
	defer db.Close()
	if _, err := epochs.Stage(sp, e, "", rows); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Checkpoint(e, nil); err != nil {
		t.Fatal(err)
	}
}
