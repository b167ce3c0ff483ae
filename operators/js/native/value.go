package native

import (
	"math"

	"github.com/runnel-dev/runnel/internal/jsonscan"
)

// nkind is the type of a natively evaluated value.
type nkind uint8

const (
	nUndef nkind = iota
	nNull
	nBool
	nNum
	nStr
	nObj
	nArr
)

// nval is a JS value in the native evaluator.
type nval struct {
	k nkind
	b bool
	f float64
	s string
	o *nobj
}

// nobj is an object or array value: a JSON object or array of the record's
// bytes, a Go map or slice of a record that is not raw JSON, or an object
// a function built.
type nobj struct {
	raw    []byte // a JSON object or array, exactly
	fields []jsonscan.Field
	index  bool // fields holds raw's top-level fields
	gomap  map[string]any
	goarr  []any
	lit    []nprop
	idx    map[string]int // name → index in lit, for wide literals
	isLit  bool
}

type nprop struct {
	name string
	v    nval
}

// nexpr evaluates an expression with the function's parameter bound to p;
// ok false means the evaluator cannot give the result goja would.
type nexpr func(e *neval, p nval) (v nval, ok bool)

// neval is the per-task state of the native evaluator.
type neval struct {
	// dirty: the record's nested objects or arrays were read; goja would
	// have made JS objects of them, so the record's bytes no longer stand
	// for its JS object (the JS bridge's raw objects).
	dirty bool
	// scratch for the record's top-level fields
	fields []jsonscan.Field
	// the running function's constants
	locals []nval
}

// protoNames are properties every object inherits from Object.prototype:
// reading one that the object lacks gives a function, which the evaluator
// does not model.
var protoNames = map[string]bool{
	"constructor": true, "__proto__": true, "hasOwnProperty": true, "isPrototypeOf": true,
	"propertyIsEnumerable": true, "toString": true, "valueOf": true, "toLocaleString": true,
	"__defineGetter__": true, "__defineSetter__": true, "__lookupGetter__": true, "__lookupSetter__": true,
}

// set defines property name of a literal object; a repeated name keeps its
// place and takes the new value, as in JS.
func (o *nobj) set(name string, v nval) {
	if o.idx != nil {
		if i, ok := o.idx[name]; ok {
			o.lit[i].v = v
			return
		}
		o.idx[name] = len(o.lit)
		o.lit = append(o.lit, nprop{name, v})
		return
	}
	for i := range o.lit {
		if o.lit[i].name == name {
			o.lit[i].v = v
			return
		}
	}
	o.lit = append(o.lit, nprop{name, v})
	if len(o.lit) >= 16 {
		// Wide objects (a spread record) get an index, so that building
		// one stays linear in its fields.
		o.idx = make(map[string]int, 2*len(o.lit))
		for i, p := range o.lit {
			o.idx[p.name] = i
		}
	}
}

// lookup finds property name of a literal object.
func (o *nobj) lookup(name string) (nval, bool) {
	if o.idx != nil {
		i, ok := o.idx[name]
		if !ok {
			return nval{}, false
		}
		return o.lit[i].v, true
	}
	for i := range o.lit {
		if o.lit[i].name == name {
			return o.lit[i].v, true
		}
	}
	return nval{}, false
}

// spread copies the own properties of src into the literal o.
func (e *neval) spread(o, src *nobj) bool {
	switch {
	case src.isLit:
		for _, p := range src.lit {
			o.set(p.name, p.v)
		}
	case src.gomap != nil:
		for k := range src.gomap {
			v, ok := e.get(src, k)
			if !ok {
				return false
			}
			o.set(k, v)
		}
	case src.raw != nil:
		if !e.indexed(src) {
			return false
		}
		// From the last field back, skipping keys already seen: a
		// repeated key's last value counts, as in JSON.parse, and only
		// that one is read (as goja reads it).
		seen := nobj{}
		for i := len(src.fields) - 1; i >= 0; i-- {
			f := &src.fields[i]
			k := f.Key(src.raw)
			if _, dup := seen.lookup(k); dup {
				continue
			}
			seen.set(k, nval{})
			v, ok := e.value(src, f)
			if !ok {
				return false
			}
			o.set(k, v)
		}
	default:
		return false
	}
	return true
}

// toNumber is JS's ToNumber for the values it is simple for: strings
// (which need JS's number grammar) and objects (ToPrimitive) are not.
func toNumber(v nval) (float64, bool) {
	switch v.k {
	case nNum:
		return v.f, true
	case nUndef:
		return math.NaN(), true
	case nNull:
		return 0, true
	case nBool:
		if v.b {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func truthy(v nval) bool {
	switch v.k {
	case nUndef, nNull:
		return false
	case nBool:
		return v.b
	case nNum:
		return v.f != 0 && !math.IsNaN(v.f)
	case nStr:
		return v.s != ""
	}
	return true
}

// get reads property name of o.
func (e *neval) get(o *nobj, name string) (nval, bool) {
	switch {
	case o.isLit:
		if v, ok := o.lookup(name); ok {
			return v, true
		}
	case o.gomap != nil:
		if x, ok := o.gomap[name]; ok {
			return e.fromGo(x)
		}
	case o.raw != nil:
		if !e.indexed(o) {
			return nval{}, false
		}
		if f := find(o.raw, o.fields, name); f != nil {
			return e.value(o, f)
		}
	default:
		return nval{}, false
	}
	if protoNames[name] {
		return nval{}, false
	}
	return nval{k: nUndef}, true
}

// indexed indexes a raw object's fields on first use (validated when the
// record was).
func (e *neval) indexed(o *nobj) bool {
	if o.index {
		return true
	}
	fields, err := indexObject(o.raw, nil)
	if err != nil {
		return false
	}
	o.fields, o.index = fields, true
	return true
}

// indexObject validates the JSON object b and appends its top-level
// fields to fields.
func indexObject(b []byte, fields []jsonscan.Field) ([]jsonscan.Field, error) {
	it := jsonscan.Fields(b, 0, MaxDepth-1)
	for it.Next() {
		fields = append(fields, it.Field())
	}
	return fields, it.Err()
}

// find returns the field with key k (the last one when JSON repeats a key,
// as JSON.parse keeps the last), or nil.
func find(b []byte, fields []jsonscan.Field, k string) *jsonscan.Field {
	for i := len(fields) - 1; i >= 0; i-- {
		if f := &fields[i]; (f.KE-f.KS == int32(len(k)) || f.Escaped) && f.KeyIs(b, k) {
			return f
		}
	}
	return nil
}

// value decodes a raw field's value.
func (e *neval) value(o *nobj, f *jsonscan.Field) (nval, bool) {
	b := o.raw[f.VS:f.VE]
	switch b[0] {
	case '{':
		e.dirty = true
		return nval{k: nObj, o: &nobj{raw: b}}, true
	case '[':
		e.dirty = true
		return nval{k: nArr, o: &nobj{raw: b}}, true
	}
	x, _ := jsonscan.DecodeJS(o.raw[:f.VE], int(f.VS))
	return e.fromGo(x)
}

// fromGo converts a value of a Go record (or a decoded JSON primitive) as
// goja's ToValue would see it.
func (e *neval) fromGo(x any) (nval, bool) {
	switch y := x.(type) {
	case nil:
		return nval{k: nNull}, true
	case bool:
		return nval{k: nBool, b: y}, true
	case string:
		return nval{k: nStr, s: y}, true
	case float64:
		return nval{k: nNum, f: y}, true
	case float32:
		return nval{k: nNum, f: float64(y)}, true
	case int64:
		return intVal(y)
	case int:
		return intVal(int64(y))
	case int32:
		return nval{k: nNum, f: float64(y)}, true
	case map[string]any:
		if y == nil {
			return nval{}, false
		}
		e.dirty = true
		return nval{k: nObj, o: &nobj{gomap: y}}, true
	case []any:
		if y == nil {
			return nval{}, false
		}
		e.dirty = true
		return nval{k: nArr, o: &nobj{goarr: y}}, true
	}
	return nval{}, false
}

// intVal is an integer that a JS number holds exactly.
func intVal(n int64) (nval, bool) {
	if n > 1<<53 || n < -(1<<53) {
		return nval{}, false
	}
	return nval{k: nNum, f: float64(n)}, true
}

// export converts a value as exportValue converts its JS counterpart.
func (e *neval) export(v nval) any {
	switch v.k {
	case nBool:
		return v.b
	case nNum:
		if f := v.f; (f != 0 || !math.Signbit(f)) && f == math.Trunc(f) && f >= -(1<<53) && f <= 1<<53 {
			return int64(f)
		}
		return v.f
	case nStr:
		return v.s
	case nObj, nArr:
		o := v.o
		switch {
		case o.isLit:
			m := make(map[string]any, len(o.lit))
			for _, p := range o.lit {
				m[p.name] = e.export(p.v)
			}
			return m
		case o.gomap != nil:
			return o.gomap
		case o.goarr != nil:
			return o.goarr
		case o.raw != nil:
			x, _ := jsonscan.DecodeJS(o.raw, 0)
			return x
		}
	}
	return nil
}
