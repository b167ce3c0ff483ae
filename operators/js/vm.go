package js

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"time"

	"github.com/dop251/goja"
)

// Options bound what one call into user JavaScript may use.
type Options struct {
	// Budget is the time one call may take (default 100ms). A batch call
	// is interrupted when a single record's work exceeds it; see doc.go.
	Budget time.Duration
	// MaxCallStack caps the JS call stack depth (default 1000 frames).
	MaxCallStack int
	// MaxStringLen caps, in characters or elements, what one native
	// builtin may build (repeat, padStart/padEnd, replace/replaceAll,
	// concat, join, JSON.stringify, String.raw, Array(n), fill, flat) and
	// the array lengths the iterating Array methods walk (default 16 Mi).
	MaxStringLen int
	// MaxHeapGrowth interrupts a call when the process heap has grown by
	// more than this many bytes since the call began and a GC confirms it
	// (default 64 MiB).
	MaxHeapGrowth uint64
	// MaxOutputs caps the records a map may return for one input record
	// (an array); more fail that record (default DefaultMaxOutputs).
	MaxOutputs int
	// MaxRetained caps the memory the VM's JavaScript values hold between
	// calls beyond what they held once the VM was set up — globals, and
	// what closures and accumulators keep — so that a value grown a
	// little in every call, each under MaxHeapGrowth, is stopped too
	// (default DefaultMaxRetained). Past it a call fails with ErrRetained.
	MaxRetained uint64
}

// DefaultMaxRetained is the default of Options.MaxRetained.
const DefaultMaxRetained = 256 << 20

// DefaultMaxOutputs is the default of Options.MaxOutputs.
const DefaultMaxOutputs = 10_000

// DefaultBudget is the default time budget of one call.
const DefaultBudget = 100 * time.Millisecond

func (o Options) withDefaults() Options {
	if o.Budget <= 0 {
		o.Budget = DefaultBudget
	}
	if o.MaxCallStack <= 0 {
		o.MaxCallStack = 1000
	}
	if o.MaxStringLen <= 0 {
		o.MaxStringLen = 16 << 20
	}
	if o.MaxOutputs <= 0 {
		o.MaxOutputs = DefaultMaxOutputs
	}
	if o.MaxHeapGrowth == 0 {
		o.MaxHeapGrowth = 64 << 20
	}
	if o.MaxRetained == 0 {
		o.MaxRetained = DefaultMaxRetained
	}
	return o
}

// Sentinel causes of an interrupted call, matched with errors.Is.
var (
	ErrTimeout = errors.New("js: time budget exceeded")
	ErrMemory  = errors.New("js: memory limit exceeded")
	ErrStack   = errors.New("js: call stack too deep")
	ErrFanOut  = errors.New("js: too many outputs")
	// ErrRetained fails the job, not a record: the memory is held by the
	// VM's state, which failing a record does not free.
	ErrRetained = errors.New("js: memory kept between calls exceeds the limit")
)

// VM is one goja runtime with the sandbox installed, the job's functions
// block evaluated and every snippet evaluated to a function. A VM belongs
// to one task (goroutine); it is not safe for concurrent use.
type VM struct {
	wd    *watchdog
	rt    *goja.Runtime
	opts  Options
	fns   []goja.Value
	names []string
	// hot is set after a call long enough to have allocated much
	// (hotCall); the next call then measures the heap from its start
	// (not the watchdog's first tick, by when one native step may have
	// doubled a value) and what it allocated (retainedTooMuch).
	hot bool
	// liveMark is the live heap after the last GC liveGrew forced, at
	// liveMarkAt.
	liveMark   uint64
	liveMarkAt time.Time
	// regexFailed is set by a RegExp method that ran past RegexBudget
	// (guardRegex); it is the error of the call that ran it.
	regexFailed error
	// regexp2Patterns caches, by source, whether Go's regexp cannot run
	// a pattern (so goja runs it with regexp2).
	regexp2Patterns map[string]bool
	// retained tracks the memory the VM's values hold between calls
	// (checkRetained).
	retained struct {
		base  uint64 // reachable once the VM was set up
		last  uint64 // at the last measure
		at    uint64 // allocBytes at the last measure
		every uint64 // bytes allocated between measures
	}
}

// hotCall is how long a call runs before the VM's next call measures its
// heap growth from start to end.
const hotCall = time.Millisecond

// NewVM makes a sandboxed runtime for p. It fails if the functions block
// throws, or a snippet throws or does not evaluate to a function.
func (p *Program) NewVM(opts Options) (*VM, error) {
	opts = opts.withDefaults()
	vm := &VM{rt: goja.New(), opts: opts, names: p.names}
	vm.wd = newWatchdog(vm.rt, opts)
	if err := vm.sandbox(p.source); err != nil {
		return nil, err
	}
	if p.functions != nil {
		if _, err := vm.run(func() (goja.Value, error) { return vm.rt.RunProgram(p.functions) }); err != nil {
			return nil, &EvalError{Name: FunctionsName, Err: err}
		}
	}
	for i, prg := range p.snippets {
		v, err := vm.run(func() (goja.Value, error) { return vm.rt.RunProgram(prg) })
		if err != nil {
			return nil, &EvalError{Name: p.names[i], Err: err}
		}
		if err := checkShape(vm.rt, v, p.methods[i]); err != nil {
			return nil, &EvalError{Name: p.names[i], Err: err, Shape: true}
		}
		vm.fns = append(vm.fns, v)
	}
	vm.measureRetained()
	vm.retained.base = vm.retained.last
	return vm, nil
}

// EvalError is NewVM's error when the functions block or a snippet throws
// as it is evaluated, or a snippet's value is not of its shape (Shape).
type EvalError struct {
	Name  string // the snippet's name, or FunctionsName
	Err   error
	Shape bool
}

func (e *EvalError) Error() string {
	if e.Shape {
		return fmt.Sprintf("js: %s: %v", e.Name, e.Err)
	}
	return fmt.Sprintf("js: evaluate %s: %v", e.Name, e.Err)
}

func (e *EvalError) Unwrap() error { return e.Err }

// checkShape checks that v is a function, or an object with the given
// methods when methods is not empty.
func checkShape(rt *goja.Runtime, v goja.Value, methods []string) error {
	if len(methods) == 0 {
		if _, ok := goja.AssertFunction(v); !ok {
			return fmt.Errorf("expression must evaluate to a function, got %s", typeName(v))
		}
		return nil
	}
	o, ok := v.(*goja.Object)
	if !ok {
		return fmt.Errorf("expression must evaluate to an object with methods %v, got %s", methods, typeName(v))
	}
	for _, m := range methods {
		if _, ok := goja.AssertFunction(o.Get(m)); !ok {
			return fmt.Errorf("object has no method %s", m)
		}
	}
	return nil
}

// Close stops the VM's watchdog timer. The VM must not be used after.
func (vm *VM) Close() {
	vm.wd.mu.Lock()
	vm.wd.mu.running = false
	vm.wd.mu.timer.Stop()
	vm.wd.mu.Unlock()
}

// Runtime exposes the goja runtime for packages that build on the VM
// (custom aggregates). Calls must go through Call or run budgeted.
func (vm *VM) Runtime() *goja.Runtime { return vm.rt }

// Func returns snippet i's value: a function, or an object for snippets
// with Methods.
func (vm *VM) Func(i int) goja.Value { return vm.fns[i] }

// Call calls fn(args...) under the time and memory budget.
func (vm *VM) Call(fn goja.Value, args ...goja.Value) (goja.Value, error) {
	return vm.CallThis(fn, goja.Undefined(), args...)
}

// CallThis calls fn with the given this under the time and memory budget.
func (vm *VM) CallThis(fn, this goja.Value, args ...goja.Value) (goja.Value, error) {
	f, ok := goja.AssertFunction(fn)
	if !ok {
		return nil, fmt.Errorf("js: not a function: %s", typeName(fn))
	}
	body := func() (goja.Value, error) { return f(this, args...) }
	// The same budget as a chain's batch: stopped at once when the heap
	// grows, and run again from the start when that was garbage (side
	// effects on globals may then happen twice, as for a chain's record).
	garbage := false
	for resumes := 0; ; resumes++ {
		v, err := vm.runWatched(context.Background(), !garbage, body)
		if err != errResume {
			return v, err
		}
		garbage = resumes+1 >= maxResumes
	}
}

// run executes body under the watchdog and classifies its error.
func (vm *VM) run(body func() (goja.Value, error)) (goja.Value, error) {
	return vm.runCtx(context.Background(), body)
}

// runCtx is run that also interrupts the call, within a tick, when ctx
// is done; the error is then ctx's.
func (vm *VM) runCtx(ctx context.Context, body func() (goja.Value, error)) (goja.Value, error) {
	return vm.runWatched(ctx, false, body)
}

// errResume is runWatched's error for a call stopped on a heap growth
// that a GC then showed to be garbage: the caller may run it again from
// where it stopped.
var errResume = errors.New("js: call stopped on garbage; resume it")

// errHeapSuspect is the watchdog's cause for a call it stopped because
// the heap grew, before a GC confirmed the growth.
var errHeapSuspect = errors.New("js: heap grew")

// runWatched runs body under the watchdog. With resumable, heap growth
// stops the call at once and is confirmed afterwards (ErrMemory, or
// errResume when it was garbage); otherwise the watchdog confirms it
// before it interrupts, while the call goes on.
func (vm *VM) runWatched(ctx context.Context, resumable bool, body func() (goja.Value, error)) (goja.Value, error) {
	measured := vm.hot || resumable
	var allocs0 uint64
	if measured {
		allocs0 = allocBytes()
	}
	began := time.Now()
	vm.wd.begin(ctx, measured, resumable)
	v, err := body()
	heap0 := vm.wd.end()
	vm.hot = time.Since(began) >= hotCall
	err = classify(err)
	if vm.regexFailed != nil {
		// It interrupted the call; the watchdog may have interrupted it
		// too, after.
		err, vm.regexFailed = vm.regexFailed, nil
		return nil, err
	}
	if err == errHeapSuspect {
		if vm.liveGrew(heap0) {
			return nil, ErrMemory
		}
		return nil, errResume
	}
	if measured && err == nil && vm.retainedTooMuch(allocs0) {
		return nil, ErrMemory
	}
	if err == nil {
		if rerr := vm.checkRetained(); rerr != nil {
			return nil, rerr
		}
	}
	return v, err
}

// retainedTooMuch reports, after a call that allocated more than
// Options.MaxHeapGrowth since allocs0, whether the live heap measured by
// a forced GC grew by more than that since this VM's previous such
// call: a value the VM keeps between calls (a global) and grows each
// time, a string doubled once per record, is caught within two steps.
// Calls that allocate less cost no GC.
func (vm *VM) retainedTooMuch(allocs0 uint64) bool {
	if allocBytes()-allocs0 <= vm.opts.MaxHeapGrowth {
		return false
	}
	return vm.liveGrew(0)
}

// liveMarkFor is how long a live-heap measure stays this VM's baseline:
// a value grown call after call is measured again within seconds, while
// over longer spans the rest of the process's live heap may grow.
const liveMarkFor = 30 * time.Second

// liveGrew forces a GC and reports whether the live heap grew by more
// than Options.MaxHeapGrowth since heap0 (the heap, garbage included, at
// the call's start; 0 for none) or since this VM's previous measure,
// taken within liveMarkFor; the measure becomes the new baseline.
func (vm *VM) liveGrew(heap0 uint64) bool {
	runtime.GC()
	live, now := heapBytes(), time.Now()
	over := func(base uint64) bool { return base != 0 && live > base && live-base > vm.opts.MaxHeapGrowth }
	grew := over(heap0) || now.Sub(vm.liveMarkAt) < liveMarkFor && over(vm.liveMark)
	if !grew {
		vm.liveMark, vm.liveMarkAt = live, now
	}
	return grew
}

// classify maps goja's uncatchable errors onto the package sentinels,
// and an exception onto an *ExceptionError (its message and the place in
// the user's script, without the engine's stack).
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ex *goja.Exception
	if errors.As(err, &ex) {
		return exceptionOf(ex.Value())
	}
	var ie *goja.InterruptedError
	if errors.As(err, &ie) {
		if e, ok := ie.Value().(error); ok {
			return e
		}
		return ErrTimeout
	}
	var so *goja.StackOverflowError
	if errors.As(err, &so) {
		return ErrStack
	}
	return err
}

// sandbox removes host-ish globals and caps the builtins that can allocate
// a huge value in one native step (which no interrupt can stop).
func (vm *VM) sandbox(source string) error {
	rt := vm.rt
	rt.SetMaxCallStackSize(vm.opts.MaxCallStack)
	g := rt.GlobalObject()
	// Binary buffers are not needed for record processing and allocate in
	// one native step; goja has no require, console, timers or I/O.
	for _, name := range []string{"ArrayBuffer", "SharedArrayBuffer", "DataView", "Int8Array", "Uint8Array",
		"Uint8ClampedArray", "Int16Array", "Uint16Array", "Int32Array", "Uint32Array", "Float32Array",
		"Float64Array", "BigInt64Array", "BigUint64Array", "WeakRef", "FinalizationRegistry"} {
		if err := g.Delete(name); err != nil {
			return fmt.Errorf("js: sandbox: delete %s: %w", name, err)
		}
	}
	limit := float64(vm.opts.MaxStringLen)
	tooBig := vm.throwTooBig
	thisLen := func(this goja.Value) float64 {
		if o, ok := this.(*goja.Object); ok {
			if l := o.Get("length"); l != nil {
				return l.ToFloat()
			}
		}
		return float64(len(this.String()))
	}
	strProto := rt.Get("String").ToObject(rt).Get("prototype").ToObject(rt)
	arrProto := rt.Get("Array").ToObject(rt).Get("prototype").ToObject(rt)
	wrap := func(obj *goja.Object, name string, size func(call goja.FunctionCall) float64) error {
		orig, ok := goja.AssertFunction(obj.Get(name))
		if !ok {
			return fmt.Errorf("js: sandbox: %s is not a function", name)
		}
		return obj.Set(name, func(call goja.FunctionCall) goja.Value {
			if n := size(call); math.IsNaN(n) || n > limit {
				tooBig(name + " result")
			}
			v, err := orig(call.This, call.Arguments...)
			if err != nil {
				panic(err)
			}
			return v
		})
	}
	err := errors.Join(
		wrap(strProto, "repeat", func(c goja.FunctionCall) float64 {
			return float64(len(c.This.String())) * c.Argument(0).ToFloat()
		}),
		wrap(strProto, "padStart", func(c goja.FunctionCall) float64 { return c.Argument(0).ToFloat() }),
		wrap(strProto, "padEnd", func(c goja.FunctionCall) float64 { return c.Argument(0).ToFloat() }),
		wrap(arrProto, "fill", func(c goja.FunctionCall) float64 { return thisLen(c.This) }),
		wrap(arrProto, "join", func(c goja.FunctionCall) float64 {
			return thisLen(c.This) * float64(1+len(c.Argument(0).String()))
		}),
	)
	if err != nil {
		return err
	}
	if err := vm.guardArray(tooBig); err != nil {
		return err
	}
	if err := vm.guardRegex(source); err != nil {
		return err
	}
	return vm.guardNatives()
}

// guardArray replaces Array so that Array(n), new Array(n) and Array.from
// check the length before the native code allocates it.
func (vm *VM) guardArray(tooBig func(what string)) error {
	rt := vm.rt
	limit := float64(vm.opts.MaxStringLen)
	g := rt.GlobalObject()
	arrayCtor := rt.Get("Array").ToObject(rt)
	guard, err := rt.RunString(`(function (A, check) {
		function Array() {
			if (arguments.length === 1 && typeof arguments[0] === "number") check(arguments[0]);
			return Reflect.construct(A, arguments, new.target || A);
		}
		Array.prototype = A.prototype;
		Object.defineProperty(A.prototype, "constructor", {value: Array, writable: true, configurable: true});
		Array.isArray = A.isArray; Array.of = A.of;
		Array.from = function (x) {
			if (x !== null && x !== undefined && typeof x.length === "number") check(x.length);
			return A.from.apply(A, arguments);
		};
		return Array;
	})`)
	if err != nil {
		return fmt.Errorf("js: sandbox: %w", err)
	}
	mk, _ := goja.AssertFunction(guard)
	check := rt.ToValue(func(n float64) {
		if n > limit {
			tooBig("array")
		}
	})
	guarded, err := mk(goja.Undefined(), arrayCtor, check)
	if err != nil {
		return fmt.Errorf("js: sandbox: %w", err)
	}
	return g.Set("Array", guarded)
}

func typeName(v goja.Value) string {
	if v == nil || goja.IsUndefined(v) {
		return "undefined"
	}
	if goja.IsNull(v) {
		return "null"
	}
	if o, ok := v.(*goja.Object); ok {
		if o.ClassName() == "Array" {
			return "an array"
		}
		return "an object"
	}
	switch v.ExportType().Kind() {
	case reflect.Int64, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	}
	return v.ExportType().String()
}

// callFactory evaluates src (trusted code evaluating to a function) and
// calls it with args, returning its result.
func (vm *VM) callFactory(src string, args ...goja.Value) (goja.Value, error) {
	f, err := vm.rt.RunString(src)
	if err != nil {
		return nil, fmt.Errorf("js: internal driver: %w", err)
	}
	fn, ok := goja.AssertFunction(f)
	if !ok {
		return nil, fmt.Errorf("js: internal driver is not a function")
	}
	return fn(goja.Undefined(), args...)
}
