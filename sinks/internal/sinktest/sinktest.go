// Package sinktest holds what the tests of the exactly-once sinks share:
// the job's state store opened as a restarted job opens it, and one
// checkpoint epoch driven through a sink.
package sinktest

import (
	"context"
	"errors"
	"testing"

	"github.com/runnel-dev/runnel/sinks"
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

// Epoch writes rows to s, pre-commits them under epoch e and checkpoints
// db: the epoch is durable, not yet committed.
func Epoch(t testing.TB, s sinks.Transactional, db *state.DB, e uint64, rows ...sinks.Row) {
	t.Helper()
	ctx := context.Background()
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.PreCommit(ctx, e); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Checkpoint(e, nil); err != nil {
		t.Fatal(err)
	}
}

// Checkpoint is one whole checkpoint of a running job for s: rows
// written, pre-committed under epoch e and committed.
func Checkpoint(t testing.TB, s sinks.Transactional, e uint64, rows []sinks.Row) {
	t.Helper()
	ctx := context.Background()
	if err := s.Write(ctx, rows); err != nil {
		t.Fatal(err)
	}
	if err := s.PreCommit(ctx, e); err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(ctx, e); err != nil {
		t.Fatal(err)
	}
}
