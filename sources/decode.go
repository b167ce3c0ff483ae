package sources

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/runnel-dev/runnel/internal/jsonscan"
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

// syntax converts a jsonscan error to the decoder's.
func (p *jsonParser) syntax(err error) error {
	var se *jsonscan.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("%w at offset %d: %s", ErrJSON, se.Offset, se.Msg)
	}
	return fmt.Errorf("%w: %w", ErrJSON, err)
}

func (p *jsonParser) skipSpace() { p.pos = jsonscan.SkipSpace(p.data, p.pos) }

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
	end, err := jsonscan.Literal(p.data, p.pos, word)
	if err != nil {
		return p.syntax(err)
	}
	p.pos = end
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
		end, err := p.next('}', "an object")
		if err != nil {
			return nil, err
		}
		if end {
			return m, nil
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
		end, err := p.next(']', "an array")
		if err != nil {
			return nil, err
		}
		if end {
			return a, nil
		}
	}
}

// next reads what follows a member or element of what (an object or an
// array): ',' (another follows) or the closing byte (end is true).
func (p *jsonParser) next(closing byte, what string) (end bool, err error) {
	p.skipSpace()
	if p.pos >= len(p.data) {
		return false, p.errorf("unexpected end of input in %s", what)
	}
	switch p.data[p.pos] {
	case ',':
		p.pos++
		return false, nil
	case closing:
		p.pos++
		return true, nil
	}
	return false, p.errorf("want ',' or '%c' in %s", closing, what)
}

// str parses a string at p.pos and returns its contents. The slice aliases
// the input when the string has no escapes and valid UTF-8.
func (p *jsonParser) str() ([]byte, error) {
	end, info, err := jsonscan.ScanString(p.data, p.pos)
	if err != nil {
		return nil, p.syntax(err)
	}
	s := p.data[p.pos+1 : end-1]
	p.pos = end
	switch {
	case info&jsonscan.Escaped != 0:
		return jsonscan.AppendUnquoted(make([]byte, 0, len(s)), s), nil
	case info&jsonscan.NonASCII != 0 && !utf8.Valid(s):
		return jsonscan.AppendValidUTF8(make([]byte, 0, len(s)+8), s), nil
	}
	return s, nil
}

// number parses a JSON number as float64, rounding as encoding/json does.
func (p *jsonParser) number() (any, error) {
	end, form, err := jsonscan.ScanNumber(p.data, p.pos)
	if err != nil {
		return nil, p.syntax(err)
	}
	b := p.data[p.pos:end]
	f, ok := jsonscan.Float(b, form)
	if !ok {
		return nil, p.errorf("number %s out of range", b)
	}
	p.pos = end
	return f, nil
}
