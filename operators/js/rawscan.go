package js

import (
	"fmt"

	"github.com/runnel-dev/runnel/internal/jsonscan"
)

// The validating index behind rawObject: it checks JSON syntax and finds
// the top-level fields' spans without building values (internal/jsonscan
// does the scanning), and decodes a value straight to Go when a record is
// exported unread.

// indexObject validates the JSON object at b[i] (and that only whitespace
// follows it) and appends its top-level fields to fields.
func indexObject(b []byte, i int, fields []rawField) ([]rawField, error) {
	// The fields are at depth 1 of maxDecodeDepth.
	it := jsonscan.Fields(b, i, maxDecodeDepth-1)
	for it.Next() {
		fields = append(fields, rawField{Field: it.Field()})
	}
	if err := it.Err(); err != nil {
		return nil, err
	}
	return fields, nil
}

// unquote decodes the valid JSON string at b[0].
func unquote(b []byte) (string, error) {
	out, _, err := jsonscan.Unquote(nil, b, 0)
	return string(out), err
}

// decodeGo decodes the valid JSON value at b[i] into the Go value an
// export of its JS value gives (jsonscan.DecodeJS).
func decodeGo(b []byte, i int) any {
	v, _ := jsonscan.DecodeJS(b, i)
	return v
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
	return decodeGo(b[:f.VE], int(f.VS)), true, nil
}
