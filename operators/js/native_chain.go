package js

import (
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js/native"
)

// compileNative compiles the chain for the native evaluator
// (operators/js/native), or returns nil when a stage is outside its
// subset.
func compileNative(spec ChainSpec) *native.Program {
	stages := make([]native.Stage, len(spec.Stages))
	for i, st := range spec.Stages {
		stages[i] = native.Stage{Kind: native.Kind(st.Kind), Src: st.Src}
	}
	return native.Compile(spec.Functions, stages, spec.Project)
}

// processNative runs the batch through the chain's native evaluator,
// leaving the outputs in c.outs as the JS driver would. It returns false,
// with no outputs, when the evaluator gave up on a record: the caller then
// runs the batch in goja.
func (c *Chain) processNative(in *operators.Batch) bool {
	c.outs, c.outIdx = c.outs[:0], c.outIdx[:0]
	for i := range in.Records {
		if !c.runNative(i, &in.Records[i]) {
			c.truncate(0)
			return false
		}
	}
	return true
}

// runNative runs record i through the stages and appends its output.
func (c *Chain) runNative(i int, src *operators.Record) bool {
	ev := &c.nev
	r, ok := ev.Run(c.native, src.Value)
	if !ok {
		return false
	}
	if !r.Emit {
		return true
	}
	out := operators.Record{Key: src.Key, EventTime: src.EventTime, Origin: src.Origin}
	switch {
	case r.Same && (!isRawJSON(src.Value) || c.spec.KeepRaw && isRawMessage(src.Value) && r.Clean):
		out.Value = src.Value // passed through unchanged
	case c.spec.Project != nil && ev.IsObject():
		p := c.newProjected()
		if !ev.Project(p.Names, p.Values) {
			return false
		}
		out.Value = p
	default:
		out.Value = ev.Export()
	}
	if r.HasKey {
		out.Key = r.Key
	}
	if r.HasTime {
		out.EventTime = r.Time
	}
	c.outs = append(c.outs, out)
	c.outIdx = append(c.outIdx, i)
	return true
}
