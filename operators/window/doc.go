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
// Aggregates are also serialisable (aggregate.Instance.Marshal), so
// partial state could cross processes; nothing does that yet.
//
// # State
//
// Window state sits behind Store (get/put/delete per key and window, the
// windows of a key, and the windows whose end lies in a range, in firing
// order). The operator Puts every state it changes, so a store may hand
// out copies. NewMemStore is the in-memory implementation; a Pebble-backed
// one (issue 5) gets a Codec from Config.NewStore that encodes State with
// aggregate.Instance.Marshal — the randomized test runs a third of its
// cases on a store that keeps state only as bytes. Timers are not stored:
// firing and purging scan Store.Range between the previous and the new
// watermark.
//
// # Errors
//
// A failing KeyJS, KeyFunc or custom aggregate yields a *js.Error naming
// the job, operator and record, handled by Config.OnError like JS
// operators (fail, skip, dead_letter). With sliding windows a record whose
// aggregate fails for one window may already have updated the others.
package window
