// Package functions runs Lambda-style functions over a job's source: a
// function is called with a batch of one shard's records, with the
// settings of Lambda's event source mapping around each call.
//
// It owns two parts that a job wires together (package jobs, the
// `function` operator kind):
//
//   - Batched wraps the job's source so that every record it hands on is
//     a *Batch: a shard's records gathered up to a size, for at most a
//     batching window, filtered by Lambda's filter patterns (Filter), and
//     cut at tumbling windows of their arrival times. Positions stay the
//     underlying records', so a checkpoint resumes after the last record
//     of the last batch handed on; records gathered but not handed on are
//     read again after a restore. An empty batch moves the position past
//     filtered records, or tells the operator a window ended.
//   - Operator calls the function on each batch through an Invoker (JS
//     builds one per lane, each with its own sandboxed runtime): retries
//     with a pause, bisection of failed batches, batchItemFailures,
//     maximum record age, lanes by partition key (parallelization factor),
//     tumbling-window state (kept in checkpoints), the function's records
//     to the main output and Lambda's on-failure records to
//     DestinationOutput.
//
// Failures that no retry can help are *FatalError and fail the job; so do
// records given up on when the function has no on-failure destination,
// rather than being dropped. The operator runs in the shard's task, so
// retries hold that shard (and checkpoints) until they end.
package functions
