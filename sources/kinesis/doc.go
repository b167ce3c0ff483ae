// Package kinesis is a job source that reads a Kinesis data stream: AWS
// Kinesis Data Streams itself, or any endpoint that speaks its API (another
// Runnel, say), with the AWS SDK for Go.
//
// Each Kinesis shard is a shard of the source, listed with ListShards
// (closed shards still in retention included) with its parents, so the
// runtime reads parents before children across splits and merges, as the
// KCL does; a child learned from a closed shard's ChildShards is read from
// its beginning. A record's position is its sequence number, or for a user
// record packed by the KPL "SEQUENCE/SUBSEQUENCE"; positions live in
// Runnel's checkpoints, so a restarted job resumes exactly after the last
// checkpointed record and, with an exactly-once sink, its output holds
// each result once.
//
// Without a consumer name the source polls GetRecords, at most five calls
// a second per shard and paced to 2 MiB/s of data per shard (Kinesis's
// read limits), waiting PollInterval when a shard has nothing new.
// Throttling, the service's internal errors and an unreachable endpoint
// are retried with exponential backoff and jitter; an expired iterator is
// renewed after the last record read. Each call is bounded by
// CallTimeout, so an endpoint that takes the connection and does not
// answer counts as unreachable, and a shard's failures are warned of
// (stream, shard, endpoint, call) as one series across the Reads that
// checkpoints cut short. With a consumer name the source
// uses enhanced fan-out: it registers the consumer if it is missing and
// reads each shard with SubscribeToShard (HTTP/2 on AWS), subscribing
// again after each subscription's five minutes.
//
// Records made by the KPL (aggregated records) are de-aggregated with
// streams/kpl; user records whose hash key lies outside the shard's hash
// range are dropped, as the KCL drops them: after a reshard they belong
// to another shard, which holds them too.
package kinesis
