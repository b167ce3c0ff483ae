package sinks

import (
	"context"
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/state"
)

// Row is one result handed to a sink.
type Row struct {
	// Key is the record's key: the window key for window results, "" for
	// records that were never keyed.
	Key string
	// Value is the record, usually a map[string]any; for window results
	// {"window_start", "window_end", "key", <aggregates>...}.
	Value any
}

// Sink receives a job's results. The runtime calls Write and Close from one
// goroutine per sink.
//
// Write must not keep rows after returning (it may keep the Values). An
// error fails the job. Close flushes what is buffered and releases the
// sink; it is called once, also after a failed Write.
type Sink interface {
	Write(ctx context.Context, rows []Row) error
	Close() error
}

// ErrorRowCounter is implemented by sinks that divert rows they cannot
// write to an error output instead of failing (the S3 sink's error
// prefix); the runtime reports the count as the sink node's dead-lettered
// records.
type ErrorRowCounter interface {
	ErrorRows() int64
}

// Transactional is implemented by sinks that take part in checkpoints, so
// that after any number of crashes their output holds every result exactly
// once. The runtime calls the methods from the sink's own task, in this
// order: OpenState once before the first Write; then, for each checkpoint,
// PreCommit at its barrier (every row before the barrier has been
// written), and Commit once the checkpoint is durable. Commit(e) always
// comes before PreCommit(e+1); a checkpoint that failed gets no Commit,
// so the next Commit covers its rows too.
type Transactional interface {
	Sink
	// OpenState hands the sink its key space in the job's Pebble store.
	// The space holds what the sink wrote to it up to the checkpoint the
	// job restored from (nothing for a new job). Rows staged there
	// belong to completed checkpoints whose commit may have been cut
	// short: the sink commits them now, recognising and not repeating
	// output an interrupted commit already made.
	OpenState(ctx context.Context, sp *state.Space) error
	// PreCommit stages, under epoch, every row written since the last
	// PreCommit: what Commit needs must be in the space when PreCommit
	// returns.
	PreCommit(ctx context.Context, epoch uint64) error
	// Commit makes the rows staged under every epoch <= epoch visible and
	// forgets them.
	Commit(ctx context.Context, epoch uint64) error
}

// ErrStagedTargetGone marks records a restored checkpoint staged for a
// target (a stream, topic, table, bucket) that no longer exists: they
// cannot be delivered where they were staged for, and a transactional
// sink never delivers them elsewhere. OpenState fails with it, naming the
// target, so the loss is not silent; recreating the target and restarting
// delivers them, except to a stream: a stream created again is another
// stream (its incarnation differs), which the records were not staged for
// (DropStagedOfGoneStreams removes such epochs, for a restore to go on).
var ErrStagedTargetGone = errors.New("sinks: the target of staged records is gone")

// ErrConfig marks a sink configuration error.
var ErrConfig = errors.New("sinks: invalid configuration")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}
