// Package js is the JavaScript bridge of the job runtime: it compiles a
// job's JS once, runs it in one sandboxed goja runtime per task, and
// provides the per-record operators built on it — map, filter, and the key
// and event-time extractors — fused into one operator per run of
// consecutive stages (a Chain), the way Flink chains operators.
//
// # Snippets and compilation
//
// Every snippet is an expression that evaluates to a function of one
// record ("r => r.ts", "function (r) { ... }"). Compile parses the job's
// functions block and each snippet once (goja programs are immutable and
// shared by all tasks); a *SyntaxError carries the line and column inside
// the snippet as the user wrote it. Program.NewVM makes a task's runtime:
// the sandbox is installed, the functions block is evaluated, then each
// snippet is evaluated to its function.
//
// # Batches
//
// A Chain hands a whole batch to JS in one call: a driver generated for the
// chain (one JS function per stage, each calling the next, so there is no
// per-stage dispatch) loops over the records and calls back into Go once
// per output record. A record returned unchanged (r => r, or a filter)
// keeps its original Go value; any other result is exported. Go maps and
// slices are wrapped for JS (gomap.go), not copied: JS reads them in place
// and an assignment such as r.x = 1 writes through to the Go map, so the
// runtime must not hand the same Value to two branches that both run JS.
// A map's keys enumerate sorted (as encoding/json writes them), then the
// keys JS added, so Object.keys, spread and JSON.stringify of a record
// are the same on every run. Raw JSON
// values ([]byte, json.RawMessage) whose top level is an object become a
// goja DynamicObject over the bytes (raw.go): validated and indexed once,
// each field decoded the first time JS reads it, short string values
// shared within the runtime. A function that reads three fields of a
// record never builds the others; reads, writes, deletes, key order,
// JSON.stringify, spread and export behave as for the object JSON.parse
// would give (fuzzed against it), except that its properties cannot be
// frozen or made non-configurable. Other raw JSON is decoded by
// DecodeJSON. []byte that does not parse fails the first stage (its
// on_error applies); a json.RawMessage — what a stream source with
// RawJSON hands on — that does not parse fails the batch, as the source
// itself would have. A raw record passed through unchanged leaves the
// chain exported, as a map.
// Results are exported to JSON-like Go values: integers as int64, other
// numbers as float64, objects as map[string]any.
//
// A map result replaces the record; null or undefined drops it; an array
// emits each element (in order, through the remaining stages). A filter
// keeps the record when the result is truthy. A Key stage sets
// Record.Key (string, number or boolean, converted to its JS string form).
// An EventTime stage sets Record.EventTime from epoch milliseconds, a
// decimal string of them, an RFC 3339 string or a Date. Outputs keep the
// Origin of the input record they came from.
//
// # Sandbox
//
// goja provides pure ECMAScript: there is no require, module loader,
// console, timer, file or network access unless a host adds them, and this
// package adds none. It also deletes ArrayBuffer, SharedArrayBuffer,
// DataView, the typed arrays, WeakRef and FinalizationRegistry. The global
// object reachable through Function('return this')() therefore holds only
// ECMAScript builtins and the job's own functions. Each task has its own
// runtime, so tasks share no JS state.
//
// Bounds, and what they do not cover:
//   - Time: each call runs under a watchdog that calls Runtime.Interrupt
//     after Options.Budget (default 100ms) of wall time once the process
//     has also had that much CPU time since the watchdog's first tick (so
//     a call starved on an overloaded machine is not blamed; the CPU time
//     is the whole process's, so other busy tasks can make it count). One
//     timer per VM is reused by every call, so a short call costs no
//     allocation or system call for its watchdog. Interrupts cannot be caught by
//     JS try/catch. A batch call interrupted while record i was running is
//     resumed at record i with a fresh budget; record i fails only if it
//     alone used a whole budget, so a record may run up to twice its budget
//     before it fails. Records of the interrupted call that had finished
//     are kept; a resumed record is run again from the start (side effects
//     on globals of the functions block may happen twice).
//   - Cancellation: when Process's context is done, the running batch is
//     interrupted within a tick (10ms) and Process returns the context's
//     error; no record is blamed.
//   - Stack: SetMaxCallStackSize(Options.MaxCallStack, default 1000); the
//     overflow is uncatchable by JS.
//   - Memory: the builtins that can allocate a huge value in one native
//     step, where no interrupt can reach them — String.prototype.repeat,
//     padStart, padEnd, replace, concat, Array.prototype.fill, join and
//     flat, JSON.stringify, String.raw, Array(n), Array.from — throw a
//     RangeError beyond Options.MaxStringLen characters or elements
//     (default 16 Mi). Allocation that grows step by step is caught by the
//     watchdog, which samples the process heap every tick and stops the
//     call when the heap grew by more than Options.MaxHeapGrowth (default
//     64 MiB) since the call began and a forced GC confirms it. This is a
//     process-wide measure: other goroutines' allocations count, and a
//     call may overshoot by what it allocates in a tick.
//   - Memory kept between calls: after each stretch of allocation the VM
//     walks everything its runtime reaches (heapsize.go) and fails with
//     ErrRetained when that grew by more than Options.MaxRetained (default
//     256 MiB) since setup — a global grown a little per call, each call
//     under MaxHeapGrowth. This fails the job, not a record.
//   - Regular expressions: a call of a RegExp method that may have run
//     goja's backtracking engine (regexp2) and ran RegexBudget or longer
//     fails its record with ErrRegex (regex.go), rather than the silent
//     no-match goja makes of regexp2's timeout.
//
// Custom aggregates call through VM.Call, which applies the same budgets
// as a chain's batch.
//
// # Cost
//
// Most of a record's cost is goja itself: its objects are Go maps, so a
// map's object literal is a few hundred bytes and a third of the
// allocations, and each call and property access goes through its
// interpreter. The batch driver runs the stages inline (no JS call per
// stage besides the user's functions) and keeps its position in closure
// variables. ChainSpec.Project exports only the fields a window's builtin
// aggregates read, as a *Projected from per-batch slabs, instead of a map
// per record. A chain whose every function is simple enough (field
// reads, object literals, comparisons, a few builtins) also runs its
// batches in Go, without goja, through operators/js/native; a batch with a
// record the evaluator cannot give goja's exact result for runs in goja
// instead (ChainSpec.Interpreted turns this off). go test -bench
// BenchJobChain, BenchmarkNativeSubset and `runnel bench job` measure the
// chain; docs/performance.md holds their figures.
//
// # Errors
//
// A JS exception, timeout, stack overflow or memory interrupt on a record
// becomes an *Error naming the job, the operator and the record's Origin.
// Each stage applies its own OnError policy: Fail returns the error from
// Process (the runtime stops the job with it), Skip counts and drops the
// record, DeadLetter counts it and emits {error, job, operator, origin,
// record} — record being the chain's input value — to the side output
// operators.DeadLetterOutput(operator id), which the runtime wires to the
// dead-letter stream. A record that fails withdraws any outputs it had
// already produced (an array-returning map), so a record is either fully
// processed or fully failed.
package js
