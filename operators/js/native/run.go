package native

import (
	"encoding/json"
	"math"
	"strconv"
	"strings"

	"github.com/runnel-dev/runnel/internal/jsonscan"
)

// Kind is what a stage does with its function's result, as the JS
// bridge's stage kinds (same order).
type Kind uint8

// The stage kinds.
const (
	Map       Kind = iota // the result replaces the record; null or undefined drops it
	Filter                // a truthy result keeps the record
	Key                   // the result is the record's key
	EventTime             // the result is the record's event time
)

// Stage is one stage of a chain: its kind and the JS source of its
// function.
type Stage struct {
	Kind Kind
	Src  string
}

// MaxDepth bounds the nesting of the JSON records the evaluator reads,
// as the JS bridge's decoder does.
const MaxDepth = 64

// Program is a chain's stages compiled for the evaluator; it is immutable
// and shared by all tasks.
type Program struct {
	stages []stage
}

type stage struct {
	kind Kind
	fn   nexpr
}

// Compile returns the evaluator's program for a chain of stages with the
// job's functions block, or nil when any stage is outside the subset (see
// the package doc) or a projected field is one every object inherits.
func Compile(functions string, stages []Stage, project []string) *Program {
	for _, f := range project {
		if protoNames[f] {
			return nil
		}
	}
	env := newNativeEnv(functions)
	p := &Program{stages: make([]stage, len(stages))}
	for i, st := range stages {
		fn, ok := compileFunc(st.Src, env)
		if !ok {
			return nil
		}
		p.stages[i] = stage{kind: st.Kind, fn: fn}
	}
	return p
}

// Evaluator runs Programs in one task; it keeps scratch space between
// records, so it belongs to one goroutine.
type Evaluator struct {
	e    neval
	root nval // the input record
	out  nval // the last output
}

// Result is what a record gave.
type Result struct {
	// Emit: the record produced an output (Export or Project give its
	// value); otherwise a map or filter dropped it.
	Emit bool
	// Same: the output is the input record itself, and Clean that no JS
	// object of its nested values would have been made (so raw JSON
	// bytes still stand for it).
	Same, Clean bool
	// HasKey and HasTime say a Key or EventTime stage set Key or Time.
	HasKey, HasTime bool
	Key             string
	Time            int64
}

// Run evaluates the stages on one record value: a JSON object as raw
// bytes ([]byte or json.RawMessage) or a map[string]any. ok false means
// the evaluator cannot give goja's result for it (the caller runs the
// record's batch in goja).
func (ev *Evaluator) Run(p *Program, value any) (r Result, ok bool) {
	e := &ev.e
	root, ok := e.input(value)
	if !ok {
		return Result{}, false
	}
	ev.root, ev.out = root, nval{}
	v := root
	for _, st := range p.stages {
		res, ok := st.fn(e, v)
		if !ok {
			return Result{}, false
		}
		switch st.kind {
		case Map:
			switch res.k {
			case nUndef, nNull:
				return r, true
			case nArr:
				return Result{}, false // an array emits each element: goja's
			}
			v = res
		case Filter:
			if !truthy(res) {
				return r, true
			}
		case Key:
			if r.Key, ok = toKey(res); !ok {
				return Result{}, false
			}
			r.HasKey = true
		case EventTime:
			if r.Time, ok = toMs(res); !ok {
				return Result{}, false
			}
			r.HasTime = true
		}
	}
	ev.out = v
	r.Emit = true
	r.Same = v.k == nObj && v.o == root.o
	r.Clean = !e.dirty
	return r, true
}

// input makes the record's value for the evaluator.
func (e *neval) input(v any) (nval, bool) {
	e.dirty = false
	var b []byte
	switch x := v.(type) {
	case json.RawMessage:
		b = x
	case []byte:
		b = x
	case map[string]any:
		if x == nil {
			return nval{}, false
		}
		return nval{k: nObj, o: &nobj{gomap: x}}, true
	default:
		return nval{}, false
	}
	s := jsonscan.SkipSpace(b, 0)
	if s >= len(b) || b[s] != '{' {
		return nval{}, false
	}
	fields, err := indexObject(b[s:], e.fields[:0])
	if err != nil {
		return nval{}, false
	}
	e.fields = fields
	return nval{k: nObj, o: &nobj{raw: b[s:], fields: fields, index: true}}, true
}

// IsObject reports whether the last output is an object (not an array).
func (ev *Evaluator) IsObject() bool { return ev.out.k == nObj }

// Export returns the last output as the JS bridge exports a JS value:
// objects as map[string]any, integral numbers as int64.
func (ev *Evaluator) Export() any { return ev.e.export(ev.out) }

// Project sets vals[i] to the exported field names[i] of the last output,
// an object; ok false means the evaluator cannot read one as goja would.
func (ev *Evaluator) Project(names []string, vals []any) bool {
	for i, f := range names {
		v, ok := ev.e.get(ev.out.o, f)
		if !ok {
			return false
		}
		vals[i] = ev.e.export(v)
	}
	return true
}

// toKey is the JS bridge's key normalisation where it needs no number
// formatting beyond integers.
func toKey(v nval) (string, bool) {
	switch v.k {
	case nStr:
		return v.s, true
	case nBool:
		return strconv.FormatBool(v.b), true
	case nNum:
		if v.f == math.Trunc(v.f) && math.Abs(v.f) <= 1<<53 {
			return strconv.FormatInt(int64(v.f), 10), true
		}
	}
	return "", false
}

// toMs is the JS bridge's toMs for numbers and digit strings.
func toMs(v nval) (int64, bool) {
	f := v.f
	switch v.k {
	case nNum:
	case nStr:
		s := v.s
		digits := strings.TrimPrefix(s, "-")
		if len(digits) == 0 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, false
		}
		f = float64(n)
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(math.Floor(f)), true
}
