// Package kafka is a job sink that writes rows to a Kafka topic with
// franz-go, exactly once through Kafka transactions.
//
// Guarantee, in a checkpointed job: after any number of crashes, a
// read_committed consumer of the topic sees the record of every row
// written before a completed checkpoint exactly once; rows of one key keep
// their order. Rows after the last completed checkpoint are replayed by
// the restarted job's sources.
//
// How, the two-phase pattern of Flink's Kafka sink with Runnel's
// checkpoints: Write stages rows; PreCommit(e) stores them in the sink's
// state space under e (package sinks/epochs), so the checkpoint holds
// them; Commit(e), once the checkpoint is durable, writes the epoch in one
// Kafka transaction of the sink's transactional producer — the records,
// plus a transactional offset commit that records e as the sink's
// progress (group runnel-sink.JOB.SINK.INCARNATION, offset e on
// partition 0 of the topic; the incarnation, kept by package sinks/epochs
// in the sink's state, tells a job started without state from an earlier
// one of the same name, and a checkpoint taken before sinks kept one uses
// the group runnel-sink.JOB.SINK) — and commits it. After a crash, the new producer's
// initialisation under the same transactional id fences the old one and
// aborts its open transaction; OpenState then reads the progress (waiting
// for stable offsets) and commits again only the restored epochs above it.
// So an epoch's records and its progress are committed together or not at
// all, and a replayed epoch is skipped.
//
// A staged epoch keeps the topic it was staged for, and is committed there
// with its progress on that topic: a job restored with its topic changed
// (a deploy from a savepoint with a new job file) commits the
// checkpoint's epochs to the old topic (skipping those already there), and
// only its own rows to the new one. If the old topic was deleted,
// OpenState fails with sinks.ErrStagedTargetGone naming it.
//
// The transactional id is runnel.JOB.SINK: two jobs with the same name
// and sink id writing at once fence each other.
package kafka
