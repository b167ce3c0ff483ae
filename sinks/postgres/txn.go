package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/sinks/epochs"
	"github.com/runnel-dev/runnel/state"
)

type txnState struct {
	sp      *state.Space
	staged  []any
	pending []epochs.Epoch
	last    uint64
	// failed stops the sink after a commit error: the job must restart
	// from its checkpoint, which still holds the epoch.
	failed error
}

var errNoTxn = errors.New("postgres sink: PreCommit or Commit before OpenState")

func values(rows []epochs.Row) []any {
	vals := make([]any, len(rows))
	for i, r := range rows {
		vals[i] = r.Value
	}
	return vals
}

// OpenState switches the sink to staged writes and commits the epochs
// restored in sp; the progress row skips those already in the table.
func (s *Sink) OpenState(ctx context.Context, sp *state.Space) error {
	if s.txn != nil {
		return fmt.Errorf("postgres sink %s: OpenState called twice", s.cfg.Sink)
	}
	t := &txnState{sp: sp}
	s.txn = t
	staged, err := epochs.Load(sp)
	if err == nil {
		for _, e := range staged {
			if err = s.commitRows(ctx, e.Epoch, values(e.Rows)); err != nil {
				break
			}
			if err = epochs.Forget(sp, e); err != nil {
				break
			}
			t.last = e.Epoch
		}
	}
	if err != nil {
		t.failed = fmt.Errorf("postgres sink %s: recover staged epochs: %w", s.cfg.Sink, err)
		return t.failed
	}
	return nil
}

// PreCommit stores the rows written since the last PreCommit under epoch.
func (s *Sink) PreCommit(ctx context.Context, epoch uint64) error {
	t := s.txn
	if t == nil {
		return errNoTxn
	}
	if t.failed != nil {
		return t.failed
	}
	if epoch <= t.last {
		return fmt.Errorf("postgres sink %s: PreCommit epoch %d is not after the last one, %d", s.cfg.Sink, epoch, t.last)
	}
	t.last = epoch
	if len(t.staged) == 0 {
		return nil
	}
	rows := make([]epochs.Row, len(t.staged))
	for i, v := range t.staged {
		rows[i].Value = v
	}
	e, err := epochs.Stage(t.sp, epoch, rows)
	if err != nil {
		return fmt.Errorf("postgres sink %s: %w", s.cfg.Sink, err)
	}
	t.pending = append(t.pending, e)
	t.staged = nil
	return nil
}

// Commit merges every staged epoch <= epoch into the table, each in its
// own transaction with its progress row, and forgets it.
func (s *Sink) Commit(ctx context.Context, epoch uint64) error {
	t := s.txn
	if t == nil {
		return errNoTxn
	}
	if t.failed != nil {
		return t.failed
	}
	for len(t.pending) > 0 && t.pending[0].Epoch <= epoch {
		e := t.pending[0]
		err := s.commitRows(ctx, e.Epoch, values(e.Rows))
		if err == nil {
			err = epochs.Forget(t.sp, e)
		}
		if err != nil {
			t.failed = fmt.Errorf("postgres sink %s: commit epoch %d (restart the job from its checkpoint): %w", s.cfg.Sink, e.Epoch, err)
			return t.failed
		}
		t.pending = t.pending[1:]
	}
	return nil
}
