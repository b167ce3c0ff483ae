package jobs

import (
	"strings"

	"github.com/dop251/goja"

	"github.com/runnel-dev/runnel/operators/js"
)

// JSError is a JS snippet that does not compile, located inside the
// snippet: line 1, column 1 is the snippet's first character.
type JSError = js.SnippetError

// Bounds on a job's JS (operators/js checks them).
const (
	MaxSnippetSize   = js.MaxSnippetSize
	MaxFunctionsSize = js.MaxFunctionsSize
)

// WrapSnippet returns the JS program Runnel compiles for a snippet
// (js.WrapSnippet): the snippet between parentheses, the closing one on its
// own line. A snippet is therefore exactly one expression — usually a
// function (`r => r.ts`, `function (r) {...}`, or the name of a function
// declared in the functions block) — and running the program yields its
// value. Comments may run to the end of the snippet's last line.
// TestSnippetsAgreeWithRuntime checks that validation and the runtime
// accept and reject the same snippets at the same positions. Validate
// trims trailing semicolons and blank space from every snippet of a Spec
// first (NormalizeSnippet), so `r => r.ts;` is accepted by both.
func WrapSnippet(snippet string) string { return js.WrapSnippet(snippet) }

// NormalizeSnippet removes trailing blank space and semicolons, which a
// snippet written as a statement (`r => r.ts;`) carries but an expression
// cannot.
func NormalizeSnippet(snippet string) string {
	return strings.TrimRight(snippet, " \t\r\n;")
}

// CompileSnippet checks and compiles a snippet (js.CheckSnippet). A problem
// is a *JSError with the position inside the snippet.
func CompileSnippet(name, snippet string) (*goja.Program, error) {
	return js.CheckSnippet(name, snippet)
}

// CompileObjectSnippet checks and compiles a custom aggregate written as
// one JS expression evaluating to an object with init, add, merge and
// (optional) result methods (js.CheckObjectSnippet).
func CompileObjectSnippet(name, snippet string) (*goja.Program, error) {
	return js.CheckObjectSnippet(name, snippet)
}

// CompileFunctions checks and compiles a job's functions block
// (js.CheckFunctions).
func CompileFunctions(name, src string) (*goja.Program, error) { return js.CheckFunctions(name, src) }
