// Package native evaluates simple record functions of a JS chain in Go,
// without entering the JS engine: field reads straight from a record's
// raw JSON, no JS objects built, no calls into goja.
//
// It is a package of its own, below the JS bridge (operators/js) that
// uses it, because it is a second implementation of JavaScript semantics
// with one contract of its own, and its size (an expression compiler over
// goja's AST, values, operators, builtins) would otherwise crowd the
// bridge. It imports nothing of the bridge: records come in as raw JSON
// or Go maps and go out as the Go values the bridge exports, and raw JSON
// is read with internal/jsonscan, as the bridge reads it.
//
// # The rule: goja's exact result, or none
//
// For every record the evaluator either gives exactly the result goja
// gives — the same output value, key and event time, down to -0, integer
// versus float and key order — or gives up (Run's ok is false), and the
// bridge then runs the whole batch in goja as if the evaluator did not
// exist. Whatever it does not model exactly makes it give up: a property
// of null or undefined (a TypeError in JS), a number compared with a
// string, a key that is not a string or an integer, a property every
// object inherits (constructor, toString, ...), an array result, an input
// that is not a JSON object or a Go map, a product that JS makes -0 and
// goja +0. Errors, on_error policies and dead letters therefore always
// come from goja. The evaluator has no loops and no recursion, so it
// needs no time budget. TestNativeEquivalence (randomized, -seed) and
// FuzzNativeEquivalence in operators/js check the rule against goja.
//
// # The subset, and the benchmark behind each part
//
// A function is compiled (Compile) when it is an arrow function or
// function expression of at most one plain parameter whose body is one
// expression of the subset, or a block of const/let declarations, ifs,
// returns and nested blocks of them. Each part of the subset is there
// because a sub-benchmark of BenchmarkNativeSubset (operators/js) shows
// the native run of a chain using it well ahead of goja's on the same
// records; docs/performance.md has the figures and the command.
//
//   - Field reads by name (r.a, r["a"], r.a.b), literals, undefined, NaN,
//     Infinity, object literals with named keys and shorthand properties:
//     BenchmarkNativeSubset/fields (and BenchmarkBenchJobChain, the chain
//     of `runnel bench job`).
//   - Comparisons === !== == != < <= > >=: BenchmarkNativeSubset/compare.
//   - Arithmetic + - * / % and unary - +: BenchmarkNativeSubset/arithmetic.
//   - Logic && || ?? ?: ! and typeof: BenchmarkNativeSubset/logic.
//   - Spread of a record or nested object into an object literal:
//     BenchmarkNativeSubset/spread.
//   - Template literals: BenchmarkNativeSubset/template.
//   - Math.floor, ceil, round, trunc, abs, sign, sqrt, min, max:
//     BenchmarkNativeSubset/math.
//   - String methods startsWith, endsWith, includes, toLowerCase,
//     toUpperCase, trim and a string's length: BenchmarkNativeSubset/strings.
//   - Number(x) and String(x): BenchmarkNativeSubset/convert.
//   - Calls of the functions block's functions that are themselves of the
//     subset (funcs.go): BenchmarkNativeSubset/functions.
//   - Block bodies with constants, ifs and early returns (builtins.go):
//     BenchmarkNativeSubset/block.
//   - Key and event-time stages (a string or integer key; epoch
//     milliseconds or a digit string): BenchmarkNativeSubset/template and
//     BenchmarkNativeSubset/event_time.
//
// A builtin the job's functions block may have replaced (it mentions
// Math, Number, String or a prototype) is left to goja.
package native
