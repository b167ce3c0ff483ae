package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/runnel-dev/runnel/sinks"
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

// target is what a staged epoch was staged for: the database and the
// table (epochs.Epoch.Target holds it as JSON).
type target struct {
	DSN   string `json:"dsn"`
	Table string `json:"table"`
}

func (c *Config) target() string {
	b, _ := json.Marshal(target{DSN: c.DSN, Table: c.Table})
	return string(b)
}

// OpenState switches the sink to staged writes and commits the epochs
// restored in sp, each to the database and table it was staged for; the
// progress row skips those already in the table.
func (s *Sink) OpenState(ctx context.Context, sp *state.Space) error {
	if s.txn != nil {
		return fmt.Errorf("postgres sink %s: OpenState called twice", s.cfg.Sink)
	}
	s.txn = epochs.NewTxn(sp, "postgres sink "+s.cfg.Sink, s.cfg.target(), s.commitEpoch)
	if err := s.txn.Restore(ctx); err != nil {
		return err
	}
	s.opened = true
	return nil
}

// commitEpoch merges e into the table it was staged for. An epoch staged
// for another database or table (a deploy changed the sink's) goes there
// through a connection of its own, with the progress row of that
// database; if that table is gone and its progress shows the epoch not
// committed, it fails with sinks.ErrStagedTargetGone.
func (s *Sink) commitEpoch(ctx context.Context, e epochs.Epoch) error {
	s.inc = s.txn.Incarnation()
	if e.Target == "" || e.Target == s.cfg.target() {
		return s.commitRows(ctx, e.Epoch, values(e.Rows))
	}
	var to target
	if err := json.Unmarshal([]byte(e.Target), &to); err != nil {
		return fmt.Errorf("epoch %d: staged target %q: %w", e.Epoch, e.Target, err)
	}
	if to.DSN == s.cfg.DSN && to.Table == s.cfg.Table {
		return s.commitRows(ctx, e.Epoch, values(e.Rows))
	}
	cfg := s.cfg
	cfg.DSN, cfg.Table, cfg.CreateTable = to.DSN, to.Table, false
	old, err := New(ctx, cfg)
	if err != nil {
		return fmt.Errorf("epoch %d was staged for table %s of %s: %w", e.Epoch, to.Table, to.DSN, err)
	}
	defer old.Close()
	old.inc = s.inc
	if len(old.cols) == 0 {
		done, err := old.Position(ctx, "0")
		if err != nil {
			return err
		}
		if done >= int64(e.Epoch) {
			return nil // committed before the table was dropped
		}
		return fmt.Errorf("%w: the %d rows of checkpoint epoch %d were staged for table %q of %s, which no longer exists "+
			"(create it again and restart the job to deliver them there; they are not written to %q)",
			sinks.ErrStagedTargetGone, len(e.Rows), e.Epoch, to.Table, to.DSN, s.cfg.Table)
	}
	return old.commitRows(ctx, e.Epoch, values(e.Rows))
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
