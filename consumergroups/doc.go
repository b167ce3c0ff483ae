// Package consumergroups owns consumer groups: named sets of workers that
// share the reading of one stream, in the manner of the Kinesis Client
// Library's lease table.
//
// The lease protocol is written once, as functions on a State (Sync,
// Checkpoint, Release, Leave), and kept by two stores: the server's Manager
// (one fsynced file per group beside the streams) and the client's
// PostgreSQL table (client/consumer), which loads a group's rows under a
// lock, applies the same functions with the database's clock and writes
// the changed rows back.
//
// The protocol, per group:
//
//   - A worker registers and heartbeats with Sync. Each Sync renews the
//     worker's leases until now + the group's lease duration; a lease whose
//     expiry has passed is free. Its owner's next Sync, if no one took it
//     meanwhile, takes it back at a new epoch (as the KCL retakes an
//     expired lease with a new lease counter rather than renewing it).
//   - A shard is eligible when it is not finished and each of its parents is
//     finished (checkpointed at SHARD_END) or no longer listed. A worker
//     takes free eligible leases until it holds its fair share,
//     ceil(eligible / live workers); each take adds one to the lease's
//     epoch.
//   - A worker below floor(eligible / live workers) with nothing free asks
//     the busiest worker to hand one lease off (Release requested); that
//     worker checkpoints and releases it at its next Sync, and the lease is
//     free for whoever syncs next.
//   - A checkpoint names the worker and the epoch it holds; one from any
//     other owner or epoch is refused with ErrLeaseLost, so a worker that
//     lost its lease (it paused past the expiry and the lease was taken
//     over) cannot move the shard's checkpoint.
package consumergroups
