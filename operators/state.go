package operators

import "github.com/runnel-dev/runnel/state"

// Stateful is implemented by operators whose state must survive a restart
// of the job (windows, detect). When a job checkpoints, the runtime gives
// every instance its own key space in the job's Pebble store before the
// first Process call, and asks it to write out what it holds in memory at
// each checkpoint barrier. The runtime calls both methods from the task
// that runs the operator, never concurrently with Process or OnWatermark.
type Stateful interface {
	// OpenState hands the operator its space (namespace: node id and task
	// id, stable across restarts). The space holds what the operator wrote
	// up to the checkpoint the job restored from, or nothing for a new
	// job: the operator loads or reads its state from there (timers and
	// its watermark included), so processing continues as if it had never
	// stopped.
	OpenState(sp *state.Space) error
	// SnapshotState is called at a checkpoint barrier, between batches:
	// the operator writes to its space everything a restore needs that it
	// keeps only in memory (dirty cache entries, its watermark). The
	// runtime snapshots the store after every task returned from it.
	SnapshotState() error
}
