package sinks

import (
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// ArrowSchema is the Arrow schema of rows with columns cols, as the
// dashboard and the results API serve them: timestamps as
// timestamp[ms, UTC], JSON columns as strings, struct columns as Arrow
// structs, every column nullable.
func ArrowSchema(cols []Column) *arrow.Schema { return arrowSchema(cols) }

// RecordBatch builds one record batch of schema (from ArrowSchema(cols))
// from rows. A value that does not fit its column becomes null: callers
// that must not lose values check them with Fits first.
func RecordBatch(mem memory.Allocator, schema *arrow.Schema, cols []Column, rows []Row) arrow.RecordBatch {
	return toRecordBatch(mem, schema, cols, rows)
}

// Fits reports whether v (nil included) is stored in column c without
// becoming null or losing a field of a struct.
func Fits(c Column, v any) bool {
	if v == nil {
		return true
	}
	switch c.Type {
	case Timestamp, Int64:
		_, ok := asInt(v)
		return ok
	case Float64:
		_, ok := asFloat(v)
		return ok
	case Bool:
		_, ok := v.(bool)
		return ok
	case Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		for k, x := range m {
			i := slices.IndexFunc(c.Fields, func(f Column) bool { return f.Name == k })
			if i < 0 || !Fits(c.Fields[i], x) {
				return false
			}
		}
	}
	return true
}
