package js

import (
	"encoding/json"
	"fmt"

	"github.com/dop251/goja"
	"github.com/runnel-dev/runnel/operators"
)

// toJS hands a record value to JS. Go maps and slices are wrapped, not
// copied: JS reads them in place and writes through to the Go value (see
// doc.go and gomap.go). Raw JSON ([]byte, json.RawMessage) that is an object becomes a
// rawObject (decoded field by field as JS reads it); other raw JSON is
// decoded. i is the record's index in the batch.
func (c *Chain) toJS(i int, v any) (goja.Value, error) {
	if x, ok := v.(goja.Value); ok {
		return x, nil
	}
	b, ok := operators.ValueOf(v).Raw()
	if !ok {
		if c.gow.rt == nil {
			c.gow = goWrapper{rt: c.vm.rt, maxLen: c.vm.opts.MaxStringLen}
		}
		return c.gow.value(v), nil
	}
	o, ok, err := c.objs.newRaw(c.vm.rt, &c.strs, i, b)
	if ok {
		if err != nil {
			return nil, fmt.Errorf("decode JSON record: %w", err)
		}
		return o, nil
	}
	return decodeJSON(c.vm.rt, b)
}

func decodeJSON(rt *goja.Runtime, b []byte) (goja.Value, error) {
	v, err := DecodeJSON(rt, b)
	if err != nil {
		return nil, fmt.Errorf("decode JSON record: %w", err)
	}
	return v, nil
}

// isRawJSON reports whether v is a record value toJS decodes.
func isRawJSON(v any) bool {
	_, ok := operators.ValueOf(v).Raw()
	return ok
}

func isRawMessage(v any) bool {
	_, ok := v.(json.RawMessage)
	return ok
}

// maxExportDepth bounds the walk that replaces raw objects nested in an
// exported value (a cyclic value is cut off there).
const maxExportDepth = 64

// exportValue converts a JS result to a JSON-like Go value: objects to
// map[string]any, arrays to []any, integers to int64, other numbers to
// float64, a Date to a time.Time. goja's Export handles cycles; a
// rawObject, at the top or nested, becomes a map.
func exportValue(v goja.Value) any {
	if v == nil {
		return nil
	}
	o, ok := v.(*goja.Object)
	if !ok {
		return v.Export()
	}
	switch o.ExportType() {
	case rawObjectType:
		return o.Export().(*rawObject).exportGo(0)
	case goMapType:
		return o.Export().(*goMap).m
	case goSliceType:
		return o.Export().(*goSlice).a
	}
	x := o.Export()
	if r, ok := fixRaw(x, 0); ok {
		return r
	}
	return x
}

// exportDepth exports v found at depth inside a raw object.
func exportDepth(v goja.Value, depth int) any {
	if o, ok := v.(*goja.Object); ok && o.ExportType() == rawObjectType {
		if depth >= maxExportDepth {
			return nil
		}
		return o.Export().(*rawObject).exportGo(depth)
	}
	x := v.Export()
	if r, ok := fixRaw(x, depth); ok {
		return r
	}
	return x
}

// fixRaw replaces, in place, the raw objects and wrapped Go values goja's
// Export left inside x (it exports a DynamicObject as itself). ok says x
// itself was one and r is its replacement.
func fixRaw(x any, depth int) (r any, ok bool) {
	if depth >= maxExportDepth {
		return nil, false
	}
	switch y := x.(type) {
	case *rawObject:
		return y.exportGo(depth), true
	case *goMap:
		return y.m, true
	case *goSlice:
		return y.a, true
	case map[string]any:
		for k, e := range y {
			if r, ok := fixRaw(e, depth+1); ok {
				y[k] = r
			}
		}
	case []any:
		for i, e := range y {
			if r, ok := fixRaw(e, depth+1); ok {
				y[i] = r
			}
		}
	}
	return nil, false
}

// RawValue is the record value of a chain output handed to a RawSink, for
// readers of a few fields (operators.Value): a JS object stays one, read
// field by field as an operators.Structured (exporting only what is
// read); anything else is exported. Like v, it may be read only until the
// chain's Process returns.
func RawValue(v goja.Value) any {
	if o, ok := v.(*goja.Object); ok {
		return jsObject{o}
	}
	if v == nil {
		return nil
	}
	return v.Export()
}

// jsObject is a JS object as an operators.Structured.
type jsObject struct{ o *goja.Object }

// Field returns field name: a nested object as another jsObject, other
// values exported; nil when absent, undefined or null.
func (j jsObject) Field(name string) any {
	v := j.o.Get(name)
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	if o, ok := v.(*goja.Object); ok {
		return jsObject{o}
	}
	return v.Export()
}

// Export returns the object as a JSON-like Go value (see exportValue).
func (j jsObject) Export() any { return exportValue(j.o) }

// Field returns the value of field name (nil if absent or not projected),
// as an operators.Structured.
func (p *Projected) Field(name string) any { return p.Get(name) }

// Export returns the projected fields as a map.
func (p *Projected) Export() any {
	m := make(map[string]any, len(p.Names))
	for i, n := range p.Names {
		if p.Values[i] != nil {
			m[n] = p.Values[i]
		}
	}
	return m
}
