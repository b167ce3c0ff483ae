// Package kinesisbench measures the Kinesis API with AWS SDK for Go v2
// clients on loopback (BenchIngest, which `runnel bench ingest --api
// kinesis` runs): PutRecords and PutRecord against a decode-and-discard
// server (the ceiling the clients reach) and against Runnel, each server a
// child process (BenchServerMain) so that its CPU time is measured apart
// from the clients', and the time from a put's acknowledgement to a
// GetRecords poller and a SubscribeToShard consumer. It is a harness, not
// part of the server; docs/kinesis-api.md explains the figures.
package kinesisbench
