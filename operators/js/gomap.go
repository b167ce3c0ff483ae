package js

import (
	"reflect"
	"slices"

	"github.com/dop251/goja"
)

// Go maps and slices of records handed to JS.
//
// goja wraps a map[string]any (ToValue) as an object whose keys enumerate
// in Go's map order, which is random: Object.keys, for-in, spread and
// JSON.stringify of the same record would differ from one run to the
// next, and so would anything a job builds from them (a key, an error
// text, a replayed output after a restart). A record map is wrapped here
// instead, as a goja DynamicObject whose keys enumerate in sorted order —
// the order encoding/json writes them, so the object reads as JSON.parse
// of the record's JSON would give it — with the keys JS adds after them
// in the order JS added them. Reads and writes go to the Go map in place,
// as with goja's own wrapper; nested maps and slices are wrapped the same
// way when JS reads them.

// goWrapper wraps the record values of one runtime.
type goWrapper struct {
	rt *goja.Runtime
	// maxLen bounds an array JS grows by setting its length or an index
	// far past its end (one native step, which no interrupt reaches):
	// Options.MaxStringLen.
	maxLen int
}

// goMap is a record's map[string]any as a JS object.
type goMap struct {
	w *goWrapper
	m map[string]any
	// added are the keys JS set that the map did not have, in order.
	added []string
}

// goSlice is a []any inside a record as a JS array. Growing it does not
// change the value that held it (as with goja's wrapper).
type goSlice struct {
	w *goWrapper
	a []any
}

var (
	goMapType   = reflect.TypeOf((*goMap)(nil))
	goSliceType = reflect.TypeOf((*goSlice)(nil))
)

// value hands a Go value of a record to JS: maps and slices wrapped (see
// above), anything else as goja's ToValue makes it.
func (w *goWrapper) value(v any) goja.Value {
	switch x := v.(type) {
	case map[string]any:
		if x != nil {
			return w.rt.NewDynamicObject(&goMap{w: w, m: x})
		}
	case []any:
		if x != nil {
			return w.rt.NewDynamicArray(&goSlice{w: w, a: x})
		}
	}
	return w.rt.ToValue(v)
}

// goExport is the Go value JS's v stores into a record map or slice.
func goExport(v goja.Value) any {
	if v == nil {
		return nil
	}
	return exportValue(v)
}

// Get implements goja.DynamicObject.
func (g *goMap) Get(k string) goja.Value {
	v, ok := g.m[k]
	if !ok {
		return nil
	}
	return g.w.value(v)
}

// Set implements goja.DynamicObject.
func (g *goMap) Set(k string, v goja.Value) bool {
	if _, ok := g.m[k]; !ok {
		g.added = append(g.added, k)
	}
	g.m[k] = goExport(v)
	return true
}

// Has implements goja.DynamicObject.
func (g *goMap) Has(k string) bool {
	_, ok := g.m[k]
	return ok
}

// Delete implements goja.DynamicObject.
func (g *goMap) Delete(k string) bool {
	delete(g.m, k)
	if i := slices.Index(g.added, k); i >= 0 {
		g.added = slices.Delete(g.added, i, i+1)
	}
	return true
}

// Keys implements goja.DynamicObject: the map's keys sorted, then the
// keys JS added.
func (g *goMap) Keys() []string {
	keys := make([]string, 0, len(g.m))
	for k := range g.m {
		if !slices.Contains(g.added, k) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return append(keys, g.added...)
}

// Len implements goja.DynamicArray.
func (s *goSlice) Len() int { return len(s.a) }

// Get implements goja.DynamicArray.
func (s *goSlice) Get(i int) goja.Value {
	if i < 0 || i >= len(s.a) {
		return nil
	}
	return s.w.value(s.a[i])
}

// Set implements goja.DynamicArray.
func (s *goSlice) Set(i int, v goja.Value) bool {
	if i < 0 {
		return false
	}
	if i >= len(s.a) && !s.SetLen(i+1) {
		return false
	}
	s.a[i] = goExport(v)
	return true
}

// SetLen implements goja.DynamicArray.
func (s *goSlice) SetLen(n int) bool {
	if n < 0 || n > s.w.maxLen {
		return false
	}
	if n <= len(s.a) {
		clear(s.a[n:])
		s.a = s.a[:n]
		return true
	}
	s.a = append(s.a, make([]any, n-len(s.a))...)
	return true
}
