package js

import (
	"encoding/json"

	"github.com/runnel-dev/runnel/internal/jsonscan"
	"github.com/runnel-dev/runnel/operators"
)

// processNative runs the batch through the chain's native evaluator (see
// native.go), leaving the outputs in c.outs as the JS driver would. It
// returns false, with no outputs, when the evaluator gave up on a record:
// the caller then runs the batch in goja.
func (c *Chain) processNative(in *operators.Batch) bool {
	c.outs, c.outIdx = c.outs[:0], c.outIdx[:0]
	e := &c.nev
	for i := range in.Records {
		src := &in.Records[i]
		root, ok := e.input(src.Value)
		if !ok || !c.runNative(e, i, src, root) {
			c.truncate(0)
			return false
		}
	}
	return true
}

// input makes the record's value for the evaluator: a JSON object (raw
// bytes) or a Go map.
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
	fields, err := indexObject(b[s:], 0, e.fields[:0])
	if err != nil {
		return nval{}, false
	}
	e.fields = fields
	return nval{k: nObj, o: &nobj{raw: b[s:], fields: fields, index: true}}, true
}

// runNative runs record i through the stages and appends its output.
func (c *Chain) runNative(e *neval, i int, src *operators.Record, root nval) bool {
	v := root
	var key string
	var t int64
	hasKey, hasTime := false, false
	for _, st := range c.native {
		r, ok := st.fn(e, v)
		if !ok {
			return false
		}
		switch st.kind {
		case Map:
			switch r.k {
			case nUndef, nNull:
				return true
			case nArr:
				return false // an array emits each element: goja's
			}
			v = r
		case Filter:
			if !truthy(r) {
				return true
			}
		case Key:
			if key, ok = toKeyNative(r); !ok {
				return false
			}
			hasKey = true
		case EventTime:
			if t, ok = toMsNative(r); !ok {
				return false
			}
			hasTime = true
		}
	}
	out := operators.Record{Key: src.Key, EventTime: src.EventTime, Origin: src.Origin}
	switch {
	case v.k == nObj && v.o == root.o && (!isRawJSON(src.Value) || c.spec.KeepRaw && isRawMessage(src.Value) && !e.dirty):
		out.Value = src.Value // passed through unchanged
	case c.spec.Project != nil && v.k == nObj:
		p, ok := c.projectNative(e, v.o)
		if !ok {
			return false
		}
		out.Value = p
	default:
		out.Value = e.export(v)
	}
	if hasKey {
		out.Key = key
	}
	if hasTime {
		out.EventTime = t
	}
	c.outs = append(c.outs, out)
	c.outIdx = append(c.outIdx, i)
	return true
}

// projectNative is project for a natively evaluated object.
func (c *Chain) projectNative(e *neval, o *nobj) (*Projected, bool) {
	p := c.newProjected()
	for i, f := range p.Names {
		v, ok := e.get(o, f)
		if !ok {
			return nil, false
		}
		p.Values[i] = e.export(v)
	}
	return p, true
}
