// Package aggregate holds the aggregates of keyed windows: the builtins
// (count, sum, avg, min, max, p50/p95/p99, distinct) and custom
// JavaScript aggregates {init, add, merge, result}.
//
// A window keeps one Accumulator per aggregate per (key, window).
// Accumulators are
//   - mergeable: Merge folds another accumulator of the same spec in, so
//     session windows can merge and partial aggregates computed per shard
//     can be combined into one result per window (the pre-aggregate path:
//     each shard's task aggregates its own records, ships Marshal'ed state,
//     and one task Unmarshals and Merges it — any Instance of the same
//     Compiled can read any other's state);
//   - serialisable: MarshalBinary/UnmarshalBinary per accumulator, and
//     Instance.Marshal/Unmarshal for a window's whole list, so window state
//     can live in a store (Pebble, checkpoints).
//
// Builtins read the spec's Field (a dotted path into the record object).
// Numbers may be any Go numeric type, json.Number or a numeric string;
// other values and missing fields are ignored by sum, avg, min, max and
// the quantiles, and count(field) counts non-null values while plain count
// counts records. Result types: count and distinct are int64; the rest are
// float64; avg, min, max and the quantiles are null for a window without
// numbers, sum is 0.
//
// Quantiles use Sketch, a DDSketch-style logarithmic-bucket sketch with
// relative accuracy 0.95% (the reported value is within 1% of the exact
// value at rank q·(n−1); tested against exact answers). distinct uses HLL,
// HyperLogLog with precision 14 and Ertl's estimator (standard error
// 0.81%, tested ≤ 2%), exact while it holds at most 1024 distinct values.
// Values are hashed by canonical text, so 3, 3.0 and "3" are one value.
//
// A custom aggregate runs in the task's JS VM (package js, same sandbox and
// time budget): init() makes an accumulator, add(acc, record) and
// merge(acc, other) return the new accumulator (or undefined after
// updating acc in place), result(acc) gives the column value, converted to
// the spec's Type (float64 by default). Its accumulator is serialised with
// JSON.stringify, so it must be JSON-representable (no functions, Maps or
// cycles). In the object form, methods are called with the object as
// this.
package aggregate
