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
// repeats: the SHA-256 of the job, the sink (and its incarnation, see
// OpenState), the checkpoint epoch the row
// follows, the row's JSON and how many equal rows came before it in that
// epoch. A replay after a restore writes the same rows after the same
// epoch, so it repeats their ids.
//
// An endpoint that cannot be reached or does not answer when the sink is
// made does not fail it: the producer starts at the first Write or flush,
// retried with backoff, so a job starts while its Kinesis is down; the
// checkpoint's flush bounds the wait.
package kinesis
