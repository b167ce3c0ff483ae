// Package postgres is a job sink that writes rows into a PostgreSQL table
// with pgx: plain inserts, or upserts on key columns.
//
// Guarantee, in a checkpointed job: after any number of crashes, the table
// holds the rows of every completed checkpoint exactly once (with key
// columns: the last row of each key). How: Write stages rows in memory;
// PreCommit(e) stores them in the sink's state space under epoch e, so the
// checkpoint holds them; Commit(e), once the checkpoint is durable, copies
// each staged epoch into a temporary table (COPY) and merges it into the
// target in one transaction that also advances the sink's progress row
// (job, sink, task, epoch) in runnel_sink_progress. A restored job finds
// the epochs whose commit may have been cut short in its state space and
// commits them again; the progress row, read FOR UPDATE in the same
// transaction, makes a replayed epoch a no-op. So the database itself
// decides, atomically, whether an epoch is in the table.
//
// The progress row's job is NAME@INCARNATION, the incarnation being the
// one package sinks/epochs keeps in the sink's state: a job started
// without state (deleted and submitted again, replaced without a
// savepoint, a new data directory) counts its epochs from 1 again and
// must not find the earlier run's row. A checkpoint taken before sinks
// kept an incarnation commits its restored epochs against the row of that
// time (job = NAME).
//
// A staged epoch keeps the database (DSN) and table it was staged for. A
// job restored with either changed (a deploy from a savepoint with a new
// job file) commits the checkpoint's epochs there, with that database's
// progress row, and only its own rows to the new table; if the old table
// was dropped before an epoch reached it, OpenState fails with
// sinks.ErrStagedTargetGone naming it.
//
// The staging is package sinks/epochs.
//
// On scale-out workers (package cluster) rows come from an outbox topic
// instead: CommitAt merges the rows of a range of its offsets in one
// transaction that moves the partition's progress row (task outbox/ID/P,
// ID the topic's; MoveProgress takes over a row of an older name)
// from the range's start to its end, and writes nothing when the row is
// elsewhere, so a replayed range is skipped; Position is where to resume.
// Sinks create tables holding an advisory lock, so sinks of one job
// opened at once on several workers do not fail on each other's CREATE.
//
// Without checkpoints (runnel run of bounded input) each Write is its own
// transaction: at least once.
//
// Credentials: the DSN may not hold a password; pgx reads it from
// PGPASSWORD or a passfile (~/.pgpass, PGPASSFILE) of the server process.
package postgres
