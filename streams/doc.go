// Package streams owns Runnel's durable sharded log: streams, shards and their
// hash-key ranges, sequence numbers, append-only segment files with checksummed
// record frames, group-committed fsync, recovery, retention, resharding and
// iterators. Everything else in Runnel reads and writes records through it;
// the Kinesis and REST APIs are thin layers over Store.
package streams
