package sources

import "context"

// PositionChecker is implemented by sources whose positions hold only for
// the incarnation of what they were read from: a Kafka topic deleted and
// created again numbers its records from 0 again, and a file rewritten
// has other lines under the same numbers. Resumed as they are, such
// positions would silently skip records of the new incarnation.
//
// A job manager records Bindings with each checkpoint's positions and,
// before a restore, calls CheckPositions once, before the run's first
// Shards or Open.
type PositionChecker interface {
	// Bindings names what the source's readers read, for a checkpoint to
	// record beside their positions (Kafka: each topic's ID, by topic);
	// nil when the positions identify it themselves (a file's carry a
	// checksum of the lines up to them). It is safe to call while
	// readers run.
	Bindings() map[string]string
	// CheckPositions compares a checkpoint's positions (by shard id) and
	// the bindings recorded with them (nil for a checkpoint written
	// without) with what the source reads now, and returns what must
	// change. Shards it does not read are left alone. An error means the
	// check could not be made (a broker out of reach).
	CheckPositions(ctx context.Context, positions, bindings map[string]string) ([]PositionProblem, error)
}

// PositionProblem is one thing CheckPositions found wrong with some
// shards' positions, and what the job does instead.
type PositionProblem struct {
	// Problem says what is wrong and what the job does about it, for the
	// job's warnings and the ERROR log: it names the topic, partition or
	// file and, where records are skipped, how many.
	Problem string
	// Resume maps each shard concerned to the position to resume after
	// instead; "" drops the shard's position, so the shard is read as one
	// the checkpoint does not know.
	Resume map[string]string
}
