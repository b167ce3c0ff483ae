package js

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/dop251/goja"
)

// maxDecodeDepth bounds nesting of decoded JSON.
const maxDecodeDepth = 64

// DecodeJSON parses one JSON value straight into JS values of rt (native
// objects and arrays), without an intermediate Go value. Integers that fit
// in int64 stay integers; other numbers are float64.
func DecodeJSON(rt *goja.Runtime, b []byte) (goja.Value, error) {
	d := jsonDecoder{rt: rt, b: b}
	d.space()
	v, err := d.value(0)
	if err != nil {
		return nil, err
	}
	d.space()
	if d.i != len(d.b) {
		return nil, d.errorf("unexpected data after the value")
	}
	return v, nil
}

type jsonDecoder struct {
	rt   *goja.Runtime
	b    []byte
	i    int
	strs *stringCache // may be nil
}

// stringCache shares the JS values of short strings that repeat across
// records (pages, countries, statuses) within one runtime: decoding such
// a value then allocates nothing.
type stringCache struct{ m map[string]goja.Value }

// maxCachedString is the longest string value kept; maxCachedStrings
// bounds the cache.
const (
	maxCachedString  = 32
	maxCachedStrings = 4096
)

func (c *stringCache) value(rt *goja.Runtime, b []byte) goja.Value {
	if c == nil || len(b) > maxCachedString {
		return rt.ToValue(string(b))
	}
	if v, ok := c.m[string(b)]; ok {
		return v
	}
	v := rt.ToValue(string(b))
	if c.m == nil {
		c.m = map[string]goja.Value{}
	}
	if len(c.m) < maxCachedStrings {
		c.m[string(b)] = v
	}
	return v
}

var errJSONEnd = errors.New("unexpected end of JSON")

func (d *jsonDecoder) errorf(format string, args ...any) error {
	return fmt.Errorf("JSON at byte %d: %s", d.i, fmt.Sprintf(format, args...))
}

func (d *jsonDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jsonDecoder) value(depth int) (goja.Value, error) {
	if d.i >= len(d.b) {
		return nil, errJSONEnd
	}
	if depth > maxDecodeDepth {
		return nil, d.errorf("nested deeper than %d", maxDecodeDepth)
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		if raw, ok := d.plainStr(); ok {
			return d.strs.value(d.rt, raw), nil
		}
		s, err := d.str()
		if err != nil {
			return nil, err
		}
		return d.rt.ToValue(s), nil
	case c == 't':
		return d.literal("true", d.rt.ToValue(true))
	case c == 'f':
		return d.literal("false", d.rt.ToValue(false))
	case c == 'n':
		return d.literal("null", goja.Null())
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	return nil, d.errorf("unexpected %q", d.b[d.i])
}

func (d *jsonDecoder) literal(word string, v goja.Value) (goja.Value, error) {
	if len(d.b)-d.i < len(word) || string(d.b[d.i:d.i+len(word)]) != word {
		return nil, d.errorf("invalid literal")
	}
	d.i += len(word)
	return v, nil
}

func (d *jsonDecoder) object(depth int) (goja.Value, error) {
	o := d.rt.NewObject()
	d.i++
	d.space()
	if d.i < len(d.b) && d.b[d.i] == '}' {
		d.i++
		return o, nil
	}
	for {
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != '"' {
			return nil, d.errorf("expected a key")
		}
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, d.errorf("expected ':'")
		}
		d.i++
		d.space()
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		if err := o.Set(k, v); err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.b) {
			return nil, errJSONEnd
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case '}':
			d.i++
			return o, nil
		default:
			return nil, d.errorf("expected ',' or '}'")
		}
	}
}

func (d *jsonDecoder) array(depth int) (goja.Value, error) {
	var items []any
	d.i++
	d.space()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return d.rt.NewArray(), nil
	}
	for {
		d.space()
		v, err := d.value(depth + 1)
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		d.space()
		if d.i >= len(d.b) {
			return nil, errJSONEnd
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return d.rt.NewArray(items...), nil
		default:
			return nil, d.errorf("expected ',' or ']'")
		}
	}
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *jsonDecoder) number() (goja.Value, error) {
	start := d.i
	digits := func() int {
		n := 0
		for d.i < len(d.b) && d.b[d.i] >= '0' && d.b[d.i] <= '9' {
			d.i++
			n++
		}
		return n
	}
	if d.b[d.i] == '-' {
		d.i++
	}
	if d.i < len(d.b) && d.b[d.i] == '0' {
		d.i++
	} else if digits() == 0 {
		return nil, d.errorf("invalid number")
	}
	isFloat := false
	if d.i < len(d.b) && d.b[d.i] == '.' {
		d.i++
		isFloat = true
		if digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	if d.i < len(d.b) && (d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		d.i++
		isFloat = true
		if d.i < len(d.b) && (d.b[d.i] == '+' || d.b[d.i] == '-') {
			d.i++
		}
		if digits() == 0 {
			return nil, d.errorf("invalid number")
		}
	}
	if n, ok := smallInt(d.b[start:d.i]); ok && !isFloat {
		return d.rt.ToValue(n), nil
	}
	s := string(d.b[start:d.i])
	if !isFloat {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return d.rt.ToValue(n), nil
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return nil, d.errorf("invalid number %q", s)
	}
	return d.rt.ToValue(f), nil
}

// plainStr reads a string without escapes, returning its bytes; if the
// string has escapes, it reads nothing and ok is false.
func (d *jsonDecoder) plainStr() (b []byte, ok bool) {
	for j := d.i + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			if b = d.b[d.i+1 : j]; !utf8.Valid(b) {
				return nil, false
			}
			d.i = j + 1
			return b, true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

// str reads a JSON string; the fast path copies it without escapes.
func (d *jsonDecoder) str() (string, error) {
	d.i++
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if c == '"' {
			s := validUTF8(d.b[start:d.i])
			d.i++
			return s, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		d.i++
	}
	buf := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			return validUTF8(buf), nil
		case c < 0x20:
			return "", d.errorf("control character in string")
		case c != '\\':
			buf = append(buf, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			return "", errJSONEnd
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", d.errorf("invalid \\u escape")
			}
			if utf16.IsSurrogate(r) {
				// A valid pair makes one rune; an unpaired surrogate is
				// U+FFFD and a following escape stands on its own.
				if d.i+5 < len(d.b) && d.b[d.i] == '\\' && d.b[d.i+1] == 'u' {
					save := d.i
					d.i += 2
					if r2, ok := d.hex4(); ok && utf16.DecodeRune(r, r2) != utf8.RuneError {
						r = utf16.DecodeRune(r, r2)
					} else {
						d.i = save
						r = utf8.RuneError
					}
				} else {
					r = utf8.RuneError
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", d.errorf("invalid escape \\%c", e)
		}
	}
	return "", errJSONEnd
}

// smallInt parses a valid JSON integer of at most 18 digits (which cannot
// overflow) without allocating.
func smallInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// validUTF8 returns b as a string, each invalid byte replaced by U+FFFD
// (as JSON.parse does).
func validUTF8(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return string([]rune(string(b)))
}

func (d *jsonDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(d.b[d.i:d.i+4]), 16, 32)
	if err != nil {
		return 0, false
	}
	d.i += 4
	return rune(n), true
}
