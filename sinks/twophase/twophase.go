// Package twophase keeps the bookkeeping that every transactional sink
// (sinks.Transactional) does the same way between OpenState, PreCommit
// and Commit: the last epoch pre-committed, the pre-committed epochs that
// wait for their checkpoint, oldest first, and the error that stopped the
// sink. What a sink stages and how it commits an epoch stay in the sink.
//
// A nil *Log is a sink that was not opened: PreCommit and Commit on it
// return ErrNotOpen.
package twophase

import (
	"errors"
	"fmt"
)

// ErrNotOpen is returned by PreCommit or Commit before OpenState.
var ErrNotOpen = errors.New("twophase: PreCommit or Commit before OpenState")

// Log is the epochs of one transactional sink after OpenState. E is what
// the sink keeps of a pre-committed epoch until it commits it.
type Log[E any] struct {
	// name starts every error: "postgres sink orders".
	name    string
	last    uint64
	pending []entry[E]
	// failed stops the sink after an error that leaves its target or its
	// state unknown: the job must restart from its checkpoint, which
	// still holds the epoch.
	failed error
}

type entry[E any] struct {
	epoch uint64
	val   E
}

// New returns the Log of the sink whose errors start with name.
func New[E any](name string) *Log[E] {
	return &Log[E]{name: name}
}

// Err is the error that stopped the sink, nil while it runs.
func (l *Log[E]) Err() error {
	if l == nil {
		return nil
	}
	return l.failed
}

// Fail stops the sink with err, prefixed by the sink's name, and returns
// the error every later call returns.
func (l *Log[E]) Fail(err error) error {
	l.failed = l.Wrap(err)
	return l.failed
}

// Wrap prefixes err with the sink's name, without stopping the sink.
func (l *Log[E]) Wrap(err error) error {
	return fmt.Errorf("%s: %w", l.name, err)
}

// Restored records that epoch was committed while the sink opened.
func (l *Log[E]) Restored(epoch uint64) {
	l.last = max(l.last, epoch)
}

// Last is the newest epoch pre-committed or restored.
func (l *Log[E]) Last() uint64 {
	return l.last
}

// PreCommit checks that the sink may pre-commit epoch (it is open, has
// not failed, and epoch is after the last one) and makes epoch the last.
func (l *Log[E]) PreCommit(epoch uint64) error {
	if l == nil {
		return ErrNotOpen
	}
	if l.failed != nil {
		return l.failed
	}
	if epoch <= l.last {
		return fmt.Errorf("%s: PreCommit epoch %d is not after the last one, %d", l.name, epoch, l.last)
	}
	l.last = epoch
	return nil
}

// Add queues what the sink staged under epoch for Commit.
func (l *Log[E]) Add(epoch uint64, v E) {
	l.pending = append(l.pending, entry[E]{epoch: epoch, val: v})
}

// Pending is what waits for Commit, oldest first.
func (l *Log[E]) Pending() []E {
	out := make([]E, len(l.pending))
	for i, e := range l.pending {
		out[i] = e.val
	}
	return out
}

// Commit hands every queued epoch <= epoch to commit, oldest first, and
// drops it once commit returns nil. An error fails the sink: retrying
// from memory could write an epoch twice.
func (l *Log[E]) Commit(epoch uint64, commit func(epoch uint64, v E) error) error {
	if l == nil {
		return ErrNotOpen
	}
	if l.failed != nil {
		return l.failed
	}
	for len(l.pending) > 0 && l.pending[0].epoch <= epoch {
		e := l.pending[0]
		if err := commit(e.epoch, e.val); err != nil {
			return l.Fail(fmt.Errorf("commit epoch %d (restart the job from its checkpoint): %w", e.epoch, err))
		}
		var zero entry[E]
		l.pending[0] = zero
		l.pending = l.pending[1:]
	}
	return nil
}
