package state

import "github.com/cockroachdb/pebble/v2"

// CommitSync applies the batch, syncs Pebble's log (with it every batch
// committed before) and releases the batch. A store that is its own
// durable copy between checkpoints (a cluster worker's local state) uses
// it; Commit leaves the last writes in a buffer a crash loses.
func (b *Batch) CommitSync() error { return b.commit(pebble.Sync) }
