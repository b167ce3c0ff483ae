// Package diskfull holds the end-to-end test of a disk that fills up
// under a running server: a real `runnel serve` whose data directory is
// a small tmpfs, producers putting through the AWS SDK, and a job with
// checkpoints reading the stream into a stream sink and PostgreSQL.
// Only its test has code.
package diskfull
