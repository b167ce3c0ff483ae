// Package producer is a Kinesis producer library: it batches records per
// shard, optionally aggregates them in the Kinesis Producer Library's
// format, sends them with PutRecords under bounded concurrency and the
// per-shard rate limits, retries failures with backoff and jitter, keeps
// the order of records of one partition key, and reports each record's
// outcome exactly once.
//
// Guarantee: every record Put accepts is reported exactly once through
// Options.OnResult, either with the sequence number and shard the stream
// gave it or with the error that made the producer give up (its time to
// live ran out, its attempts ran out, or the stream refused it for good).
// A record reported as acknowledged is durable in the stream.
//
// Assumptions: a PutRecords call that fails without an answer (network
// error, timeout) may still have written its records; they are retried,
// so the stream may hold a record twice (at-least-once), as with the KPL.
// Per-key order holds with Ordering PerKey (the default): a shard has at
// most one PutRecords in flight, a request never holds two Kinesis
// records with the same partition key (so a partial failure cannot let a
// later record of a key in ahead of an earlier one), failed records go
// back to the head of their shard's queue, and after a reshard the queues
// of new shards wait until the queues of the shards they replace are
// empty. Shards are predicted from the hash ranges ListShards reports; a
// result naming another shard makes the producer list the shards again.
//
// Files: producer.go (Put, Flush, Close, the buffer), shards.go (shard
// map, queues, rate limits), send.go (batching, sending, retries),
// aggregate.go (the KPL aggregated-record encoder), metrics.go.
package producer
