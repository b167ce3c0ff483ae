// Package runtime executes job graphs: sources → a DAG of operators →
// sinks.
//
// # API
//
// Build a Graph of SourceNodes (a sources.Source plus event-time rules),
// Nodes (an operator factory, keyed when Key is set) and SinkNodes (a
// sinks.Sink), then Start it (a server job: Stop, Status, Positions, Done)
// or Run it to completion (`runnel run`). Inputs name sources or nodes,
// or a node's side output as "ID:NAME" (a window's "per-page:late", a JS
// chain's dead letters). The adapters in jsadapt.go wrap a compiled
// js.Chain as a node (ChainNode) or a source's event-time function
// (ChainEventTime) and keep a key set upstream (PresetKey); FieldEventTime
// reads a field of decoded or raw JSON records as the event time. Which
// snippet becomes which is decided where jobs are built (package jobs).
//
// # Tasks
//
// A job runs one task (goroutine) per source shard. A shard task reads a
// batch, decodes it (in the source), assigns event times, and runs the
// per-record operators — everything up to the first keyed node — in its
// own instances: operator factories are called once per task, so each
// task has its own JS runtime. What reaches a keyed node (a window) is
// keyed by the node's key function, still in the shard task, and exchanged
// by key hash to a fixed number of keyed tasks (Options.Parallelism) per
// keyed node; a keyed task runs the keyed node and the unkeyed operators
// after it. All records of a key meet in one task, so a key spread over
// several shards yields one result per window. Every sink has one task.
//
// Between tasks there are only bounded channels of batches
// (Options.QueueDepth batches of at most Options.BatchSize records). A slow
// sink blocks the keyed tasks, which block the shard tasks, which stop
// reading: backpressure, never unbounded memory.
//
// A node that is not keyed runs in the tasks of its inputs, so a union of
// inputs partitioned differently (shards and a keyed node) must be keyed.
// On fan-out every branch after the first gets a deep copy of the
// record's Value, because JS operators write through to the Go maps they
// are handed.
//
// # Watermarks
//
// Each shard task tracks the largest event time it has seen; its
// watermark is that minus the source's Watermark bound. It sends its
// watermark in-band, on the data batches and on its own after them, so a
// keyed task sees every record a sender sent before that sender's
// watermark. A keyed task's watermark is the minimum over its inputs
// (tracker): it advances the timers of its operators (windows fire) and
// forwards the result downstream. The job's watermark (Status) is the
// minimum over the keyed tasks.
//
// Rules that keep idle and finished inputs from holding the watermark back
// forever:
//   - a shard that reached its end (a bounded source, or a closed stream
//     shard) counts as +inf; when all inputs ended the watermark is
//     EndOfTime and every window fires — this is how `runnel run`
//     completes;
//   - a shard whose reads waited the source's IdleTimeout (default 10 s,
//     as Flink's source idleness) without a record is left out of the
//     minimum until it reads again (time spent pushing what it read, held
//     back by a slow sink, or held by a checkpoint does not count: such a
//     shard has records waiting); if every input is idle the watermark is
//     the largest of their watermarks (all are caught up). A record that
//     then arrives behind the watermark is late;
//   - a child shard after a split or merge is registered by its parents,
//     in-band before their end, at the parent's last watermark, and holds
//     the watermark from there until it reads;
//   - after a restore, each shard task first sends the watermark of its
//     restored largest event time, and each keyed task its restored
//     watermark, before anything else: a shard that had read all its
//     input before the checkpoint may read nothing more, and the job must
//     still reach the watermark it would have reached without the crash.
//
// The watermark never goes backwards. An operator with timers that is not
// keyed runs in the shard tasks and sees its own shard's watermark
// (EndOfTime when the shard ends).
//
// # Resharding
//
// A shard starts when all of its parents that the source still lists have
// ended (returned io.EOF), so records of one partition key keep their
// order across a split or merge.
//
// # Lifecycle
//
// Every task runs in one errgroup per job; the first error cancels the
// rest and the job fails with it (Status.Reason). Stop stops the sources,
// lets the records already read drain through the operators, and closes
// the sinks, which flushes them; if Stop's context ends first the job is
// canceled hard. Windows that have not fired when a job is stopped stay
// unfired. Inboxes close when their last producer returns, so shutdown
// runs in graph order and every goroutine returns.
//
// # Checkpoints
//
// With Options.State set, Job.Checkpoint takes a consistent snapshot
// (checkpoint.go has the protocol): keyed tasks first write out their
// caches while records flow (a barrier that holds nothing); then the
// shard tasks are held between two rounds (they run each read-process-send
// round under a gate), a barrier passes every keyed task behind the data
// in flight, node by node in topological order, each snapshotting its
// Stateful operators; the sinks stage their rows (PreCommit); the Pebble
// store is checkpointed with a Snapshot (shard positions, each shard's
// largest event time, each keyed task's watermark, the parallelism); the
// sources run again and the Transactional sinks Commit. Options.Restore
// resumes from such a Snapshot over a store restored to the same
// checkpoint. When every source ended, the job takes a last checkpoint so
// its sinks commit the final results.
package engine
