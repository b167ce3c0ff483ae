package operators

import (
	"encoding/json"
	"reflect"
	"testing"
)

// fields is a Structured of its own (as a JS object is one in operators/js).
type fields map[string]any

func (f fields) Field(name string) any { return f[name] }
func (f fields) Export() any           { return map[string]any(f) }

func TestValueField(t *testing.T) {
	nested := map[string]any{"a": map[string]any{"b": 2.0}, "s": "x"}
	for _, c := range []struct {
		name string
		v    any
		path []string
		want any
	}{
		{"top-level", nested, []string{"s"}, "x"},
		{"nested", nested, []string{"a", "b"}, 2.0},
		{"absent", nested, []string{"zz"}, nil},
		{"through a scalar", nested, []string{"s", "b"}, nil},
		{"no path", nested, nil, nested},
		{"not an object", 3.0, []string{"a"}, nil},
		{"structured", fields{"a": fields{"b": 7.0}}, []string{"a", "b"}, 7.0},
		{"raw bytes", []byte(`{"a":{"b":1}}`), []string{"a", "b"}, 1.0},
		{"raw message", json.RawMessage(`{"k":"v"}`), []string{"k"}, "v"},
		{"raw, not an object", json.RawMessage(`[1]`), []string{"k"}, nil},
	} {
		if got := ValueOf(c.v).Field(c.path...).Any(); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: Field(%v) = %#v, want %#v", c.name, c.path, got, c.want)
		}
	}
}

func TestValueRawAndExport(t *testing.T) {
	if b, ok := ValueOf(json.RawMessage(`{"a":1}`)).Raw(); !ok || string(b) != `{"a":1}` {
		t.Errorf("Raw of raw JSON = %q, %v", b, ok)
	}
	if _, ok := ValueOf(map[string]any{}).Raw(); ok {
		t.Error("a map is not raw JSON")
	}
	for _, c := range []struct {
		v, want any
	}{
		{[]byte(`{"a":[1,"x"]}`), map[string]any{"a": []any{1.0, "x"}}},
		{fields{"a": 1.0}, map[string]any{"a": 1.0}},
		{"s", "s"},
		{nil, nil},
	} {
		got, err := ValueOf(c.v).Export()
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("Export(%#v) = %#v, %v; want %#v", c.v, got, err, c.want)
		}
	}
	if _, err := ValueOf([]byte(`{"a":`)).Export(); err == nil {
		t.Error("Export of broken raw JSON: no error")
	}
}

func TestValueCopyIsIndependent(t *testing.T) {
	orig := map[string]any{"m": map[string]any{"x": 1.0}, "l": []any{1.0}}
	cp := ValueOf(orig).Copy().Any().(map[string]any)
	cp["m"].(map[string]any)["x"] = 2.0
	cp["l"].([]any)[0] = 2.0
	cp["new"] = true
	want := map[string]any{"m": map[string]any{"x": 1.0}, "l": []any{1.0}}
	if !reflect.DeepEqual(orig, want) {
		t.Errorf("changing the copy changed the original: %v", orig)
	}
}

func TestValueFloat(t *testing.T) {
	for _, c := range []struct {
		v    any
		want float64
		ok   bool
	}{
		{1.5, 1.5, true}, {int64(3), 3, true}, {7, 7, true}, {float32(2), 2, true}, {uint32(4), 4, true},
		{json.Number("12"), 12, true}, {" 42 ", 42, true}, {"x", 0, false}, {true, 0, false}, {nil, 0, false},
	} {
		if got, ok := ValueOf(c.v).Float(); got != c.want || ok != c.ok {
			t.Errorf("Float(%#v) = %v, %v; want %v, %v", c.v, got, ok, c.want, c.ok)
		}
	}
}
