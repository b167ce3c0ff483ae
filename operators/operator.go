// Package operators holds the processing steps of a job — map, filter, keyed
// windows, detect — and the JavaScript bridge they use. This file fixes the
// small contract the runtime drives them through; sub-packages implement it.
package operators

import "context"

// Record is one event flowing through a job graph.
type Record struct {
	// Value is the decoded record: a JSON-like Go value (map[string]any,
	// []any, string, float64, bool, nil; int64 where exact integers matter),
	// or one of the other forms of Value (raw JSON, an operator's own).
	// Read its fields, numbers and whole value through ValueOf.
	Value any
	// Key is the grouping key, set by keyed operators ("" before).
	Key string
	// EventTime is the record's event time in epoch milliseconds.
	EventTime int64
	// Origin says where the record came from (stream shard and sequence
	// number, or file and line), for errors and dead letters.
	Origin string
}

// Batch is a run of records handed to an operator at once.
type Batch struct {
	Records []Record
}

// Emitter receives an operator's output. Emit must not be called after
// Process (or OnWatermark) has returned.
type Emitter interface {
	Emit(r Record)
}

// Operator processes batches of records.
//
// Process must not keep in, or any Record slice of it, after returning; it
// may keep the Values it emits. An error stops the task unless the operator
// handles it itself (on_error: skip / dead_letter).
type Operator interface {
	Process(ctx context.Context, in *Batch, out Emitter) error
	Close() error
}

// WatermarkHandler is implemented by operators with event-time timers
// (windows). The runtime calls OnWatermark whenever the job's watermark
// advances; the operator fires every window whose end is <= wm.
type WatermarkHandler interface {
	OnWatermark(ctx context.Context, wm int64, out Emitter) error
}

// EmitterFunc adapts a function to Emitter.
type EmitterFunc func(Record)

// Emit calls f(r).
func (f EmitterFunc) Emit(r Record) { f(r) }
