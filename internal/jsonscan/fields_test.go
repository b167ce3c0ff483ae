package jsonscan

import (
	"math"
	"reflect"
	"testing"
)

func TestFields(t *testing.T) {
	for _, c := range []struct {
		in   string
		keys []string
		vals []string
		err  bool
	}{
		{in: `{}`, keys: nil},
		{in: ` { "a" : 1 , "b\u0063":[1, {"x": 2}], "é": "s", "a": null } `[1:], keys: []string{"a", "bc", "é", "a"}, vals: []string{"1", `[1, {"x": 2}]`, `"s"`, "null"}},
		{in: "{\"k\xff\": true}", keys: []string{"k\uFFFD"}, vals: []string{"true"}},
		{in: `{"a": 1} x`, err: true},
		{in: `{"a": 1,}`, err: true},
		{in: `{"a" 1}`, err: true},
		{in: `{"a": [[[1]]]}`, err: true}, // deeper than maxDepth 2
		{in: `{"a": 1`, err: true},
	} {
		var keys, vals []string
		b := []byte(c.in)
		it := Fields(b, 0, 2)
		for it.Next() {
			f := it.Field()
			keys = append(keys, f.Key(b))
			vals = append(vals, string(b[f.VS:f.VE]))
			if !f.KeyIs(b, f.Key(b)) {
				t.Errorf("%q: KeyIs(%q) false", c.in, f.Key(b))
			}
		}
		if (it.Err() != nil) != c.err {
			t.Errorf("%q: err %v", c.in, it.Err())
			continue
		}
		if !c.err && (!reflect.DeepEqual(keys, c.keys) || !reflect.DeepEqual(vals, c.vals)) {
			t.Errorf("%q: keys %q vals %q, want %q %q", c.in, keys, vals, c.keys, c.vals)
		}
	}
}

// TestDecodeJS: the Go values of goja's export of JSON.parse's result.
func TestDecodeJS(t *testing.T) {
	in := `{"i": 12, "big": 9223372036854775807, "f": 0.5, "e": 1e2, "nz": -0.0, "huge": 1e300, "s": "a\u00e9\ud83d\ude00",
		"a": [true, false, null, {}], "o": {"k": "v"}} tail`
	got, end := DecodeJS([]byte(in), 0)
	want := map[string]any{"i": int64(12), "big": int64(9223372036854775807), "f": 0.5, "e": int64(100), "nz": math.Copysign(0, -1), "huge": 1e300,
		"s": "aé😀", "a": []any{true, false, nil, map[string]any{}}, "o": map[string]any{"k": "v"}}
	nz := got.(map[string]any)["nz"]
	if !reflect.DeepEqual(got, want) || in[end:] != " tail" || !math.Signbit(nz.(float64)) {
		t.Fatalf("got %#v (end %d)\nwant %#v", got, end, want)
	}
}
