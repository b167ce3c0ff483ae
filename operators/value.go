package operators

import (
	"encoding/json"
	"strconv"
	"strings"
)

// Value is a record's value (Record.Value) behind accessors, whatever form
// it is held in:
//
//   - a JSON-like Go value: map[string]any, []any, string, float64, int64,
//     bool or nil (other Go numbers from Go sources);
//   - raw JSON ([]byte or json.RawMessage) not decoded yet, from a source
//     that leaves decoding to a JS chain;
//   - an operator's own form (a JS object, a projection of a few fields of
//     one), which implements Structured.
//
// Readers of fields, numbers and whole values go through it instead of
// switching on the forms themselves. A Value is one interface word: pass
// it by value.
type Value struct{ v any }

// Structured is a record value held in an operator's own form.
type Structured interface {
	// Field returns top-level field name: a JSON-like value, another
	// Structured, or nil when absent.
	Field(name string) any
	// Export returns the whole value as a JSON-like Go value.
	Export() any
}

// ValueOf wraps a record value.
func ValueOf(v any) Value { return Value{v} }

// Any returns the value as held.
func (v Value) Any() any { return v.v }

// Field returns the value at path, one object field per step; a step into
// anything but an object (or a field that is absent) gives a nil Value.
// Raw JSON is decoded to be read.
func (v Value) Field(path ...string) Value {
	x := v.v
	for _, name := range path {
		switch o := x.(type) {
		case map[string]any:
			x = o[name]
		case Structured:
			x = o.Field(name)
		case []byte, json.RawMessage:
			m, _ := Value{o}.Export()
			obj, _ := m.(map[string]any)
			x = obj[name]
		default:
			return Value{}
		}
	}
	return Value{x}
}

// Raw returns the JSON text of a value held as raw JSON; ok is false for
// every other form.
func (v Value) Raw() (b []byte, ok bool) {
	switch x := v.v.(type) {
	case []byte:
		return x, true
	case json.RawMessage:
		return x, true
	}
	return nil, false
}

// Export returns the value as a JSON-like Go value: raw JSON decoded (as
// encoding/json decodes into any), a Structured exported, anything else
// as it is (not copied). The error is that of raw JSON that does not
// decode.
func (v Value) Export() (any, error) {
	switch x := v.v.(type) {
	case nil, string, float64, int64, bool, map[string]any, []any:
		// The common forms first: no interface lookup for them.
		return x, nil
	case Structured:
		return x.Export(), nil
	case []byte, json.RawMessage:
		b, _ := v.Raw()
		var out any
		if err := json.Unmarshal(b, &out); err != nil {
			return nil, err
		}
		return out, nil
	}
	return v.v, nil
}

// Copy returns a deep copy of the value's JSON-like containers (maps and
// slices), for a second consumer that may change it in place (JS writes
// through to the maps it is handed); scalars, raw JSON and Structured
// values are never changed by their consumers and are shared.
func (v Value) Copy() Value { return Value{copyAny(v.v)} }

func copyAny(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = copyAny(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = copyAny(e)
		}
		return a
	}
	return v
}

// Float returns the value as a number: any Go number, a json.Number, or a
// numeric string (CSV sources give strings); ok is false for anything
// else.
func (v Value) Float() (f float64, ok bool) {
	switch x := v.v.(type) {
	case float64:
		return x, true
	case int64:
		return float64(x), true
	case int:
		return float64(x), true
	case float32:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case uint32:
		return float64(x), true
	case interface{ Float64() (float64, error) }: // json.Number
		f, err := x.Float64()
		return f, err == nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		return f, err == nil
	}
	return 0, false
}
