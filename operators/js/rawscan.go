package js

import (
	"fmt"
	"math"
	"unicode/utf8"

	"github.com/runnel-dev/runnel/internal/jsonscan"
)

// The validating index behind rawObject: it checks JSON syntax and finds
// the top-level fields' spans without building values (internal/jsonscan
// does the scanning), and decodes a value straight to Go when a record is
// exported unread.

// indexObject validates the JSON object at b[i] (and that only whitespace
// follows it) and appends its top-level fields to fields.
func indexObject(b []byte, i int, fields []rawField) ([]rawField, error) {
	i++ // '{'
	i = jsonscan.SkipSpace(b, i)
	if i < len(b) && b[i] == '}' {
		return fields, trailing(b, i+1)
	}
	for {
		i = jsonscan.SkipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return nil, jsonscan.Errorf(i, "expected a key")
		}
		ks := i + 1
		ke, info, err := jsonscan.ScanString(b, i)
		if err != nil {
			return nil, err
		}
		// A key that is not valid UTF-8 is compared in its decoded form.
		esc := info&jsonscan.Escaped != 0 || info&jsonscan.NonASCII != 0 && !utf8.Valid(b[ks:ke-1])
		i = jsonscan.SkipSpace(b, ke)
		if i >= len(b) || b[i] != ':' {
			return nil, jsonscan.Errorf(i, "expected ':'")
		}
		vs := jsonscan.SkipSpace(b, i+1)
		// The fields are at depth 1 of maxDecodeDepth.
		ve, err := jsonscan.SkipValue(b, vs, maxDecodeDepth-1)
		if err != nil {
			return nil, err
		}
		if ve > math.MaxInt32 {
			return nil, jsonscan.Errorf(vs, "record too large")
		}
		fields = append(fields, rawField{ks: int32(ks), ke: int32(ke - 1), vs: int32(vs), ve: int32(ve), escaped: esc})
		i = jsonscan.SkipSpace(b, ve)
		if i >= len(b) {
			return nil, jsonscan.Errorf(i, jsonscan.MsgEnd)
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return fields, trailing(b, i+1)
		default:
			return nil, jsonscan.Errorf(i, "expected ',' or '}'")
		}
	}
}

func trailing(b []byte, i int) error {
	if i = jsonscan.SkipSpace(b, i); i != len(b) {
		return jsonscan.Errorf(i, "unexpected data after the value")
	}
	return nil
}

// unquote decodes the valid JSON string at b[0].
func unquote(b []byte) (string, error) {
	out, _, err := jsonscan.Unquote(nil, b, 0)
	return string(out), err
}

// decodeGo decodes the valid JSON value at b[i] into the Go value an
// export of its JS value gives: map[string]any, []any, string, bool, nil,
// int64 for integral numbers that a JS number holds exactly, else float64.
func decodeGo(b []byte, i int) any {
	v, _ := decodeGoAt(b, i)
	return v
}

func decodeGoAt(b []byte, i int) (any, int) {
	switch c := b[i]; {
	case c == '"':
		end, info, _ := jsonscan.ScanString(b, i)
		return stringOf(b[i+1:end-1], info), end
	case c == '{':
		m := map[string]any{}
		i = jsonscan.SkipSpace(b, i+1)
		for i < len(b) && b[i] != '}' {
			end, info, _ := jsonscan.ScanString(b, i)
			k := stringOf(b[i+1:end-1], info)
			i = jsonscan.SkipSpace(b, end)
			v, next := decodeGoAt(b, jsonscan.SkipSpace(b, i+1))
			m[k] = v
			i = jsonscan.SkipSpace(b, next)
			if b[i] == ',' {
				i = jsonscan.SkipSpace(b, i+1)
			}
		}
		return m, i + 1
	case c == '[':
		a := []any{}
		i = jsonscan.SkipSpace(b, i+1)
		for i < len(b) && b[i] != ']' {
			v, next := decodeGoAt(b, i)
			a = append(a, v)
			i = jsonscan.SkipSpace(b, next)
			if b[i] == ',' {
				i = jsonscan.SkipSpace(b, i+1)
			}
		}
		return a, i + 1
	case c == 't':
		return true, i + 4
	case c == 'f':
		return false, i + 5
	case c == 'n':
		return nil, i + 4
	}
	end, form, _ := jsonscan.ScanNumber(b, i)
	num := b[i:end]
	if form == 0 {
		if n, ok := jsonscan.Int(num); ok {
			return n, end
		}
	}
	f, _ := jsonscan.Float(num, form)
	if f == math.Trunc(f) && math.Abs(f) <= 1<<53 && !(f == 0 && math.Signbit(f)) {
		return int64(f), end
	}
	return f, end
}

// JSONFields reads top-level fields of raw JSON object records without
// decoding the rest (a source's event-time field ahead of a JS chain). It
// reuses its scratch space, so it belongs to one goroutine.
type JSONFields struct{ scratch []rawField }

// Get validates b, a JSON object, and returns the value of its top-level
// field name as exportValue would give it (nil, false if absent).
func (j *JSONFields) Get(b []byte, name string) (any, bool, error) {
	s := jsonscan.SkipSpace(b, 0)
	if s >= len(b) || b[s] != '{' {
		return nil, false, fmt.Errorf("record is not a JSON object")
	}
	fields, err := indexObject(b, s, j.scratch[:0])
	if err != nil {
		return nil, false, err
	}
	j.scratch = fields
	o := rawObject{b: b, fields: fields}
	f := o.find(name)
	if f == nil {
		return nil, false, nil
	}
	return decodeGo(b[:f.ve], int(f.vs)), true, nil
}
