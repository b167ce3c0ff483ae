package js

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"reflect"
	"testing"

	"github.com/dop251/goja"
)

// normalize makes encoding/json's output comparable with an export of
// DecodeJSON's: integral numbers that fit become int64.
func normalize(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalize(e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalize(e)
		}
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return n
		}
		f, _ := x.Float64()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f) // goja exports integral numbers as int64
		}
		return f
	}
	return v
}

func decodeBoth(t *testing.T, rt *goja.Runtime, in string) (got, want any, gotErr, wantErr error) {
	t.Helper()
	v, gotErr := DecodeJSON(rt, []byte(in))
	if gotErr == nil {
		got = v.Export()
	}
	d := json.NewDecoder(stringsReader(in))
	d.UseNumber()
	wantErr = d.Decode(&want)
	if wantErr == nil && d.More() {
		wantErr = errTrailing
	}
	if wantErr == nil {
		var rest any
		if d.Decode(&rest) == nil {
			wantErr = errTrailing
		}
	}
	return got, normalize(want), gotErr, wantErr
}

func TestDecodeJSON(t *testing.T) {
	rt := goja.New()
	good := []string{
		`{"page":"/p/1","user":"u","latency_ms":12,"ts":1700000000000,"f":1.5,"neg":-3,"e":1e3,"ok":true,"no":false,"nil":null}`,
		`[1, [2, {"a": []}], {}, "x"]`,
		`"esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00"`,
		` 42 `, `-0.5`, `12345678901234567890`, `{"é": "ünï"}`,
	}
	for _, in := range good {
		got, want, gerr, werr := decodeBoth(t, rt, in)
		if gerr != nil || werr != nil {
			t.Fatalf("%s: errors %v / %v", in, gerr, werr)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got  %#v\n want %#v", in, got, want)
		}
	}
	bad := []string{``, `{`, `{"a"}`, `{"a":1,}`, `[1,]`, `tru`, `"abc`, `"\x"`, `01x`, `{} {}`, "\"a\x01\"", `[1 2]`}
	for _, in := range bad {
		if _, err := DecodeJSON(rt, []byte(in)); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
	// Keys keep their order, as JSON.parse would.
	v, _ := DecodeJSON(rt, []byte(`{"z":1,"a":2,"m":3}`))
	if keys := v.(*goja.Object).Keys(); !reflect.DeepEqual(keys, []string{"z", "a", "m"}) {
		t.Fatalf("key order %v", keys)
	}
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x",null,true]}`, `"\u00e9\ud83d\ude00"`, `-1e-3`, `[[[]]]`} {
		f.Add([]byte(s))
	}
	rt := goja.New()
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeJSON(rt, b)
		if err != nil {
			return
		}
		// Whatever decodes must be what JSON.parse makes of it, modulo
		// number formatting.
		var want any
		if json.Unmarshal(b, &want) != nil {
			t.Fatalf("DecodeJSON accepted what encoding/json rejects: %q", b)
		}
		_ = v.Export()
	})
}

type stringReader struct {
	s string
	i int
}

func (r *stringReader) Read(p []byte) (int, error) {
	if r.i >= len(r.s) {
		return 0, io.EOF
	}
	n := copy(p, r.s[r.i:])
	r.i += n
	return n, nil
}

func stringsReader(s string) *stringReader { return &stringReader{s: s} }

// errTrailing marks what encoding/json's streaming decoder accepts but a
// whole document with more after its value is not.
var errTrailing = errors.New("unexpected data after the value")
