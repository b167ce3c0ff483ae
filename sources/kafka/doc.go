// Package kafka is a job source that reads Kafka topics (Apache Kafka,
// Redpanda, Amazon MSK: anything that speaks the Kafka protocol) with
// franz-go.
//
// Each partition is a shard, named "TOPIC/PARTITION" (a topic name cannot
// hold a slash), and a record's position is its offset. Positions live in
// Runnel's checkpoints, so a restarted job resumes exactly after the last
// checkpointed offset of each partition and, with a transactional sink,
// its output holds each result once. Offsets are bound to the topic's ID
// (bound.go): a restore drops those of a topic deleted and created again,
// and moves or drops those outside the partition's log, saying so; a
// reader whose topic is deleted while it reads fails saying so (gone.go).
// With a consumer group the offsets
// handed to the job are also committed to the group, for monitoring with
// the usual Kafka tools; the source never resumes from the group.
//
// The record key is the partition key, the record timestamp the arrival
// time (so a job without event_time windows by Kafka timestamp), and the
// value is decoded as the job's format says (or by a decoder factory:
// sources/codec's csv, avro and protobuf). With Metadata set, each record
// also carries its topic, partition, offset, timestamp, key and headers
// for the job's JS, which may take the timestamp as event time. Transactions' aborted records
// are skipped (read_committed) unless the job asks for read_uncommitted.
package kafka
