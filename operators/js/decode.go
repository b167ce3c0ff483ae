package js

import (
	"unicode/utf8"

	"github.com/dop251/goja"

	"github.com/runnel-dev/runnel/internal/jsonscan"
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
		return nil, jsonscan.Errorf(d.i, "unexpected data after the value")
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

func (d *jsonDecoder) space() { d.i = jsonscan.SkipSpace(d.b, d.i) }

func (d *jsonDecoder) end() error { return jsonscan.Errorf(d.i, jsonscan.MsgEnd) }

func (d *jsonDecoder) value(depth int) (goja.Value, error) {
	if d.i >= len(d.b) {
		return nil, d.end()
	}
	if depth > maxDecodeDepth {
		return nil, jsonscan.Errorf(d.i, "nested deeper than %d", maxDecodeDepth)
	}
	switch c := d.b[d.i]; {
	case c == '{':
		return d.object(depth)
	case c == '[':
		return d.array(depth)
	case c == '"':
		end, info, err := jsonscan.ScanString(d.b, d.i)
		if err != nil {
			return nil, err
		}
		s := d.b[d.i+1 : end-1]
		d.i = end
		if info == 0 || info == jsonscan.NonASCII && utf8.Valid(s) {
			return d.strs.value(d.rt, s), nil
		}
		return d.rt.ToValue(jsonscan.StringOf(s, info)), nil
	case c == 't':
		return d.literal("true", d.rt.ToValue(true))
	case c == 'f':
		return d.literal("false", d.rt.ToValue(false))
	case c == 'n':
		return d.literal("null", goja.Null())
	case c == '-' || (c >= '0' && c <= '9'):
		return d.number()
	}
	return nil, jsonscan.Errorf(d.i, "unexpected %q", d.b[d.i])
}

func (d *jsonDecoder) literal(word string, v goja.Value) (goja.Value, error) {
	end, err := jsonscan.Literal(d.b, d.i, word)
	if err != nil {
		return nil, err
	}
	d.i = end
	return v, nil
}

// key reads an object key.
func (d *jsonDecoder) key() (string, error) {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", jsonscan.Errorf(d.i, "expected a key")
	}
	end, info, err := jsonscan.ScanString(d.b, d.i)
	if err != nil {
		return "", err
	}
	s := d.b[d.i+1 : end-1]
	d.i = end
	return jsonscan.StringOf(s, info), nil
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
		k, err := d.key()
		if err != nil {
			return nil, err
		}
		d.space()
		if d.i >= len(d.b) || d.b[d.i] != ':' {
			return nil, jsonscan.Errorf(d.i, "expected ':'")
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
		if more, err := d.more('}'); err != nil {
			return nil, err
		} else if !more {
			return o, nil
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
		if more, err := d.more(']'); err != nil {
			return nil, err
		} else if !more {
			return d.rt.NewArray(items...), nil
		}
	}
}

// more reads what follows a member of an object or an array: a ','
// (another member follows) or closer (the value ends).
func (d *jsonDecoder) more(closer byte) (bool, error) {
	d.space()
	if d.i >= len(d.b) {
		return false, d.end()
	}
	switch d.b[d.i] {
	case ',':
		d.i++
		return true, nil
	case closer:
		d.i++
		return false, nil
	}
	return false, jsonscan.Errorf(d.i, "expected ',' or '%c'", closer)
}

// number reads a number: integers that fit in int64 as int64, others
// as float64.
func (d *jsonDecoder) number() (goja.Value, error) {
	end, form, err := jsonscan.ScanNumber(d.b, d.i)
	if err != nil {
		return nil, err
	}
	num := d.b[d.i:end]
	if form == 0 {
		if n, ok := jsonscan.Int(num); ok {
			d.i = end
			return d.rt.ToValue(n), nil
		}
	}
	f, ok := jsonscan.Float(num, form)
	if !ok {
		return nil, jsonscan.Errorf(d.i, "invalid number %q", num)
	}
	d.i = end
	return d.rt.ToValue(f), nil
}
