package js

import (
	"reflect"

	"github.com/dop251/goja"

	"github.com/runnel-dev/runnel/internal/jsonscan"
)

// rawObject is a JSON object record handed to JS without decoding it: a
// goja DynamicObject over the record's bytes. The bytes are validated and
// the top-level fields indexed once; a field's value is decoded the first
// time JS reads it and kept, so a record whose function reads three of its
// fields never builds the other values, and a nested object read twice is
// the same object. Writes and deletes go to the index; export (exportValue)
// reads the decoded or written values and decodes the rest straight to Go.
//
// Differences from a plain object, which a record function does not
// normally notice: its properties cannot be made non-writable or
// non-configurable (Object.freeze, defineProperty with such flags throw a
// TypeError), and it cannot be made non-extensible.
type rawObject struct {
	rt     *goja.Runtime
	strs   *stringCache
	b      []byte
	fields []rawField
	extra  []namedField // fields added by JS
	dups   dupState     // whether the JSON repeats a key
	// dirty: JS wrote to the object, or got hold of a nested object or
	// array (which it may have changed): the bytes no longer stand for it.
	dirty bool
}

// pristine reports whether o is a raw object its bytes still describe.
func pristine(o *goja.Object) bool {
	if o.ExportType() != rawObjectType {
		return false
	}
	return !o.Export().(*rawObject).dirty
}

type dupState uint8

const (
	dupsUnknown dupState = iota
	dupsNone
	dupsSome
)

// rawField is one top-level field of a rawObject: spans of its key
// and value in b, and what JS did with it.
type rawField struct {
	jsonscan.Field
	state fieldState
	val   goja.Value // with fieldValue: the decoded or assigned value
}

type fieldState uint8

const (
	fieldRaw     fieldState = iota // not read yet: decode b[vs:ve]
	fieldValue                     // val holds the value
	fieldDeleted                   // deleted by JS
)

type namedField struct {
	name    string
	val     goja.Value
	deleted bool
}

var rawObjectType = reflect.TypeOf((*rawObject)(nil))

// key returns field f's key as a string (allocating).
func (o *rawObject) key(f *rawField) string { return f.Key(o.b) }

func (o *rawObject) keyIs(f *rawField, k string) bool { return f.KeyIs(o.b, k) }

// find returns the field with key k (the last one when JSON repeats a key,
// as JSON.parse keeps the last), or nil.
func (o *rawObject) find(k string) *rawField {
	for i := len(o.fields) - 1; i >= 0; i-- {
		if f := &o.fields[i]; f.KE-f.KS == int32(len(k)) || f.Escaped {
			if o.keyIs(f, k) {
				return f
			}
		}
	}
	return nil
}

// findExtra returns the live added field k, or the last deleted one.
func (o *rawObject) findExtra(k string) *namedField {
	for i := len(o.extra) - 1; i >= 0; i-- {
		if o.extra[i].name == k {
			return &o.extra[i]
		}
	}
	return nil
}

// value decodes f's value on first use.
func (o *rawObject) value(f *rawField) goja.Value {
	if f.state == fieldRaw {
		d := jsonDecoder{rt: o.rt, b: o.b[:f.VE], i: int(f.VS), strs: o.strs}
		v, err := d.value(1)
		if err != nil {
			// The bytes were validated when the object was made.
			panic(o.rt.NewGoError(err))
		}
		f.val, f.state = v, fieldValue
		if _, ok := v.(*goja.Object); ok {
			o.dirty = true
		}
	}
	return f.val
}

// Get implements goja.DynamicObject.
func (o *rawObject) Get(k string) goja.Value {
	if f := o.find(k); f != nil {
		if f.state == fieldDeleted {
			return o.getExtra(k)
		}
		return o.value(f)
	}
	return o.getExtra(k)
}

func (o *rawObject) getExtra(k string) goja.Value {
	if e := o.findExtra(k); e != nil && !e.deleted {
		return e.val
	}
	return nil
}

// Set implements goja.DynamicObject.
func (o *rawObject) Set(k string, v goja.Value) bool {
	o.dirty = true
	if f := o.find(k); f != nil && f.state != fieldDeleted {
		f.val, f.state = v, fieldValue
		return true
	}
	if e := o.findExtra(k); e != nil && !e.deleted {
		e.val = v
		return true
	}
	// A new key, or a deleted one set again, goes to the end.
	o.extra = append(o.extra, namedField{name: k, val: v})
	return true
}

// Has implements goja.DynamicObject.
func (o *rawObject) Has(k string) bool {
	if f := o.find(k); f != nil && f.state != fieldDeleted {
		return true
	}
	e := o.findExtra(k)
	return e != nil && !e.deleted
}

// Delete implements goja.DynamicObject.
func (o *rawObject) Delete(k string) bool {
	o.dirty = true
	for i := range o.fields {
		if f := &o.fields[i]; f.state != fieldDeleted && o.keyIs(f, k) {
			f.state, f.val = fieldDeleted, nil
		}
	}
	for i := range o.extra {
		if o.extra[i].name == k {
			o.extra[i].deleted, o.extra[i].val = true, nil
		}
	}
	return true
}

// Keys implements goja.DynamicObject: the JSON's keys in document order
// (a repeated key once, at its first place), then the keys JS added.
func (o *rawObject) Keys() []string {
	keys := make([]string, 0, len(o.fields)+len(o.extra))
	for i := range o.fields {
		if f := o.live(i); f != nil {
			keys = append(keys, o.key(f))
		}
	}
	for i := range o.extra {
		if !o.extra[i].deleted {
			keys = append(keys, o.extra[i].name)
		}
	}
	return keys
}

// live returns the field whose value key i stands for (the last field
// with that key), or nil if the key is deleted or appears earlier.
func (o *rawObject) live(i int) *rawField {
	f := &o.fields[i]
	if o.dups == dupsUnknown {
		o.dups = dupsNone
		for a := range o.fields {
			for b := a + 1; b < len(o.fields); b++ {
				if o.keyIs(&o.fields[b], o.key(&o.fields[a])) {
					o.dups = dupsSome
				}
			}
		}
	}
	if o.dups == dupsSome {
		k := o.key(f)
		for j := 0; j < i; j++ {
			if o.keyIs(&o.fields[j], k) {
				return nil
			}
		}
		f = o.find(k)
	}
	if f.state == fieldDeleted {
		return nil
	}
	return f
}

// exportGo converts the object to a map[string]any: values JS read or
// wrote are exported, the others decoded from the bytes directly.
func (o *rawObject) exportGo(depth int) map[string]any {
	m := make(map[string]any, len(o.fields)+len(o.extra))
	for i := range o.fields {
		f := o.live(i)
		switch {
		case f == nil:
		case f.state == fieldRaw:
			m[o.key(f)] = decodeGo(o.b[:f.VE], int(f.VS))
		default:
			m[o.key(f)] = exportDepth(f.val, depth+1)
		}
	}
	for i := range o.extra {
		if e := &o.extra[i]; !e.deleted {
			m[e.name] = exportDepth(e.val, depth+1)
		}
	}
	return m
}

// rawBatch makes the JS objects of a batch of JSON records. It allocates
// the objects and their field indexes in slabs per batch, never reused
// (JS may keep a record).
type rawBatch struct {
	objs   []rawObject
	fields []rawField
	n      int
}

// reset starts a batch of n records; the slab is allocated when the
// first raw record comes.
func (rb *rawBatch) reset(n int) {
	rb.objs, rb.fields, rb.n = nil, nil, n
}

// newRaw indexes b as a JSON object for JS. ok is false when b's top
// level is not an object (the caller decodes it otherwise).
func (rb *rawBatch) newRaw(rt *goja.Runtime, strs *stringCache, i int, b []byte) (v goja.Value, ok bool, err error) {
	s := jsonscan.SkipSpace(b, 0)
	if s >= len(b) || b[s] != '{' {
		return nil, false, nil
	}
	if rb.objs == nil {
		rb.objs = make([]rawObject, rb.n)
	}
	if len(rb.fields) < 64 {
		rb.fields = make([]rawField, 1024)
	}
	o := &rb.objs[i]
	*o = rawObject{rt: rt, strs: strs, b: b}
	fields, err := indexObject(b, s, rb.fields[:0])
	if err != nil {
		return nil, true, err
	}
	if len(fields) <= len(rb.fields) && len(fields) > 0 && &fields[0] == &rb.fields[0] {
		o.fields = fields[:len(fields):len(fields)]
		rb.fields = rb.fields[len(fields):]
	} else {
		o.fields = fields
	}
	return rt.NewDynamicObject(o), true, nil
}
