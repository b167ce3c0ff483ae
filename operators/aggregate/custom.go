package aggregate

import (
	"errors"
	"math"

	"github.com/dop251/goja"

	"github.com/runnel-dev/runnel/operators/js"
)

// jsAgg is a custom aggregate's functions in one VM.
type jsAgg struct {
	vm                       *js.VM
	typ                      ColumnType
	this                     goja.Value // the object of the Object form
	init, add, merge, result goja.Value
	stringify, parse         goja.Value
}

func newJSAgg(vm *js.VM, s Spec, first int) (*jsAgg, error) {
	rt := vm.Runtime()
	jsonObj := rt.Get("JSON").ToObject(rt)
	a := &jsAgg{vm: vm, typ: s.ColumnType(), this: goja.Undefined(),
		stringify: jsonObj.Get("stringify"), parse: jsonObj.Get("parse")}
	if s.Object != "" {
		// Methods are called with the object as this, so they may share
		// helpers on it.
		o := vm.Func(first).ToObject(rt)
		a.this, a.init, a.add, a.merge = o, o.Get("init"), o.Get("add"), o.Get("merge")
		if _, ok := goja.AssertFunction(o.Get("result")); ok {
			a.result = o.Get("result")
		}
		return a, nil
	}
	a.init, a.add, a.merge, a.result = vm.Func(first), vm.Func(first+1), vm.Func(first+2), vm.Func(first+3)
	return a, nil
}

func (a *jsAgg) newAcc() (*jsAcc, error) {
	v, err := a.vm.CallThis(a.init, a.this)
	if err != nil {
		return nil, err
	}
	return &jsAcc{agg: a, state: v}, nil
}

// jsAcc is one custom accumulator: a JS value living in the task's VM.
// add(acc, record) and merge(acc, other) return the new accumulator, or
// undefined when they updated acc in place.
type jsAcc struct {
	agg   *jsAgg
	state goja.Value
}

func (a *jsAcc) Add(v any) error {
	rt := a.agg.vm.Runtime()
	nv, err := a.agg.vm.CallThis(a.agg.add, a.agg.this, a.state, rt.ToValue(v))
	if err != nil {
		return err
	}
	if !goja.IsUndefined(nv) {
		a.state = nv
	}
	return nil
}

func (a *jsAcc) Merge(o Accumulator) error {
	b, ok := o.(*jsAcc)
	if !ok {
		return mismatch(a, o)
	}
	other := b.state
	if b.agg.vm != a.agg.vm {
		// From another task's VM: move it over as JSON.
		data, err := b.MarshalBinary()
		if err != nil {
			return err
		}
		if other, err = a.agg.vm.Call(a.agg.parse, a.agg.vm.Runtime().ToValue(string(data))); err != nil {
			return err
		}
	}
	nv, err := a.agg.vm.CallThis(a.agg.merge, a.agg.this, a.state, other)
	if err != nil {
		return err
	}
	if !goja.IsUndefined(nv) {
		a.state = nv
	}
	return nil
}

// Result converts result(acc) to the column type: Float64 via Number(),
// Int64 truncated, String as the JS string (objects as JSON). A failing
// result function yields null.
func (a *jsAcc) Result() any {
	v := a.state
	if a.agg.result != nil {
		var err error
		if v, err = a.agg.vm.CallThis(a.agg.result, a.agg.this, a.state); err != nil {
			return nil
		}
	}
	if v == nil || goja.IsUndefined(v) || goja.IsNull(v) {
		return nil
	}
	switch a.agg.typ {
	case Int64:
		f := v.ToFloat()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return int64(f)
	case String:
		if _, isObj := v.(*goja.Object); isObj {
			s, err := a.agg.vm.Call(a.agg.stringify, v)
			if err != nil {
				return nil
			}
			return s.String()
		}
		return v.String()
	}
	f := v.ToFloat()
	if math.IsNaN(f) {
		return nil
	}
	return f
}

// MarshalBinary is JSON.stringify of the accumulator.
func (a *jsAcc) MarshalBinary() ([]byte, error) {
	s, err := a.agg.vm.Call(a.agg.stringify, a.state)
	if err != nil {
		return nil, err
	}
	if goja.IsUndefined(s) {
		return nil, errors.New("accumulator is not JSON-serialisable")
	}
	return []byte(s.String()), nil
}

// UnmarshalBinary is JSON.parse into the accumulator.
func (a *jsAcc) UnmarshalBinary(b []byte) error {
	v, err := a.agg.vm.Call(a.agg.parse, a.agg.vm.Runtime().ToValue(string(b)))
	if err != nil {
		return err
	}
	a.state = v
	return nil
}
