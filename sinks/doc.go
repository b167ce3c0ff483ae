// Package sinks owns where a job's results go: `log` (JSON rows printed to
// a writer, for `runnel run`), `file` (JSON lines, Arrow IPC file or
// Parquet), `stream` (one JSON record per result into a Runnel stream,
// partition key = the window key) and `dashboard` (the last N rows kept as
// Arrow record batches for the live UI and the results API).
//
// A Sink gets Rows — a key and a JSON-like value — from one runtime task
// per sink, in batches; see Sink for the contract.
//
// In a checkpointed job the stream and dashboard sinks are Transactional.
// The stream sink stages records per checkpoint in the job's state and
// appends them once the checkpoint is durable, so after crashes the output
// stream holds each result exactly once (txn_stream.go states the
// guarantee and its assumptions). The dashboard shows rows at once and
// stores its retained rows with each checkpoint, so a restored job's
// dashboard holds exactly its checkpoint's rows (txn_dashboard.go).
//
// Staged output is committed where it was staged for: a sink restored with
// another target (a deploy from a savepoint with a changed job file)
// commits the checkpoint's staged output to the old target, and a target
// deleted since (for the stream sink, also one deleted and created again
// under its name) fails OpenState with ErrStagedTargetGone. The exactly-once
// sinks in sub-packages (kafka, postgres, s3) do the same. A job drops a
// stream sink's epochs staged for a stream that is gone before it opens the
// sink, with a warning (DropStagedOfGoneStreams): they went with the stream.
//
// Columnar sinks (Arrow, Parquet, dashboard) need a schema. Callers pass
// the columns when they know them (a window's result columns, in order; a
// detect operator's explanation as a Struct column with its fields);
// otherwise the schema is inferred from the first batch: window_start and
// window_end (timestamp[ms, UTC]) and key (string) first when present,
// then the remaining fields in alphabetical order, typed from their first
// non-null value (float64 numbers, strings, bools; anything else is
// written as its JSON text). Fields that are missing from a row are nulls;
// fields not in the schema are dropped.
package sinks
