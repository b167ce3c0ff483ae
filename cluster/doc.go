// Package cluster runs one job on several worker processes over Kafka
// (`runnel worker`): Kafka carries the data between stages, the
// partitioning, the group membership and the atomic commits; the workers
// run the job's operators. docs/scale-out.md is the design.
//
// It owns the stage cutter (Cut: which operators run in which stage, and
// which repartition and changelog topics a job has), the watermark of a
// task fed by several producer tasks (Watermarks), the changelog of window
// state (LogStore, the record encoding, restore), and the worker (Run): one
// GroupTransactSession per worker, one transaction per commit interval
// holding every task's output, changelog records and input offsets; and
// the outbox of PostgreSQL and S3 sinks with its delivery loop (outbox.go,
// deliver.go).
package cluster
