package js

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"unicode/utf8"
)

// The validating scanner behind rawObject: it checks JSON syntax and
// finds value boundaries without building values, and decodes a value
// straight to Go when a record is exported unread.

func scanErr(i int, format string, args ...any) error {
	return fmt.Errorf("JSON at byte %d: %s", i, fmt.Sprintf(format, args...))
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// indexObject validates the JSON object at b[i] (and that only whitespace
// follows it) and appends its top-level fields to fields.
func indexObject(b []byte, i int, fields []rawField) ([]rawField, error) {
	i++ // '{'
	i = skipSpace(b, i)
	if i < len(b) && b[i] == '}' {
		return fields, trailing(b, i+1)
	}
	for {
		i = skipSpace(b, i)
		if i >= len(b) || b[i] != '"' {
			return nil, scanErr(i, "expected a key")
		}
		ks := i + 1
		ke, esc, err := skipString(b, i)
		if err != nil {
			return nil, err
		}
		// A key that is not valid UTF-8 is compared in its decoded form.
		esc = esc || !utf8.Valid(b[ks:ke-1])
		i = skipSpace(b, ke)
		if i >= len(b) || b[i] != ':' {
			return nil, scanErr(i, "expected ':'")
		}
		vs := skipSpace(b, i+1)
		ve, err := skipValue(b, vs, 1)
		if err != nil {
			return nil, err
		}
		if ve > math.MaxInt32 {
			return nil, scanErr(vs, "record too large")
		}
		fields = append(fields, rawField{ks: int32(ks), ke: int32(ke - 1), vs: int32(vs), ve: int32(ve), escaped: esc})
		i = skipSpace(b, ve)
		if i >= len(b) {
			return nil, errJSONEnd
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return fields, trailing(b, i+1)
		default:
			return nil, scanErr(i, "expected ',' or '}'")
		}
	}
}

func trailing(b []byte, i int) error {
	if i = skipSpace(b, i); i != len(b) {
		return scanErr(i, "unexpected data after the value")
	}
	return nil
}

// skipString validates the string starting at b[i] ('"') and returns the
// index after its closing quote and whether it has escapes.
func skipString(b []byte, i int) (end int, escaped bool, err error) {
	for i++; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, nil
		case c < 0x20:
			return 0, false, scanErr(i, "control character in string")
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return 0, false, errJSONEnd
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					return 0, false, scanErr(i, "invalid \\u escape")
				}
				i += 5
			default:
				return 0, false, scanErr(i, "invalid escape \\%c", b[i+1])
			}
		}
	}
	return 0, false, errJSONEnd
}

func isHex4(h []byte) bool {
	for _, c := range h {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// skipValue validates the value at b[i] and returns the index after it.
func skipValue(b []byte, i, depth int) (int, error) {
	if i >= len(b) {
		return 0, errJSONEnd
	}
	if depth > maxDecodeDepth {
		return 0, scanErr(i, "nested deeper than %d", maxDecodeDepth)
	}
	switch c := b[i]; {
	case c == '"':
		end, _, err := skipString(b, i)
		return end, err
	case c == '{' || c == '[':
		return skipContainer(b, i, depth)
	case c == 't':
		return skipWord(b, i, "true")
	case c == 'f':
		return skipWord(b, i, "false")
	case c == 'n':
		return skipWord(b, i, "null")
	case c == '-' || (c >= '0' && c <= '9'):
		end, _, err := skipNumber(b, i)
		return end, err
	}
	return 0, scanErr(i, "unexpected %q", b[i])
}

func skipWord(b []byte, i int, w string) (int, error) {
	if len(b)-i < len(w) || string(b[i:i+len(w)]) != w {
		return 0, scanErr(i, "invalid literal")
	}
	return i + len(w), nil
}

func skipContainer(b []byte, i, depth int) (int, error) {
	obj := b[i] == '{'
	closer := byte(']')
	if obj {
		closer = '}'
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == closer {
		return i + 1, nil
	}
	for {
		i = skipSpace(b, i)
		if obj {
			if i >= len(b) || b[i] != '"' {
				return 0, scanErr(i, "expected a key")
			}
			end, _, err := skipString(b, i)
			if err != nil {
				return 0, err
			}
			i = skipSpace(b, end)
			if i >= len(b) || b[i] != ':' {
				return 0, scanErr(i, "expected ':'")
			}
			i = skipSpace(b, i+1)
		}
		end, err := skipValue(b, i, depth+1)
		if err != nil {
			return 0, err
		}
		i = skipSpace(b, end)
		if i >= len(b) {
			return 0, errJSONEnd
		}
		switch b[i] {
		case ',':
			i++
		case closer:
			return i + 1, nil
		default:
			return 0, scanErr(i, "expected ',' or '%c'", closer)
		}
	}
}

// skipNumber validates -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (end int, isFloat bool, err error) {
	start := i
	digits := func() int {
		n := 0
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
			n++
		}
		return n
	}
	if b[i] == '-' {
		i++
	}
	if i < len(b) && b[i] == '0' {
		i++
	} else if digits() == 0 {
		return 0, false, scanErr(start, "invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		isFloat = true
		if digits() == 0 {
			return 0, false, scanErr(start, "invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		isFloat = true
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return 0, false, scanErr(start, "invalid number")
		}
	}
	// A number beyond float64 is an error, as in JSON.parse and
	// DecodeJSON; only long or exponent numbers can be.
	if i-start > 15 || (isFloat && bytes.IndexAny(b[start:i], "eE") >= 0) {
		if _, err := strconv.ParseFloat(string(b[start:i]), 64); err != nil {
			return 0, false, scanErr(start, "invalid number %q", b[start:i])
		}
	}
	return i, isFloat, nil
}

// unquote decodes the valid JSON string at b[0].
func unquote(b []byte) (string, error) {
	d := jsonDecoder{b: b}
	return d.str()
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
		end, esc, _ := skipString(b, i)
		if !esc {
			return validUTF8(b[i+1 : end-1]), end
		}
		s, _ := unquote(b[i:end])
		return s, end
	case c == '{':
		m := map[string]any{}
		i = skipSpace(b, i+1)
		for i < len(b) && b[i] != '}' {
			end, esc, _ := skipString(b, i)
			k := validUTF8(b[i+1 : end-1])
			if esc {
				k, _ = unquote(b[i:end])
			}
			i = skipSpace(b, end)
			v, next := decodeGoAt(b, skipSpace(b, i+1))
			m[k] = v
			i = skipSpace(b, next)
			if b[i] == ',' {
				i = skipSpace(b, i+1)
			}
		}
		return m, i + 1
	case c == '[':
		a := []any{}
		i = skipSpace(b, i+1)
		for i < len(b) && b[i] != ']' {
			v, next := decodeGoAt(b, i)
			a = append(a, v)
			i = skipSpace(b, next)
			if b[i] == ',' {
				i = skipSpace(b, i+1)
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
	end, isFloat, _ := skipNumber(b, i)
	if n, ok := smallInt(b[i:end]); ok && !isFloat {
		return n, end
	}
	s := string(b[i:end])
	if !isFloat {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return n, end
		}
	}
	f, _ := strconv.ParseFloat(s, 64)
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
	s := skipSpace(b, 0)
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
