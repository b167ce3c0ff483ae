// Package s3 is a job sink that writes rows as objects to Amazon S3 or
// any S3-compatible server (MinIO, versitygw, ...) through
// aws-sdk-go-v2's S3 client, as Kinesis Data Firehose does: Parquet
// (arrow-go's pqarrow, schema from the rows' Arrow schema), JSON lines, or
// gzip'd JSON lines.
//
// Objects. Rows are buffered per key prefix; an object is closed when its
// rows reach BufferBytes (measured as JSON, before conversion) or when its
// first row is BufferInterval old, whichever comes first, checked on each
// Write; a checkpoint closes every object too. A data object's key is
//
//	Prefix + Partition(row) + name + extension
//
// where Partition is a template of the row's time ({YYYY} {MM} {DD} {hh}
// {mm}, from its event time field or its arrival, in TimeZone, UTC by
// default) and fields ({field:NAME}, path-escaped), and name is
// JOB-SINK-RUN-EPOCH-TASK-SEQ (deterministic) or a UUID (random). RUN is
// kept in the sink's state, so a restarted job keeps it and a new job of
// the same name does not overwrite the old one's objects.
//
// Errors. A row that cannot be written (no key: a template field or the
// event time missing; not encodable; a field outside or not fitting the
// Parquet columns) becomes a JSON line under
// ErrorPrefix + TYPE/dt=YYYY-MM-DD/hh=HH/, TYPE being
// partitioning-failed or format-conversion-failed, with Firehose's
// error-document fields (attemptsMade, arrivalTimestamp, ErrorCode,
// ErrorMessage, attemptEndingTimestamp, rawData: the row's JSON in
// base64), and an ERROR log line; ErrorRows counts them. Error objects
// take the same way to publication as data objects.
//
// Guarantee, in a checkpointed job: after any number of crashes every
// row of a completed checkpoint is in exactly one published object, and
// no object is visible before its checkpoint is durable nor ever half
// written. How: a closed object is put under
// StagingPrefix + JOB/SINK/RUN/EPOCH/TASK-SEQ, never under Prefix;
// PreCommit(e) closes the open objects and stores the epoch's manifest
// (staged key → final key) in the sink's state space, so the checkpoint
// holds it; Commit(e), once the checkpoint is durable, copies each staged
// object to its final key (CopyObject: an S3 object appears whole),
// deletes the staged one, and forgets the manifest. A restored job
// publishes the manifests in its state again (a staged object already
// gone is accepted when its final copy exists), then deletes whatever else
// is under its staging prefix: objects of epochs whose checkpoint never
// completed, whose rows the source replays.
//
// A manifest keeps each object's bucket, staged key and final key as the
// configuration that staged it made them: a job restored with its bucket
// or prefix changed (a deploy from a savepoint with a new job file)
// publishes the checkpoint's objects where they were meant, and clears the
// staging prefix of the old bucket as well as the new. Objects staged in
// a bucket deleted since fail OpenState with sinks.ErrStagedTargetGone.
//
// On scale-out workers (package cluster) rows come from an outbox topic
// instead: PutAt puts one segment of it (the rows before a marker) as
// objects named JOB-SINK-ID, ID naming the segment by its marker's
// offset, published at once; a replayed segment replaces its objects.
// Position and SetPosition keep where to resume, under the staging prefix;
// MovePosition takes over a position of an older name.
//
// Without checkpoints (runnel run of bounded input) objects are put under
// their final keys directly and Close publishes the rest: at least once.
//
// Credentials: the AWS default chain (environment, shared config and
// credentials files, container and instance roles) or a named Profile of
// the shared files; a job file never holds a secret.
package s3
