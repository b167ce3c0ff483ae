package postgres

import (
	"context"
	"fmt"

	"github.com/runnel-dev/runnel/sinks/epochs"
	"github.com/runnel-dev/runnel/state"
)

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
	s.txn = epochs.NewTxn(sp, "postgres sink "+s.cfg.Sink, func(ctx context.Context, e epochs.Epoch) error {
		return s.commitRows(ctx, e.Epoch, values(e.Rows))
	})
	return s.txn.Restore(ctx)
}

// PreCommit stores the rows written since the last PreCommit under epoch.
func (s *Sink) PreCommit(ctx context.Context, epoch uint64) error {
	return s.txn.PreCommit(epoch)
}

// Commit merges every staged epoch <= epoch into the table, each in its
// own transaction with its progress row, and forgets it.
func (s *Sink) Commit(ctx context.Context, epoch uint64) error {
	return s.txn.Commit(ctx, epoch)
}
