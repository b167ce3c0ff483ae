// Package kinesis is a job sink that writes results to a Kinesis data
// stream (AWS, or any endpoint speaking its API, another Runnel say) with
// client/producer: PutRecords batches per shard, paced to each shard's
// write limits (1 MiB/s, 1,000 records/s), only the failed records of a
// call retried (in order per partition key, with backoff), optionally
// packed into KPL aggregated records.
//
// Guarantee: at least once. Kinesis has no transactions, so a record
// accepted by PutRecords cannot be taken back: the sink flushes at every
// checkpoint barrier and fails the checkpoint if a record could not be
// written, so a completed checkpoint never loses rows; the rows after it
// are written again after a crash. Each record carries a deterministic id
// (IDField, "runnel_id" by default) so that consumers can drop the
// repeats: the SHA-256 of the job, the sink, the sink's incarnation, the
// checkpoint epoch the row follows, the row's JSON and how many equal rows
// came before it in that epoch. A replay after a restore writes the same
// rows after the same epoch, so it repeats their ids. The incarnation,
// kept in the sink's state, is drawn when the job starts without state: a
// job submitted again under a used name counts its epochs from 1 again and
// must not repeat the earlier run's ids (a checkpoint taken before sinks
// kept one restores without, and keeps its ids).
package kinesis
