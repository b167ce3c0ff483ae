// Package state owns a job's durable operator state: one Pebble instance
// per job, keys namespaced by operator and task, and checkpoints of all of
// it recorded in a manifest with an epoch.
//
// Writes during processing are not synced: durability comes only from
// checkpoints. After a crash, the live store is not trusted; Restore
// rebuilds it from the latest complete checkpoint (or a chosen one).
//
// Layout under a job's state directory:
//
//	live/                      the Pebble instance written by operators
//	checkpoints/<epoch>/db/    a Pebble checkpoint (hard links where possible)
//	checkpoints/<epoch>/meta   the caller's metadata (source positions, watermarks)
//	checkpoints/MANIFEST-<epoch>  the history of complete checkpoints as of epoch
//
// A checkpoint is complete once its manifest file has been renamed into
// place and the directory synced; anything else left by a crash is ignored
// and removed by the next Open.
package state
