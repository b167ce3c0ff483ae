package jobs

import (
	"errors"
	"strings"
	"testing"

	"github.com/dop251/goja"
)

// run compiles functions and a snippet the way the runtime will, and
// returns the snippet's value in a fresh runtime.
func run(t *testing.T, functions, snippet string) (*goja.Runtime, goja.Value) {
	t.Helper()
	vm := goja.New()
	if functions != "" {
		fp, err := CompileFunctions("functions", functions)
		if err != nil {
			t.Fatalf("CompileFunctions: %v", err)
		}
		if _, err := vm.RunProgram(fp); err != nil {
			t.Fatalf("run functions: %v", err)
		}
	}
	p, err := CompileSnippet("test", NormalizeSnippet(snippet))
	if err != nil {
		t.Fatalf("CompileSnippet(%q): %v", snippet, err)
	}
	v, err := vm.RunProgram(p)
	if err != nil {
		t.Fatalf("run %q: %v", snippet, err)
	}
	return vm, v
}

// Every accepted way of writing a snippet evaluates to a function that the
// runtime can call.
func TestSnippetEvaluatesToFunction(t *testing.T) {
	cases := []struct{ functions, snippet string }{
		{"", "r => r.ms * 2"},
		{"", "r => r.ms * 2;\n"},
		{"", "function (r) { return r.ms * 2 }"},
		{"", "(r) => {\n  const x = r.ms\n  return x * 2\n}"},
		{"", "r => r.ms * 2 // a comment at the end"},
		{"function double(r) { return r.ms * 2 }", "double"},
		{"const k = 2;\nfunction f(r) { return r.ms * k }", "r => f(r)"},
	}
	for _, c := range cases {
		vm, v := run(t, c.functions, c.snippet)
		fn, ok := goja.AssertFunction(v)
		if !ok {
			t.Errorf("%q evaluates to %v, not a function", c.snippet, v)
			continue
		}
		out, err := fn(goja.Undefined(), vm.ToValue(map[string]any{"ms": 21}))
		if err != nil || out.ToInteger() != 42 {
			t.Errorf("%q(r) = %v, %v; want 42", c.snippet, out, err)
		}
	}
}

func TestObjectSnippet(t *testing.T) {
	p, err := CompileObjectSnippet("agg", "({init: () => 0, add: (a, r) => a + r.n, merge: (a, b) => a + b, result: a => a})")
	if err != nil {
		t.Fatal(err)
	}
	vm := goja.New()
	v, err := vm.RunProgram(p)
	if err != nil {
		t.Fatal(err)
	}
	obj := v.ToObject(vm)
	for _, m := range []string{"init", "add", "merge", "result"} {
		if _, ok := goja.AssertFunction(obj.Get(m)); !ok {
			t.Errorf("aggregate object has no %s function", m)
		}
	}
	if _, err := CompileObjectSnippet("agg", "r => r"); err == nil {
		t.Error("a function accepted as an aggregate object")
	}
	if _, err := CompileObjectSnippet("agg", "makeAggregate(10)"); err != nil {
		t.Errorf("a call returning an object rejected: %v", err)
	}
}

// Syntax errors are located inside the snippet, never in the wrapper.
func TestSnippetErrorPositions(t *testing.T) {
	cases := []struct {
		snippet   string
		line, col int
	}{
		{"r => r.a +* 2", 1, 11},
		{"r => {\n  return r.a +* 2\n}", 2, 15},
		{"r => (r.a", 1, 10},
		{"", 1, 1},
		{"r => r)", 1, 8},
	}
	for _, c := range cases {
		_, err := CompileSnippet("t", c.snippet)
		var je *JSError
		if !errors.As(err, &je) {
			t.Errorf("%q: error %v, want a *JSError", c.snippet, err)
			continue
		}
		if je.Line != c.line || je.Column != c.col {
			t.Errorf("%q: error at %d:%d (%s), want %d:%d", c.snippet, je.Line, je.Column, je.Message, c.line, c.col)
		}
	}
}

// Snippets too large or too deeply nested to compile cheaply are rejected
// before goja sees them (its parser and compiler slow down quadratically on
// deep nesting, and a job compiles on the server at submit time).
func TestSnippetLimits(t *testing.T) {
	rejected := map[string]string{
		"too large":          "r => " + strings.Repeat("1+", MaxSnippetSize/2) + "1",
		"deep brackets":      "r => " + strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300),
		"deep unary":         "r => " + strings.Repeat("- ", 1200) + "1",
		"long sum":           "r => " + strings.Repeat("r.a+", 1200) + "1",
		"deep arrow chain":   strings.Repeat("a=>", 2000) + "1",
		"deep ternary chain": "r => " + strings.Repeat("r?1:", 1200) + "1",
	}
	for name, src := range rejected {
		_, err := CompileSnippet("t", src)
		var je *JSError
		if !errors.As(err, &je) || !strings.Contains(je.Message, "limit") && !strings.Contains(je.Message, "deeper") {
			t.Errorf("%s: error %v, want a limit error", name, err)
		}
	}
	for _, src := range []string{"r => r\n//# sourceMappingURL=/dev/zero", "function f() {}\n//# sourceMappingURL=data:application/json;base64,e30="} {
		_, err1 := CompileSnippet("t", src)
		_, err2 := CompileFunctions("f", src)
		if err1 == nil || err2 == nil || !strings.Contains(err1.Error(), "sourceMappingURL") {
			t.Errorf("%q: snippet %v, functions %v; want both rejected", src, err1, err2)
		}
	}
	accepted := map[string]string{
		"nested 100":  "r => " + strings.Repeat("(", 100) + "r.a" + strings.Repeat(")", 100),
		"unary 100":   "r => " + strings.Repeat("- ", 100) + "1",
		"long sum":    "r => " + strings.Repeat("r.a+", 500) + "1",
		"many arrows": "r => [" + strings.Repeat("x => x,", 500) + "]",
	}
	for name, src := range accepted {
		if _, err := CompileSnippet("t", src); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := CompileFunctions("f", strings.Repeat("function f(a) { return a + 1 }\n", 1000)); err != nil {
		t.Errorf("a 31 KiB functions block: %v", err)
	}
	if _, err := CompileFunctions("f", strings.Repeat("function f(a) { return a + 1 }\n", 1100)); err == nil {
		t.Error("a 34 KiB functions block accepted")
	}
}
