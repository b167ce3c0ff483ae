package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Position returns the progress recorded for task by CommitAt: the
// position after the last rows committed (0 when none were).
func (s *Sink) Position(ctx context.Context, task string) (int64, error) {
	var pos int64
	err := s.conn.QueryRow(ctx, `SELECT epoch FROM `+ProgressTable+` WHERE job = $1 AND sink = $2 AND task = $3`,
		s.progressJob(), s.cfg.Sink, task).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres sink %s: progress of %s: %w", s.cfg.Sink, task, err)
	}
	return pos, nil
}

// CommitAt merges vals, the rows between positions from and to of an
// external ordered input (a Kafka partition's offsets, say), into the
// table in one transaction that moves task's progress row from from to
// to. When the row does not hold from (the rows were committed before a
// crash, or by another writer of the same input), nothing is written and
// the row's value is returned, for the caller to go on from there;
// otherwise to is returned. Task names must differ from the checkpoint
// epochs' task, "0".
func (s *Sink) CommitAt(ctx context.Context, task string, from, to int64, vals []any) (int64, error) {
	if task == "" || task == "0" {
		return 0, fmt.Errorf("postgres sink %s: task %q is reserved", s.cfg.Sink, task)
	}
	defer s.watch.Watch(fmt.Sprintf("the transaction of task %s's rows to position %d (%d rows)", task, to, len(vals)))()
	return s.commitProgress(ctx, task, func(done int64) bool { return done == from }, to, vals)
}

// ddlLock is the PostgreSQL advisory lock the sinks hold while they
// create tables: two sessions running CREATE TABLE IF NOT EXISTS for the
// same table at once may both try, and one fails (sinks of one job on
// several workers start together).
const ddlLock = 0x72756e6e656c // "runnel"

// withDDLLock runs the statement holding ddlLock.
func (s *Sink) withDDLLock(ctx context.Context, stmt string) error {
	if _, err := s.conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, int64(ddlLock)); err != nil {
		return fmt.Errorf("lock for table creation: %w", err)
	}
	defer s.conn.Exec(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, int64(ddlLock))
	_, err := s.conn.Exec(ctx, stmt)
	return err
}

// MoveProgress renames the progress row of task from to task to, unless
// to has one already: a caller that changed how it names a task takes
// over the row of the old name, once (the row left under from is gone, so
// it is never taken again).
func (s *Sink) MoveProgress(ctx context.Context, from, to string) error {
	if to == "" || to == "0" {
		return fmt.Errorf("postgres sink %s: task %q is reserved", s.cfg.Sink, to)
	}
	if _, err := s.conn.Exec(ctx, `UPDATE `+ProgressTable+` SET task = $4 WHERE job = $1 AND sink = $2 AND task = $3
		AND NOT EXISTS (SELECT 1 FROM `+ProgressTable+` WHERE job = $1 AND sink = $2 AND task = $4)`,
		s.progressJob(), s.cfg.Sink, from, to); err != nil {
		return fmt.Errorf("postgres sink %s: move progress of %s to %s: %w", s.cfg.Sink, from, to, err)
	}
	return nil
}
