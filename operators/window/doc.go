// Package window is the keyed event-time window operator: tumbling,
// sliding (size, every) and session (gap) windows per key, fired by the
// watermark, with allowed lateness and a late side output.
//
// # Time
//
// Records carry their event time (Record.EventTime, epoch ms) and key
// (Record.Key) — set upstream by the runtime (js.Chain EventTime and Key
// stages), or by this operator's own KeyJS/KeyFunc. Windows are half-open
// [start, end) and aligned to the epoch (also before it). The runtime
// calls OnWatermark with the job's watermark (the minimum over its shards
// of max event time seen minus the bound); a window fires when the
// watermark reaches its end (end <= wm), in order of end, key and start.
// Windows without records do not exist and never fire.
//
// # Lateness
//
// A window's state is kept until the watermark reaches end +
// AllowedLateness. A record that falls into a window that has already
// fired but is still kept updates it; each such window re-fires once at
// the end of the batch, with the updated result. The later result
// supersedes the earlier: for tumbling and sliding windows a result
// replaces the earlier one with the same key, start and end; for sessions
// (whose bounds grow when a late record extends or bridges them) it
// replaces the earlier results of the same key whose windows it overlaps.
// A record none of whose windows is kept any more is late: counted
// (Stats.Late) and emitted unchanged to the side output
// operators.LateOutput. For sliding windows a record can be too late for
// some of its windows and not others; it then updates the kept ones only
// and Stats.LateWindows counts the rest.
//
// # Sessions
//
// A record at t opens [t, t+gap) and merges with every session of its key
// that overlaps or touches it (as in Flink: records exactly gap apart are
// one session); merged accumulators combine with aggregate Merge.
//
// # Results
//
// Each result is a Record whose Value is map[string]any with window_start
// and window_end (int64 epoch ms), key (string), and one entry per
// aggregate; ResultColumns gives the column order and types for sinks
// (Arrow schema). Its Key is the window key and its EventTime is end−1, so
// a downstream window puts it in the matching window.
//
// # Several shards
//
// A key's records may arrive from any shard; each key must still yield one
// result per window. Two paths, both tested against a batch computation
// with 1–8 shards, 1–4 window instances and random interleavings:
//
//   - Exchange by key: every record of a key goes to the same Operator
//     instance (one per keyed task, chosen by key hash).
//   - Pre-aggregate and merge: each shard task runs a Combiner, which folds
//     each batch into one *Partial per key and window; the partials are
//     exchanged by key like records, and the Operator merges them into its
//     state (aggregate Merge) under the same watermark and lateness rules.
//     A late partial sends its records to the late output; with a JS chain
//     in front those are the chain's input records (keyed), because the
//     combiner reads the chain's results without exporting them.
//
// Aggregates are also serialisable (aggregate.Instance.Marshal): that is
// how durable state stores them; partials do not cross processes yet.
//
// # State
//
// Window state sits behind Store (get/put/delete per key and window, the
// windows of a key, and the windows whose end lies in a range, in firing
// order). The operator Puts every state it changes, so a store may hand
// out copies. Timers are not stored: firing and purging scan Store.Range
// between the previous and the new watermark. NewMemStore is the
// in-memory store, used until the runtime gives the operator a key space
// in the job's Pebble store (OpenState, operators.Stateful); the
// randomized test runs a third of its cases on a store that keeps state
// only as bytes, as Pebble does.
//
// # Durable state
//
// After OpenState the operator keeps its windows in its space (one per
// node and task) behind a write-back cache in memory. Layout of the
// space (times big-endian with the sign bit flipped, so they sort as
// int64; the key escaped 0x00 → 0x00 0xff and ended by 0x00 0x01, so it
// sorts as the plain string):
//
//	'w' key start end  →  aggregate.Instance.Marshal of the accumulators
//	'e' end key start  →  empty (the end index: Range in firing order)
//	'm'                →  version 1, watermark (8 bytes big-endian),
//	                      number of windows (uvarint)
//
// The cache holds whole keys (all their windows): for a cached key
// Get/Put/Delete/Windows touch only memory, so a record costs about what
// it costs in memory. A key not cached is read from Pebble on first use (a
// prefix scan). Pebble is written in one batch each time, in three cases:
// when the cache holds more than Config.StateCacheEntries (windows plus
// one per key) keys are evicted with their changes, second-chance (CLOCK)
// from a random start; when more than Config.StateDirtyEntries changes
// are unwritten they are all written, ahead of the checkpoint; and
// SnapshotState (at the barrier) writes the remaining changes, the
// watermark and the number of windows. Range merges the cached keys'
// windows with Pebble's end index for keys not cached (skipped while
// Pebble holds no window of a key not cached); Delete of a window of a key
// not cached goes straight to Pebble, so purging after a restore does not
// load keys.
//
// OpenState reads the 'm' record — no scan, so a restart over a large
// state does not read it — and restores the watermark, so windows that
// fired before the checkpoint do not fire again. The Stats counters are
// not stored and restart at 0. Custom JS aggregates are stored as
// JSON.stringify of their accumulator and restored with JSON.parse: an
// accumulator holding what JSON does not keep (Map, Set, Date, undefined,
// NaN, ±Infinity) comes back changed, and one that JSON.stringify cannot
// encode (undefined itself) fails SnapshotState (or Process, if an
// eviction or a write ahead of the checkpoint meets it).
//
// A Pebble failure, or state that cannot be decoded, is an error of the
// Store that fails Process or OnWatermark with a *StoreError (never handed
// to on_error: it is no fault of the record): the job restores from its
// checkpoint. Tests: the cached store answers like the
// in-memory one through evictions, write-ahead, checkpoints and restores;
// and random windows of every kind, with lateness and custom JS
// aggregates, give the same results in the same order when checkpointed,
// crashed (unsynced data dropped) and restored at random batch boundaries
// as when run straight through.
//
// # Errors
//
// A failing KeyJS, KeyFunc or custom aggregate yields a *js.Error naming
// the job, operator and record, handled by Config.OnError like JS
// operators (fail, skip, dead_letter). With sliding windows a record whose
// aggregate fails for one window may already have updated the others.
package window
