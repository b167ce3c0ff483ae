package js

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/dop251/goja"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js/native"
)

// Kind is what a stage does with its function's result.
type Kind int

const (
	// Map: an object replaces the record, null/undefined drops it, an
	// array emits each element.
	Map Kind = iota
	// Filter keeps the record when the result is truthy.
	Filter
	// Key sets Record.Key to the result (string, number or boolean; other
	// values are an error).
	Key
	// EventTime sets Record.EventTime to the result: epoch milliseconds,
	// an RFC 3339 string or a Date.
	EventTime
)

var kindNames = [...]string{"map", "filter", "key", "event_time"}

func (k Kind) String() string { return kindNames[k] }

// Stage is one JS step of a chain.
type Stage struct {
	// Operator is the operator id from the job file (or "source" for the
	// source's event_time extractor).
	Operator string
	Kind     Kind
	// Src is the JS expression evaluating to a function of one record.
	Src     string
	OnError OnError
}

// ChainSpec is a run of consecutive per-record JS stages that execute as
// one fused operator, one JS call per batch.
type ChainSpec struct {
	Job       string
	Functions string
	Stages    []Stage
	Options   Options
	// Project, if set, lists the only top-level fields the chain's
	// consumer reads (a window's builtin aggregates): an object output's
	// Value is then a *Projected with just those fields, which saves
	// exporting the rest. Other outputs are exported whole.
	Project []string
	// KeepRaw passes a raw JSON record (a json.RawMessage) that the chain
	// outputs unchanged — and whose JS object was not written to —
	// on as the same bytes instead of exporting it. For a chain whose
	// consumers decode raw JSON themselves (an event-time chain ahead of
	// the JS chains reading a RawJSON source).
	KeepRaw bool
	// Interpreted turns off the native evaluation of simple functions
	// (operators/js/native): every batch runs in goja. For comparisons and tests.
	Interpreted bool
	// OnSkip, when set, is told of each record a stage with on_error skip
	// dropped (besides its Skipped count), so that the skip is seen: the
	// job's error history lists it. Called on the task's goroutine.
	OnSkip func(Skipped)
}

// Skipped is a record an on_error: skip stage dropped.
type Skipped struct {
	Operator string
	Origin   string
	// Record is the record as the stage got it (raw JSON stays JSON).
	Record any
	// Err is the failure (an *ExceptionError, ErrTimeout…).
	Err error
}

// Validate checks the spec without compiling it.
func (s ChainSpec) Validate() error {
	if len(s.Stages) == 0 {
		return fmt.Errorf("js: chain of job %q has no stages", s.Job)
	}
	for i, st := range s.Stages {
		if st.Operator == "" {
			return fmt.Errorf("js: chain stage %d has no operator id", i)
		}
		if st.Kind < Map || st.Kind > EventTime {
			return fmt.Errorf("js: operator %q: unknown stage kind %d", st.Operator, st.Kind)
		}
		if st.OnError.Mode == DeadLetter && st.OnError.Stream == "" {
			return fmt.Errorf("js: operator %q: on_error dead_letter needs a stream", st.Operator)
		}
	}
	return nil
}

// ChainProgram is a compiled chain; call New once per task.
type ChainProgram struct {
	spec ChainSpec
	prog *Program
	// native evaluates the stages in Go when they are all simple enough
	// (operators/js/native); nil otherwise.
	native *native.Program
}

// CompileChain validates and compiles spec once for all tasks.
func CompileChain(spec ChainSpec) (*ChainProgram, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	snips := make([]Snippet, len(spec.Stages))
	for i, st := range spec.Stages {
		snips[i] = Snippet{Name: st.Operator + "." + st.Kind.String(), Src: st.Src}
	}
	prog, err := Compile(spec.Functions, snips...)
	if err != nil {
		return nil, err
	}
	cp := &ChainProgram{spec: spec, prog: prog}
	if !spec.Interpreted {
		cp.native = compileNative(spec)
	}
	return cp, nil
}

// Native reports whether the chain's functions also run as Go (see
// operators/js/native).
func (cp *ChainProgram) Native() bool { return cp.native != nil }

// StageStats counts one stage's failures.
type StageStats struct {
	Operator     string
	Errors       int64 // records that failed, whatever the policy
	Skipped      int64
	DeadLettered int64
}

// Chain runs a ChainProgram in one task. It implements operators.Operator
// and operators.SideOutputs (one dead-letter output per dead_letter stage).
type Chain struct {
	spec   ChainSpec
	vm     *VM
	native *native.Program
	nev    native.Evaluator
	// nativeBatches and gojaBatches count the batches each evaluated;
	// nativeMisses is the batches in a row the native evaluator gave up on.
	nativeBatches, gojaBatches atomic.Int64
	nativeMisses               int

	driver goja.Callable
	// state has the driver's where() (the record index and stage it is
	// at, for after an interrupt) and reset(from).
	state        *goja.Object
	where, reset goja.Callable
	side         map[string]operators.Emitter
	in           atomic.Int64
	out          atomic.Int64
	errs         []stageCounters

	// per-call scratch, filled by the emit and fail callbacks
	outs   []operators.Record
	outIdx []int        // input index of each of outs
	raw    RawSink      // if set, outputs go here unexported
	rawVal []goja.Value // with raw: the JS value of each of outs
	batch  *operators.Batch
	inVals []any // the JS values handed in for batch
	fails  []failure
	objs   rawBatch // the batch's raw JSON objects
	// slabs of Projected outputs and their values
	projs    []Projected
	projVals []any
	strs     stringCache // short string values decoded from raw JSON
	gow      goWrapper   // wraps Go map and slice records (gomap.go)
}

type stageCounters struct{ errors, skipped, dead atomic.Int64 }

type failure struct {
	stage, index int
	err          error
}

// New makes the chain's VM for one task.
func (cp *ChainProgram) New() (*Chain, error) {
	vm, err := cp.prog.NewVM(cp.spec.Options)
	if err != nil {
		return nil, fmt.Errorf("job %q: %w", cp.spec.Job, err)
	}
	c := &Chain{spec: cp.spec, vm: vm, native: cp.native, side: map[string]operators.Emitter{}, errs: make([]stageCounters, len(cp.spec.Stages))}
	rt := vm.rt
	fns := make([]any, len(vm.fns))
	kinds := make([]Kind, len(vm.fns))
	for i, f := range vm.fns {
		fns[i], kinds[i] = f, cp.spec.Stages[i].Kind
	}
	c.state = rt.NewObject()
	drv, err := vm.callFactory(driverSource(kinds), rt.NewArray(fns...), c.state,
		rt.ToValue(c.emit), rt.ToValue(c.fail))
	if err != nil {
		return nil, err
	}
	c.driver, _ = goja.AssertFunction(drv)
	c.where, _ = goja.AssertFunction(c.state.Get("where"))
	c.reset, _ = goja.AssertFunction(c.state.Get("reset"))
	return c, nil
}

// driverPrelude holds the helpers of the generated driver. Key and
// event-time results are normalised in JS so that a bad value is an
// exception of that stage.
const driverPrelude = `(function (fns, st, emit, fail) {
	var isArray = Array.isArray, parse = Date.parse, stringify = JSON.stringify, floor = Math.floor;
	var cur = 0, stg = 0; // the record and stage running
	st.where = function () { return [cur, stg]; };
	st.reset = function (from) { cur = from; stg = 0; };
	function toKey(k) {
		switch (typeof k) {
		case "string": return k;
		case "number": case "boolean": case "bigint": return String(k);
		}
		throw new TypeError("key must be a string or number, got " + (k === null ? "null" : typeof k));
	}
	function toMs(t) {
		var ms = NaN;
		if (typeof t === "number") ms = t;
		else if (typeof t === "string") ms = /^-?[0-9]+$/.test(t) ? Number(t) : parse(t);
		else if (t instanceof Date) ms = t.getTime();
		if (ms !== ms || ms === Infinity || ms === -Infinity)
			throw new TypeError("event time must be epoch ms or an RFC 3339 string, got " + stringify(t));
		return floor(ms);
	}
`

// driverSource generates the batch driver for a chain: one JS function
// per stage, each calling the next, so a batch runs in a single call with
// no per-stage dispatch. Stage n+1 of n stages emits to Go.
func driverSource(kinds []Kind) string {
	var b strings.Builder
	b.WriteString(driverPrelude)
	n := len(kinds)
	for s, k := range kinds {
		fmt.Fprintf(&b, "\tvar f%d = fns[%d];\n", s, s)
		fmt.Fprintf(&b, "\tfunction s%d(v, i, k, t) {\n\t\tstg = %d;\n\t\tvar r;\n\t\ttry { ", s, s)
		switch k {
		case Key:
			fmt.Fprintf(&b, "r = toKey(f%d(v));", s)
		case EventTime:
			fmt.Fprintf(&b, "r = toMs(f%d(v));", s)
		default:
			fmt.Fprintf(&b, "r = f%d(v);", s)
		}
		fmt.Fprintf(&b, " } catch (e) { fail(%d, i, e); return false; }\n", s)
		next := s + 1
		switch k {
		case Map:
			fmt.Fprintf(&b, "\t\tif (r === null || r === undefined) return true;\n"+
				"\t\tif (isArray(r)) {\n\t\t\tfor (var j = 0; j < r.length; j++) if (!s%d(r[j], i, k, t)) return false;\n\t\t\treturn true;\n\t\t}\n"+
				"\t\treturn s%d(r, i, k, t);\n", next, next)
		case Filter:
			fmt.Fprintf(&b, "\t\treturn r ? s%d(v, i, k, t) : true;\n", next)
		case Key:
			fmt.Fprintf(&b, "\t\treturn s%d(v, i, r, t);\n", next)
		case EventTime:
			fmt.Fprintf(&b, "\t\treturn s%d(v, i, k, r);\n", next)
		}
		b.WriteString("\t}\n")
	}
	fmt.Fprintf(&b, "\tfunction s%d(v, i, k, t) { return emit(v, i, k, t); }\n", n)
	// The batch loop runs the stages inline, saving a JS call per stage
	// and record; only the elements of an array a map returned go through
	// the stage functions above.
	b.WriteString("\treturn function (inp, from) {\n\t\tvar v, k, t, r;\n" +
		"\t\tfor (var i = from; i < inp.length; i++) {\n\t\t\tv = inp[i];\n\t\t\tif (v === undefined) continue;\n" +
		"\t\t\tcur = i; k = undefined; t = undefined;\n")
	for s, kind := range kinds {
		fmt.Fprintf(&b, "\t\t\tstg = %d;\n\t\t\ttry { ", s)
		switch kind {
		case Key:
			// A string key, the usual, skips the toKey call.
			fmt.Fprintf(&b, "k = f%d(v); if (typeof k !== \"string\") k = toKey(k);", s)
		case EventTime:
			fmt.Fprintf(&b, "t = toMs(f%d(v));", s)
		default:
			fmt.Fprintf(&b, "r = f%d(v);", s)
		}
		fmt.Fprintf(&b, " } catch (e) { if (fail(%d, i, e)) return; continue; }\n", s)
		switch kind {
		case Map:
			fmt.Fprintf(&b, "\t\t\tif (r === null || r === undefined) continue;\n"+
				"\t\t\tif (isArray(r)) { for (var j = 0; j < r.length; j++) if (!s%d(r[j], i, k, t)) break; continue; }\n"+
				"\t\t\tv = r;\n", s+1)
		case Filter:
			b.WriteString("\t\t\tif (!r) continue;\n")
		}
	}
	b.WriteString("\t\t\temit(v, i, k, t);\n\t\t}\n\t};\n})")
	return b.String()
}

// maxNativeMisses is how many batches in a row the native evaluator may
// give up on before a chain runs only in goja.
const maxNativeMisses = 8

// emit is called from JS for each output value.
func (c *Chain) emit(call goja.FunctionCall) goja.Value {
	i := int(call.Argument(1).ToInteger())
	src := &c.batch.Records[i]
	r := operators.Record{Key: src.Key, EventTime: src.EventTime, Origin: src.Origin}
	if c.raw != nil {
		c.rawVal = append(c.rawVal, call.Argument(0))
	} else if o, ok := call.Argument(0).(*goja.Object); ok && any(o) == c.inVals[i] && (!isRawJSON(src.Value) || c.spec.KeepRaw && isRawMessage(src.Value) && pristine(o)) {
		r.Value = src.Value // passed through unchanged: no copy
	} else if c.spec.Project != nil {
		r.Value = c.project(call.Argument(0))
	} else {
		r.Value = exportValue(call.Argument(0))
	}
	if k := call.Argument(2); !goja.IsUndefined(k) {
		r.Key = k.String()
	}
	if t := call.Argument(3); !goja.IsUndefined(t) {
		r.EventTime = t.ToInteger()
	}
	if max := c.vm.opts.MaxOutputs; len(c.outIdx) >= max && c.outIdx[len(c.outIdx)-max] == i {
		c.truncate(i)
		c.fails = append(c.fails, failure{stage: c.fanOutStage(), index: i,
			err: fmt.Errorf("%w: more than %d output records for one input record", ErrFanOut, max)})
		return c.vm.rt.ToValue(false)
	}
	c.outs = append(c.outs, r)
	c.outIdx = append(c.outIdx, i)
	return c.vm.rt.ToValue(true)
}

// fanOutStage is the stage blamed for too many outputs of one record: the
// last map, the only kind that returns several.
func (c *Chain) fanOutStage() int {
	for s := len(c.spec.Stages) - 1; s >= 0; s-- {
		if c.spec.Stages[s].Kind == Map {
			return s
		}
	}
	return 0
}

// fail is called from JS when a stage throws. The failed record's earlier
// outputs (from an array-returning map) are withdrawn. It returns true
// when the stage's policy fails the job, and the batch loop then stops:
// the records after this one would run for nothing.
func (c *Chain) fail(call goja.FunctionCall) goja.Value {
	i := int(call.Argument(1).ToInteger())
	stage := int(call.Argument(0).ToInteger())
	c.truncate(i)
	c.fails = append(c.fails, failure{
		stage: stage,
		index: i,
		err:   exceptionOf(call.Argument(2)),
	})
	return c.vm.rt.ToValue(c.spec.Stages[stage].OnError.Mode == Fail)
}

// truncate drops the outputs of input records from index i on.
func (c *Chain) truncate(i int) {
	n := len(c.outs)
	for n > 0 && c.outIdx[n-1] >= i {
		n--
	}
	clear(c.outs[n:])
	c.outs, c.outIdx = c.outs[:n], c.outIdx[:n]
	if c.raw != nil {
		clear(c.rawVal[n:])
		c.rawVal = c.rawVal[:n]
	}
}

// exceptionOf is the error of an exception user code threw: its message
// and where in the job's script it was thrown, without the JS engine's
// stack.
func exceptionOf(v goja.Value) error {
	e := &ExceptionError{Message: v.String()}
	if o, ok := v.(*goja.Object); ok {
		if s := o.Get("stack"); s != nil && !goja.IsUndefined(s) {
			e.Where = scriptPlace(s.String())
		}
	}
	return e
}

// Process runs the batch through every stage in one JS call (more than one
// if a record overran its time budget).
func (c *Chain) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	n := len(in.Records)
	if n == 0 {
		return nil
	}
	c.in.Add(int64(n))
	if c.native != nil && c.raw == nil {
		c.batch = in
		ok := c.processNative(in)
		c.batch = nil
		if ok {
			c.nativeBatches.Add(1)
			c.nativeMisses = 0
			c.deliver(in, out)
			return nil
		}
		// A chain whose records keep falling outside what the evaluator
		// models stops trying: each attempt is wasted work.
		if c.nativeMisses++; c.nativeMisses >= maxNativeMisses {
			c.native = nil
		}
	}
	c.gojaBatches.Add(1)
	inp, err := c.inputs(in)
	if err != nil {
		return err
	}
	c.batch, c.outs, c.outIdx, c.fails, c.rawVal = in, c.outs[:0], c.outIdx[:0], c.fails[:0], c.rawVal[:0]
	defer func() {
		c.batch = nil
		clear(c.inVals)
	}()
	if err := c.drive(ctx, inp, n); err != nil {
		return err
	}
	for _, f := range c.fails {
		if err := c.handle(f.stage, &in.Records[f.index], f.err); err != nil {
			return err
		}
	}
	c.deliver(in, out)
	return nil
}

// inputs converts the batch's values for JS. A value that cannot be
// converted fails the first stage and is left undefined (skipped), except
// a json.RawMessage that is not JSON, which is an error.
func (c *Chain) inputs(in *operators.Batch) (goja.Value, error) {
	vals := c.inVals[:0]
	c.objs.reset(len(in.Records))
	for i := range in.Records {
		v, err := c.toJS(i, in.Records[i].Value)
		if _, fromSource := in.Records[i].Value.(json.RawMessage); err != nil && fromSource {
			// Undecoded by a RawJSON source: malformed is the source's
			// error, as it is when the source decodes. It fails the
			// chain's task, so its first stage counts it.
			c.errs[0].errors.Add(1)
			return nil, fmt.Errorf("job %q: read record %s: %w", c.spec.Job, in.Records[i].Origin, err)
		}
		if err != nil {
			if perr := c.handle(0, &in.Records[i], err); perr != nil {
				return nil, perr
			}
			v = goja.Undefined()
		}
		vals = append(vals, v)
	}
	c.inVals = vals
	return c.vm.rt.NewArray(vals...), nil
}

// maxResumes is how often a record is stopped on heap growth that turns
// out to be garbage before it runs without being stopped for it.
const maxResumes = 3

// drive runs the driver over records [0, n), resuming after interrupts:
// a record interrupted before it had a whole budget to itself is run
// again; one that used it all, overflowed the stack or the memory limit
// fails.
func (c *Chain) drive(ctx context.Context, inp goja.Value, n int) error {
	rt := c.vm.rt
	garbage, resumes := false, 0
	for from := 0; from < n; {
		if err := ctx.Err(); err != nil {
			return err
		}
		// An interrupt before the driver's first record must not read a
		// stale position from an earlier call.
		if _, err := c.reset(goja.Undefined(), rt.ToValue(from)); err != nil {
			return fmt.Errorf("job %q: js chain: %w", c.spec.Job, err)
		}
		_, err := c.vm.runWatched(ctx, !garbage, func() (goja.Value, error) {
			return c.driver(goja.Undefined(), inp, rt.ToValue(from))
		})
		if err == nil {
			return nil
		}
		w, werr := c.where(goja.Undefined())
		if werr != nil {
			return fmt.Errorf("job %q: js chain: %w", c.spec.Job, werr)
		}
		pos := w.(*goja.Object)
		i := int(pos.Get("0").ToInteger())
		stage := int(pos.Get("1").ToInteger())
		c.truncate(i) // drop what the interrupted record had emitted
		switch {
		case err == errResume:
			// A record stopped again and again on garbage it makes
			// itself runs on with the growth confirmed while it runs.
			if i == from {
				resumes++
			} else {
				resumes = 0
			}
			garbage = resumes >= maxResumes
			from = i
			continue
		case err == ErrTimeout && i > from:
			from = i
			continue
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, ErrRegex):
		case err != ErrTimeout && err != ErrMemory && err != ErrStack:
			return fmt.Errorf("job %q: js chain: %w", c.spec.Job, err)
		}
		c.fails = append(c.fails, failure{stage: stage, index: i, err: err})
		if c.spec.Stages[stage].OnError.Mode == Fail {
			// The job fails on this record: running the rest of the batch
			// would only let a runaway (a global doubled per record) grow.
			return nil
		}
		if err == ErrMemory {
			// The record's growth may be kept (in a global) as well as
			// failed: measure now rather than after the next stride.
			if rerr := c.vm.checkRetainedNow(); rerr != nil {
				return fmt.Errorf("job %q: js chain: %w", c.spec.Job, rerr)
			}
		}
		from = i + 1
	}
	return nil
}

// deliver hands the batch's outputs to the raw sink or the emitter.
func (c *Chain) deliver(in *operators.Batch, out operators.Emitter) {
	if c.raw != nil {
		for j := range c.outs {
			c.raw(c.rawVal[j], &c.outs[j], &in.Records[c.outIdx[j]])
		}
		clear(c.rawVal)
		c.rawVal = c.rawVal[:0]
	} else {
		for _, r := range c.outs {
			out.Emit(r)
		}
	}
	c.out.Add(int64(len(c.outs)))
	clear(c.outs)
	c.outs = c.outs[:0]
}

// RawSink receives a chain's outputs as JS values instead of exported Go
// values, for consumers that read only a few fields (a window combiner).
// out carries the output's Key, EventTime and Origin (its Value is nil);
// src is the input record it came from. It is called at the end of
// Process, in the chain's goroutine; v may be read (Object.Get, Export)
// only until Process returns, and no JS may be run with it.
type RawSink func(v goja.Value, out, src *operators.Record)

// SetRawSink sends all further outputs to sink; Process then emits nothing
// to its Emitter. Dead letters still go to their side outputs.
func (c *Chain) SetRawSink(sink RawSink) { c.raw = sink }

// Stats returns records in and out of the chain and per-stage failures.
func (c *Chain) Stats() (in, out int64, stages []StageStats) {
	for i, st := range c.spec.Stages {
		stages = append(stages, StageStats{Operator: st.Operator, Errors: c.errs[i].errors.Load(),
			Skipped: c.errs[i].skipped.Load(), DeadLettered: c.errs[i].dead.Load()})
	}
	return c.in.Load(), c.out.Load(), stages
}

// Batches returns how many batches the native evaluator of simple
// functions ran (operators/js/native) and how many goja ran.
func (c *Chain) Batches() (native, goja int64) {
	return c.nativeBatches.Load(), c.gojaBatches.Load()
}

// Close releases the VM.
func (c *Chain) Close() error {
	if c.vm != nil {
		c.vm.Close()
		c.vm = nil
	}
	return nil
}
