package sources

import (
	"strings"
	"testing"
)

// The depth rule is the JS bridge's: a value may sit inside at most
// MaxJSONDepth arrays and objects. CheckJSON (raw records) and the
// decoder with SetMaxDepth (decoded records) must agree on it.
func TestJSONDepthLimit(t *testing.T) {
	objects := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	arrays := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	for _, c := range []struct {
		name string
		data string
		ok   bool
	}{
		{"a value inside 64 objects", objects(64), true},
		{"a value inside 65 objects", objects(65), false},
		{"65 nested empty arrays (the innermost inside 64)", arrays(65), true},
		{"66 nested empty arrays", arrays(66), false},
		{"strings with brackets do not count", `{"a":"[[[[{{{{"}`, true},
		{"escaped quote in a string", `{"a":"\"[[[["}`, true},
		{"not JSON", `{"a":`, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := CheckJSON([]byte(c.data), MaxJSONDepth)
			if (err == nil) != c.ok {
				t.Fatalf("CheckJSON: %v, want ok=%v", err, c.ok)
			}
			d := NewDecoder(FormatJSON)
			d.SetMaxDepth(MaxJSONDepth)
			_, derr := d.Decode([]byte(c.data))
			if (derr == nil) != c.ok {
				t.Fatalf("Decode: %v, want ok=%v", derr, c.ok)
			}
		})
	}
}

func TestFormatBytesIsBytes(t *testing.T) {
	in := []byte(`{"a":1}`)
	v, err := NewDecoder(FormatBytes).Decode(in)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := v.(Bytes)
	if !ok || string(b) != string(in) {
		t.Fatalf("format bytes decoded %T %v, want Bytes %q", v, v, in)
	}
	in[0] = 'x'
	if b[0] != '{' {
		t.Fatal("the value aliases the record's bytes")
	}
}
