package js

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/operators"
)

// TestSandbox runs hostile snippets; each must fail with an *Error naming
// the operator, and the process must stay up with bounded memory.
func TestSandbox(t *testing.T) {
	cases := []struct {
		name, src string
		cause     error // nil: any JS exception
		msg       string
	}{
		{"infinite loop", `r => { for (;;) {} }`, ErrTimeout, ""},
		{"loop inside try/catch", `r => { for (;;) { try { for (;;) {} } catch (e) {} } }`, ErrTimeout, ""},
		{"loop in finally", `r => { try { throw 1 } finally { while (true) {} } }`, ErrTimeout, ""},
		{"deep recursion", `r => { function f(n) { return f(n + 1) + 1 } return f(0) }`, ErrStack, ""},
		{"recursion caught", `r => { function f(n) { try { return f(n + 1) } catch (e) { return f(n + 1) } } return f(0) }`, ErrStack, ""},
		{"huge repeat", `r => "x".repeat(1 << 30)`, nil, "sandbox limit"},
		{"huge padEnd", `r => "".padEnd(2e9, "y")`, nil, "sandbox limit"},
		{"huge array", `r => new Array(1e9).fill(0)`, nil, "sandbox limit"},
		{"huge array length", `r => { var a = []; a.length = 4e9 - 1; return a.fill(1) }`, nil, "sandbox limit"},
		{"huge join", `r => { var a = []; a.length = 1e9; return a.join("abc") }`, nil, "sandbox limit"},
		{"array from", `r => Array.from({length: 1e9})`, nil, "sandbox limit"},
		{"replace per match", `r => "x".repeat(32768).replace(/x/g, "y".repeat(65536))`, nil, "replace result larger than the sandbox limit"},
		{"replaceAll per match", `r => "x".repeat(32768).replaceAll("x", "$&".repeat(30000))`, nil, ""},
		{"replace by a function", `r => "x".repeat(32768).replace(/x/g, () => "y".repeat(65536))`, nil, ""},
		{"join of long elements", `r => Array(1000).fill("x".repeat(1 << 20)).join("")`, nil, "join result larger than the sandbox limit"},
		{"string concat", `r => "".concat(...Array(100).fill("x".repeat(1 << 20)))`, nil, "concat result larger than the sandbox limit"},
		{"array concat", `r => { var a = Array(1 << 22); a.fill(0, 0, 1); return a.concat(a, a, a, a) }`, nil, "concat result larger than the sandbox limit"},
		{"stringify shared children", `r => { var a = [1]; for (var i = 0; i < 40; i++) a = [a, a]; return JSON.stringify(a) }`, nil, ""},
		{"stringify deep indentation", `r => { var a = []; for (var i = 0; i < 5000; i++) a = [a]; return JSON.stringify(a, null, 10) }`, nil, ""},
		{"flat of shared children", `r => { var a = [1]; for (var i = 0; i < 40; i++) a = [a, a]; return a.flat(Infinity) }`, nil, ""},
		{"String.raw", `r => String.raw({raw: {length: 1e9}})`, nil, "String.raw result larger than the sandbox limit"},
		{"map over a huge length", `r => { var a = []; a.length = 4e9; return a.map(x => x) }`, nil, "array larger than the sandbox limit"},
		{"string doubling across records", `r => { globalThis.s = (globalThis.s || "xxxxxxxx"); for (;;) globalThis.s = globalThis.s + globalThis.s }`, nil, ""},
		{"string doubling", `r => { var s = "xxxxxxxxxxxxxxxx"; for (;;) s = s + s }`, nil, ""},
		{"array growth", `r => { var a = []; for (;;) a.push({x: a.length, y: "some text here"}) }`, nil, ""},
		{"loop in a promise job", `r => { Promise.resolve().then(() => { for (;;) {} }); return r }`, ErrTimeout, ""},
		{"loop in an async function", `r => { (async () => { await 1; for (;;) {} })(); return r }`, ErrTimeout, ""},
		{"require", `r => require("fs")`, nil, "require is not defined"},
		{"process", `r => process.env`, nil, "process is not defined"},
		{"global this has no host objects", `r => { var g = Function('return this')(); if (g.require || g.process || g.setTimeout || g.console || g.Uint8Array) return r; throw new Error("clean") }`, nil, "clean"},
		{"timers", `r => setTimeout(() => 1, 0)`, nil, "setTimeout is not defined"},
		{"buffers", `r => new ArrayBuffer(1 << 30)`, nil, "ArrayBuffer is not defined"},
		// Code the runtime calls while it reads a result, not the function
		// itself: a getter, a proxy's traps, a toJSON, a conversion.
		{"loop in a getter of the result", `r => ({a: 1, get b() { for (;;) {} }})`, ErrTimeout, ""},
		{"loop in a nested getter", `r => ({a: [{get b() { for (;;) {} }}]})`, ErrTimeout, ""},
		{"loop in a proxy's trap", `r => { var p = new Proxy({}, {ownKeys() { for (;;) {} }}); return Object.keys(p) }`, ErrTimeout, ""},
		{"memory in a getter of the result", `r => ({get b() { var s = "xxxxxxxxxxxxxxxx"; for (;;) s = s + s }})`, nil, ""},
		{"loop in toJSON", `r => JSON.stringify({toJSON() { for (;;) {} }})`, ErrTimeout, ""},
		{"loop in a conversion", `r => "" + {[Symbol.toPrimitive]() { for (;;) {} }}`, ErrTimeout, ""},
		{"typed arrays", `r => new Uint8Array(1 << 30)`, nil, "Uint8Array is not defined"},
		{"huge array by fill", `r => Array(2e7).fill("x")`, nil, "sandbox limit"},
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newChainSpec(t, ChainSpec{Job: "evil", Options: Options{Budget: 50 * time.Millisecond, MaxHeapGrowth: 256 << 20},
				Stages: []Stage{{Operator: "op-" + strings.ReplaceAll(tc.name, " ", "-"), Kind: Map, Src: tc.src}}})
			err := c.Process(context.Background(), batchOf(map[string]any{"x": 1}), &collect{})
			var je *Error
			if !errors.As(err, &je) {
				t.Fatalf("want *Error, got %v", err)
			}
			if je.Operator != "op-"+strings.ReplaceAll(tc.name, " ", "-") || je.Job != "evil" || je.Origin != "shard-0/0" {
				t.Fatalf("error does not name the operator and record: %v", err)
			}
			if tc.cause != nil && !errors.Is(err, tc.cause) {
				t.Fatalf("want %v, got %v", tc.cause, err)
			}
			if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("want %q in %v", tc.msg, err)
			}
			// The VM stays usable after an interrupt.
			if _, err := c.vm.Call(c.vm.rt.ToValue(func() int { return 1 })); err != nil {
				t.Fatalf("VM unusable after error: %v", err)
			}
		})
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if grown := int64(after.HeapAlloc) - int64(before.HeapAlloc); grown > 64<<20 {
		t.Fatalf("live heap grew by %d MiB", grown>>20)
	}
}

// TestSandboxProxyResult: a proxy returned as a result is exported without
// running its traps (they would run outside the call's watchdog): the
// call returns, its traps unrun.
func TestSandboxProxyResult(t *testing.T) {
	for _, src := range []string{
		`r => new Proxy({}, {ownKeys() { for (;;) {} }, get() { for (;;) {} }, getOwnPropertyDescriptor() { for (;;) {} }})`,
		`r => ({a: new Proxy([], {get() { for (;;) {} }})})`,
	} {
		c := newChainSpec(t, ChainSpec{Job: "evil", Options: Options{Budget: 50 * time.Millisecond},
			Stages: []Stage{{Operator: "p", Kind: Map, Src: src}}})
		var out collect
		if err := c.Process(context.Background(), batchOf(1), &out); err != nil {
			var je *Error
			if !errors.As(err, &je) {
				t.Fatalf("%s: want nil or *Error, got %v", src, err)
			}
		}
		if b, err := json.Marshal(out.recs); err != nil {
			t.Fatalf("%s: the output does not encode: %v", src, err)
		} else {
			t.Logf("%s: %s", src, b)
		}
	}
}

// TestVMIsolation: two VMs of one program share no globals.
func TestVMIsolation(t *testing.T) {
	cp, err := CompileChain(ChainSpec{Job: "j", Functions: "var n = 0; function next() { return ++n }",
		Stages: []Stage{{Operator: "m", Kind: Map, Src: "r => ({n: next()})"}}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := cp.New()
	b, _ := cp.New()
	var oa, ob collect
	a.Process(context.Background(), batchOf(1, 2, 3), &oa)
	b.Process(context.Background(), batchOf(1), &ob)
	if got := ob.recs[0].Value.(map[string]any)["n"]; got != int64(1) {
		t.Fatalf("second VM saw state of the first: n=%v", got)
	}
	_ = operators.Record{}
}

// TestFanOutCap: a map returning more than MaxOutputs records for one input
// fails that record with ErrFanOut naming the operator; the batch's other
// records keep their outputs.
func TestFanOutCap(t *testing.T) {
	c := newChainSpec(t, ChainSpec{Job: "j", Options: Options{MaxOutputs: 100},
		Stages: []Stage{{Operator: "spread", Kind: Map, Src: `r => Array.from({length: r.n}, (_, i) => ({i}))`},
			{Operator: "keep", Kind: Filter, Src: `r => true`}}})
	var out collect
	err := c.Process(context.Background(), batchOf(map[string]any{"n": 100}, map[string]any{"n": 200}), &out)
	var je *Error
	if !errors.As(err, &je) || !errors.Is(err, ErrFanOut) || je.Operator != "spread" {
		t.Fatalf("got %v, want ErrFanOut naming operator spread", err)
	}
}
