package sources

import (
	"encoding/json"
	"errors"
	"math"
	"reflect"
	"testing"
)

func TestDecodeJSONMatchesEncodingJSON(t *testing.T) {
	cases := []string{
		`{"page":"/p/1","user":"u-1","latency_ms":42.5,"status":200,"ts":1767225600000}`,
		`[1, -0, 0.5, 1e3, -2.5E-3, 123456789012345678, 1.7976931348623157e308]`,
		`"esc \" \\ \/ \b \f \n \r \t \u00e9 \ud83d\ude00 \ud800 x"`,
		`{"a":{"b":[true,false,null,{}]},"a":2}`,
		"  \t\n 7 \r\n",
		`"h\u00e9llo w\xffrld"`,
		`"\ud83d\u0041"`,
	}
	for _, c := range cases {
		want, wantErr := stdDecode([]byte(c))
		got, err := DecodeJSON([]byte(c))
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%s: err %v, encoding/json err %v", c, err, wantErr)
		}
		if !sameJSON(got, want) {
			t.Errorf("%s:\n got  %#v\n want %#v", c, got, want)
		}
	}
}

func TestDecodeJSONRejects(t *testing.T) {
	for _, c := range []string{``, `{`, `{"a"}`, `[1,]`, `01`, `1.`, `-`, `"\x"`, "\"a\nb\"", `tru`, `{} x`, `1e`, `{"a":1,}`} {
		if _, err := DecodeJSON([]byte(c)); !errors.Is(err, ErrJSON) {
			t.Errorf("%q: err = %v, want ErrJSON", c, err)
		}
	}
}

func stdDecode(b []byte) (any, error) {
	var v any
	err := json.Unmarshal(b, &v)
	return v, err
}

// sameJSON is reflect.DeepEqual that also tells -0 from 0.
func sameJSON(a, b any) bool {
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && fa == fb && math.Signbit(fa) == math.Signbit(fb)
	}
	return reflect.DeepEqual(a, b)
}

func FuzzDecodeJSON(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"x\u00e9"]}`, `null`, `"\ud800"`, `-0.0e+1`, `[[[]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want, wantErr := stdDecode(b)
		got, err := DecodeJSON(b)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("%q: err %v, encoding/json err %v", b, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\n got  %#v\n want %#v", b, got, want)
		}
	})
}

func BenchmarkDecodeJSON(b *testing.B) {
	line := []byte(`{"country":"de","latency_ms":42.5,"page":"/p/17","status":200,"ts":1767225600000,"user":"u-123"}`)
	b.Run("runnel", func(b *testing.B) {
		var d JSONDecoder
		for b.Loop() {
			if _, err := d.Decode(line); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("encoding_json", func(b *testing.B) {
		for b.Loop() {
			if _, err := stdDecode(line); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	})
}

func TestDecodeJSONNumbersRoundLikeStrconv(t *testing.T) {
	for _, c := range []string{"0.1", "-0.0", "42.5", "123456789012.345", "999999999999999", "9999999999999999",
		"0.000000000000001", "1.7976931348623157", "-12345678901234.5", "1234567890123456.7", "0.30000000000000004"} {
		want, _ := stdDecode([]byte(c))
		got, err := DecodeJSON([]byte(c))
		if err != nil || !sameJSON(got, want) {
			t.Errorf("%s: got %v (%v), want %v", c, got, err, want)
		}
	}
}
