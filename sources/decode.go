package sources

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Format says how a source turns record bytes into a Value.
type Format string

// The record formats of a job's `format:` field.
const (
	FormatJSON  Format = "json"  // a JSON value; objects become map[string]any
	FormatText  Format = "text"  // the bytes as a string
	FormatBytes Format = "bytes" // the bytes as Bytes
)

// Bytes is a record of format bytes: its bytes as they are. It is a type
// of its own, not []byte, because the JS operators read []byte as JSON
// text; they hand Bytes to JS as an array of byte values (r.length,
// r[i]).
type Bytes []byte

// Validate reports an unknown format.
func (f Format) Validate() error {
	switch f {
	case FormatJSON, FormatText, FormatBytes:
		return nil
	}
	return configErr("format %q: use json, text or bytes", string(f))
}

// Decoder decodes record bytes in one format. It keeps a small cache of
// object keys, so it is used by one goroutine (one per shard task).
type Decoder struct {
	format Format
	json   JSONDecoder
}

// SetMaxDepth bounds the nesting of JSON records (see
// JSONDecoder.MaxDepth).
func (d *Decoder) SetMaxDepth(n int) { d.json.MaxDepth = n }

// NewDecoder returns a decoder for f ("" means json).
func NewDecoder(f Format) *Decoder {
	if f == "" {
		f = FormatJSON
	}
	return &Decoder{format: f}
}

// Decode turns data into a Value. The result does not alias data.
func (d *Decoder) Decode(data []byte) (any, error) {
	switch d.format {
	case FormatText:
		return string(data), nil
	case FormatBytes:
		return Bytes(append([]byte(nil), data...)), nil
	default:
		return d.json.Decode(data)
	}
}

// maxDepth matches encoding/json's nesting limit.
const maxDepth = 10000

// maxKeyCache bounds the interned object keys of one JSONDecoder.
const maxKeyCache = 4096

// JSONDecoder decodes JSON into map[string]any, []any, string, float64,
// bool and nil, exactly as encoding/json does into an `any`, but faster:
// no reflection, and object keys are interned so a stream of similar
// records shares its key strings. The zero value is ready to use; a
// JSONDecoder is not safe for concurrent use.
type JSONDecoder struct {
	// MaxDepth, if > 0, is how many arrays and objects a value may sit
	// inside (MaxJSONDepth for jobs); deeper is an error.
	MaxDepth int

	keys map[string]string
	vals map[string]any
}

// DecodeJSON decodes one JSON value (see JSONDecoder).
func DecodeJSON(data []byte) (any, error) {
	var d JSONDecoder
	return d.Decode(data)
}

// Decode decodes one JSON value; anything but whitespace after it is an
// error.
func (d *JSONDecoder) Decode(data []byte) (any, error) {
	p := jsonParser{data: data, keys: d}
	p.skipSpace()
	v, err := p.value(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos != len(p.data) {
		return nil, p.errorf("unexpected %q after the value", p.data[p.pos])
	}
	return v, nil
}

func (d *JSONDecoder) intern(b []byte) string {
	if s, ok := d.keys[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.keys == nil {
		d.keys = make(map[string]string)
	}
	if len(d.keys) < maxKeyCache {
		d.keys[s] = s
	}
	return s
}

// maxValueIntern is the longest string value that is interned: short
// values (countries, pages, statuses) repeat across records, long ones
// rarely do.
const maxValueIntern = 32

// internValue returns b as a boxed string, sharing the box with earlier
// equal short strings (boxing a string costs two allocations).
func (d *JSONDecoder) internValue(b []byte) any {
	if len(b) > maxValueIntern {
		return string(b)
	}
	if v, ok := d.vals[string(b)]; ok {
		return v
	}
	var v any = string(b)
	if d.vals == nil {
		d.vals = make(map[string]any)
	}
	if len(d.vals) < maxKeyCache {
		d.vals[string(b)] = v
	}
	return v
}

type jsonParser struct {
	data []byte
	pos  int
	keys *JSONDecoder
}

// ErrJSON marks malformed JSON.
var ErrJSON = errors.New("sources: invalid JSON")

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("%w at offset %d: %s", ErrJSON, p.pos, fmt.Sprintf(format, args...))
}

func (p *jsonParser) skipSpace() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if p.pos >= len(p.data) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(depth + 1)
	case c == '[':
		return p.array(depth + 1)
	case c == '"':
		b, err := p.str()
		if err != nil {
			return nil, err
		}
		return p.keys.internValue(b), nil
	case c == 't':
		return true, p.literal("true")
	case c == 'f':
		return false, p.literal("false")
	case c == 'n':
		return nil, p.literal("null")
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	default:
		return nil, p.errorf("unexpected %q", c)
	}
}

func (p *jsonParser) literal(word string) error {
	if len(p.data)-p.pos < len(word) || string(p.data[p.pos:p.pos+len(word)]) != word {
		return p.errorf("invalid literal, want %s", word)
	}
	p.pos += len(word)
	return nil
}

func (p *jsonParser) object(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.pos++ // '{'
	m := make(map[string]any, 8)
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		return m, nil
	}
	if lim := p.keys.MaxDepth; lim > 0 && depth > lim {
		return nil, p.errorf("a value nested deeper than %d", lim)
	}
	for {
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.errorf("want an object key")
		}
		kb, err := p.str()
		if err != nil {
			return nil, err
		}
		key := p.keys.intern(kb)
		p.skipSpace()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.errorf("want ':' after an object key")
		}
		p.pos++
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		m[key] = v
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an object")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return m, nil
		default:
			return nil, p.errorf("want ',' or '}' in an object")
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errorf("nested too deeply")
	}
	p.pos++ // '['
	a := []any{}
	p.skipSpace()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return a, nil
	}
	if lim := p.keys.MaxDepth; lim > 0 && depth > lim {
		return nil, p.errorf("a value nested deeper than %d", lim)
	}
	for {
		p.skipSpace()
		v, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.skipSpace()
		if p.pos >= len(p.data) {
			return nil, p.errorf("unexpected end of input in an array")
		}
		switch p.data[p.pos] {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return a, nil
		default:
			return nil, p.errorf("want ',' or ']' in an array")
		}
	}
}

// str parses a string at p.pos and returns its contents. The slice aliases
// the input when the string has no escapes and valid UTF-8.
func (p *jsonParser) str() ([]byte, error) {
	p.pos++ // opening quote
	start := p.pos
	ascii := true
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			b := p.data[start:p.pos]
			p.pos++
			if !ascii && !utf8.Valid(b) {
				return []byte(toValidUTF8(b)), nil
			}
			return b, nil
		case c == '\\':
			return p.strSlow(start)
		case c < 0x20:
			return nil, p.errorf("control character in a string")
		case c >= 0x80:
			ascii = false
		}
		p.pos++
	}
	return nil, p.errorf("unterminated string")
}

// toValidUTF8 replaces each invalid byte with U+FFFD, as encoding/json does.
func toValidUTF8(b []byte) string {
	out := make([]byte, 0, len(b)+8)
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, b[:size]...)
		}
		b = b[size:]
	}
	return string(out)
}

func (p *jsonParser) strSlow(start int) ([]byte, error) {
	out := make([]byte, 0, p.pos-start+16)
	out = append(out, p.data[start:p.pos]...)
	if !utf8.Valid(out) {
		out = []byte(toValidUTF8(out))
	}
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return out, nil
		case c == '\\':
			if p.pos+1 >= len(p.data) {
				return nil, p.errorf("unterminated escape")
			}
			e := p.data[p.pos+1]
			p.pos += 2
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := p.hex4()
				if !ok {
					return nil, p.errorf("invalid \\u escape")
				}
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					save := p.pos
					if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
						p.pos += 2
						if x, ok := p.hex4(); ok {
							r2 = x
						}
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						r = dec
					} else {
						p.pos = save
						r = utf8.RuneError
					}
				}
				out = utf8.AppendRune(out, r)
			default:
				return nil, p.errorf("invalid escape \\%c", e)
			}
		case c < 0x20:
			return nil, p.errorf("control character in a string")
		case c < 0x80:
			out = append(out, c)
			p.pos++
		default:
			r, size := utf8.DecodeRune(p.data[p.pos:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, p.data[p.pos:p.pos+size]...)
			}
			p.pos += size
		}
	}
	return nil, p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// number parses a JSON number as float64. Short integers take a fast path;
// everything else goes through strconv, which rounds the same way as
// encoding/json.
func (p *jsonParser) number() (any, error) {
	start := p.pos
	if p.data[p.pos] == '-' {
		p.pos++
	}
	if p.pos >= len(p.data) {
		return nil, p.errorf("invalid number")
	}
	if p.data[p.pos] == '0' {
		p.pos++
	} else if p.data[p.pos] >= '1' && p.data[p.pos] <= '9' {
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
		}
	} else {
		return nil, p.errorf("invalid number")
	}
	simple, frac := true, 0
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		frac = 1
		p.pos++
		d := p.pos
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == d {
			return nil, p.errorf("invalid number: no digits after '.'")
		}
		frac = p.pos - d
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		simple = false
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		d := p.pos
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
		}
		if p.pos == d {
			return nil, p.errorf("invalid number: no digits in the exponent")
		}
	}
	b := p.data[start:p.pos]
	// Fast path (Clinger): at most 15 significant digits are exact in a
	// float64, and so are powers of ten up to 1e22, so one division rounds
	// correctly.
	digits := len(b)
	if b[0] == '-' {
		digits--
	}
	if frac > 0 {
		digits--
	}
	if simple && digits <= 15 {
		neg := b[0] == '-'
		if neg {
			b = b[1:]
		}
		var n int64
		for _, c := range b {
			if c != '.' {
				n = n*10 + int64(c-'0')
			}
		}
		f := float64(n)
		if frac > 0 {
			f /= pow10[frac]
		}
		if neg {
			f = -f
		}
		return f, nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return nil, p.errorf("number %s out of range", b)
	}
	return f, nil
}

var pow10 = [...]float64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15}
