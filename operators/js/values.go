package js

import (
	"encoding/json"
	"fmt"

	"github.com/dop251/goja"
)

// toJS hands a record value to JS. Go maps and slices are wrapped, not
// copied: JS reads them in place and writes through to the Go value (see
// doc.go). Raw JSON ([]byte, json.RawMessage) is decoded first.
func toJS(rt *goja.Runtime, v any) (goja.Value, error) {
	switch x := v.(type) {
	case []byte:
		return decodeJSON(rt, x)
	case json.RawMessage:
		return decodeJSON(rt, x)
	case goja.Value:
		return x, nil
	}
	return rt.ToValue(v), nil
}

func decodeJSON(rt *goja.Runtime, b []byte) (goja.Value, error) {
	v, err := DecodeJSON(rt, b)
	if err != nil {
		return nil, fmt.Errorf("decode JSON record: %w", err)
	}
	return v, nil
}

// exportValue converts a JS result to a JSON-like Go value: objects to
// map[string]any, arrays to []any, integers to int64, other numbers to
// float64, a Date to a time.Time. goja's Export handles cycles.
func exportValue(v goja.Value) any {
	if v == nil {
		return nil
	}
	return v.Export()
}
