package jsonscan

import (
	"math"
	"unicode/utf8"
)

// Field is one top-level field of a JSON object: the spans of its key
// (without the quotes) and of its value in the object's bytes.
type Field struct {
	KS, KE, VS, VE int32
	// Escaped: the key's bytes are not its text (escapes or invalid
	// UTF-8), so it is compared in its decoded form.
	Escaped bool
}

// Key returns the field's key as a string (allocating).
func (f *Field) Key(b []byte) string {
	if f.Escaped {
		out, _, _ := Unquote(nil, b, int(f.KS)-1)
		return string(out)
	}
	return string(b[f.KS:f.KE])
}

// KeyIs reports whether the field's key is k.
func (f *Field) KeyIs(b []byte, k string) bool {
	if f.Escaped {
		return f.Key(b) == k
	}
	return string(b[f.KS:f.KE]) == k
}

// FieldIter walks the top-level fields of a JSON object (see Fields),
// validating it (values nested at most maxDepth levels below the fields,
// as SkipValue counts) and that only whitespace follows it:
//
//	it := jsonscan.Fields(b, i, depth)
//	for it.Next() { f := it.Field() ... }
//	if err := it.Err(); err != nil { ... }
type FieldIter struct {
	b        []byte
	i        int
	maxDepth int
	f        Field
	err      error
	done     bool
}

// Fields starts a walk of the object at b[i], which must be '{'.
func Fields(b []byte, i, maxDepth int) FieldIter {
	it := FieldIter{b: b, i: SkipSpace(b, i+1), maxDepth: maxDepth}
	if it.i < len(b) && b[it.i] == '}' {
		it.done = true
		it.err = trailing(b, it.i+1)
	}
	return it
}

// Next reads the next field; false at the end of the object or on an
// error (Err tells).
func (it *FieldIter) Next() bool {
	if it.done {
		return false
	}
	b, i := it.b, SkipSpace(it.b, it.i)
	if i >= len(b) || b[i] != '"' {
		return it.fail(errAt(i, "expected a key"))
	}
	ks := i + 1
	ke, info, err := ScanString(b, i)
	if err != nil {
		return it.fail(err)
	}
	i = SkipSpace(b, ke)
	if i >= len(b) || b[i] != ':' {
		return it.fail(errAt(i, "expected ':'"))
	}
	vs := SkipSpace(b, i+1)
	ve, err := SkipValue(b, vs, it.maxDepth)
	if err != nil {
		return it.fail(err)
	}
	if ve > math.MaxInt32 {
		return it.fail(errAt(vs, "object too large"))
	}
	esc := info&Escaped != 0 || info&NonASCII != 0 && !utf8.Valid(b[ks:ke-1])
	it.f = Field{KS: int32(ks), KE: int32(ke - 1), VS: int32(vs), VE: int32(ve), Escaped: esc}
	i = SkipSpace(b, ve)
	switch {
	case i >= len(b):
		return it.fail(errAt(i, MsgEnd))
	case b[i] == ',':
		it.i = i + 1
	case b[i] == '}':
		it.done = true
		if err := trailing(b, i+1); err != nil {
			return it.fail(err)
		}
	default:
		return it.fail(errAt(i, "expected ',' or '}'"))
	}
	return true
}

func (it *FieldIter) fail(err error) bool {
	it.err, it.done = err, true
	return false
}

// Field is the field Next read.
func (it *FieldIter) Field() Field { return it.f }

// Err is the error that ended the walk, if any.
func (it *FieldIter) Err() error { return it.err }

func trailing(b []byte, i int) error {
	if i = SkipSpace(b, i); i != len(b) {
		return errAt(i, "unexpected data after the value")
	}
	return nil
}
