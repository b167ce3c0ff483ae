package js

// The checks a job's JavaScript passes at submit time, before the runtime
// compiles it with Compile: bounds on size and nesting (goja's parser and
// compiler recurse per nesting level, and submit runs on the server), a
// snippet's shape (one expression; a function, or for a custom aggregate
// an object with init, add and merge), and errors positioned inside the
// snippet as the user wrote it. The program is wrapped as WrapSnippet
// says, as Compile wraps it.

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/dop251/goja"
	"github.com/dop251/goja/ast"
	jsparser "github.com/dop251/goja/parser"
)

// SnippetError is JavaScript that does not pass the checks, located inside
// the snippet (or functions block): line 1, column 1 is its first
// character.
type SnippetError struct {
	Line, Column int
	Message      string
}

func (e *SnippetError) Error() string {
	return fmt.Sprintf("line %d, column %d: %s", e.Line, e.Column, e.Message)
}

// WrapSnippet returns the program compiled for a snippet: the snippet
// between parentheses, the closing one on its own line, so a trailing //
// comment cannot swallow it. A snippet is therefore exactly one expression,
// and running the program yields its value.
func WrapSnippet(snippet string) string {
	return "(" + snippet + "\n)"
}

// CheckSnippet checks and compiles a snippet as WrapSnippet wraps it, in
// sloppy (non-strict) mode, with source maps disabled so no file is ever
// read; it must evaluate to a function (or a name, or a call, that may).
// name labels the program in stack traces. A problem is a *SnippetError.
func CheckSnippet(name, snippet string) (*goja.Program, error) {
	return checkSnippet(name, snippet, false)
}

// CheckObjectSnippet is CheckSnippet for a custom aggregate written as one
// expression evaluating to an object with init, add, merge and (optional)
// result methods.
func CheckObjectSnippet(name, snippet string) (*goja.Program, error) {
	return checkSnippet(name, snippet, true)
}

func checkSnippet(name, snippet string, object bool) (*goja.Program, error) {
	prog, err := parseJS(name, WrapSnippet(snippet), snippet, true)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(snippet) == "" {
		return nil, &SnippetError{Line: 1, Column: 1, Message: "empty expression"}
	}
	if msg := snippetShape(prog, object); msg != "" {
		return nil, &SnippetError{Line: 1, Column: 1, Message: msg}
	}
	return compileJS(prog, snippet, true)
}

// CheckFunctions checks and compiles a job's functions block: plain
// statements (function, const, let and var declarations), run once per JS
// runtime before any snippet so their names are visible to every snippet.
func CheckFunctions(name, src string) (*goja.Program, error) {
	prog, err := parseJS(name, src, src, false)
	if err != nil {
		return nil, err
	}
	return compileJS(prog, src, false)
}

// Limits that keep compiling a job's JS cheap: goja's parser and compiler
// recurse per nesting level and slow down quadratically on deep nesting, and
// a job is compiled at submit time, on the server.
const (
	MaxSnippetSize   = 16 << 10 // bytes per snippet
	MaxFunctionsSize = 32 << 10 // bytes of the functions block
	maxJSNesting     = 256      // brackets
	maxASTDepth      = 1000     // syntax tree depth (e.g. terms of a long a+b+c+...)
	maxArrows        = 1024     // arrow functions per snippet or block
)

// jsLimits rejects JS too large or too deeply nested to compile cheaply,
// before the parser sees it.
func jsLimits(src string, maxSize int) *SnippetError {
	if len(src) > maxSize {
		return &SnippetError{Line: 1, Column: 1, Message: fmt.Sprintf("is %d bytes; the limit is %d (move shared code into functions:)", len(src), maxSize)}
	}
	if i := strings.Index(src, "sourceMappingURL"); i >= 0 {
		// goja's parser reads the file a source map comment names (from
		// the server's filesystem, e.g. /dev/zero) unless told not to;
		// no job needs one.
		line := strings.Count(src[:i], "\n") + 1
		return &SnippetError{Line: line, Column: i - strings.LastIndexByte(src[:i], '\n'), Message: "source map comments (sourceMappingURL) are not allowed"}
	}
	if n := strings.Count(src, "=>"); n > maxArrows {
		return &SnippetError{Line: 1, Column: 1, Message: fmt.Sprintf("has %d arrow functions; the limit is %d", n, maxArrows)}
	}
	depth, line, col := 0, 1, 0
	for _, r := range src {
		col++
		switch r {
		case '\n':
			line, col = line+1, 0
		case '(', '[', '{':
			if depth++; depth > maxJSNesting {
				return &SnippetError{Line: line, Column: col, Message: fmt.Sprintf("brackets nest deeper than %d", maxJSNesting)}
			}
		case ')', ']', '}':
			depth--
		}
	}
	return nil
}

// astDepth returns the nesting depth of the syntax tree under v, counting
// only AST nodes, and stops counting past limit.
func astDepth(v reflect.Value, limit int) int {
	switch v.Kind() {
	case reflect.Interface, reflect.Pointer:
		if v.IsNil() {
			return 0
		}
		d := 0
		if v.Kind() == reflect.Pointer && v.Type().Implements(nodeType) {
			d = 1
			if limit <= 0 {
				return 1
			}
		}
		return d + astDepth(v.Elem(), limit-d)
	case reflect.Struct:
		m := 0
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				m = max(m, astDepth(v.Field(i), limit))
			}
		}
		return m
	case reflect.Slice:
		m := 0
		for i := 0; i < v.Len(); i++ {
			m = max(m, astDepth(v.Index(i), limit))
		}
		return m
	}
	return 0
}

var nodeType = reflect.TypeOf((*ast.Node)(nil)).Elem()

// parseJS parses src (a wrapped snippet when wrapped, else the functions
// block), after checking the limits on the user's text, and maps an error
// back into that text.
func parseJS(name, src, text string, wrapped bool) (*ast.Program, error) {
	limit := MaxFunctionsSize
	if wrapped {
		limit = MaxSnippetSize
	}
	if je := jsLimits(text, limit); je != nil {
		return nil, je
	}
	prog, err := jsparser.ParseFile(nil, name, src, 0, jsparser.WithDisableSourceMaps)
	if err == nil {
		if d := astDepth(reflect.ValueOf(prog), maxASTDepth); d > maxASTDepth {
			return nil, &SnippetError{Line: 1, Column: 1, Message: fmt.Sprintf("expressions nest deeper than %d levels", maxASTDepth)}
		}
		return prog, nil
	}
	var list jsparser.ErrorList
	if errors.As(err, &list) && len(list) > 0 {
		e := list[0]
		return nil, jsErrorAt(text, e.Position.Line, e.Position.Column, e.Message, wrapped)
	}
	return nil, &SnippetError{Line: 1, Column: 1, Message: err.Error()}
}

func compileJS(prog *ast.Program, text string, wrapped bool) (*goja.Program, error) {
	p, err := goja.CompileAST(prog, false)
	if err == nil {
		return p, nil
	}
	var syn *goja.CompilerSyntaxError
	if errors.As(err, &syn) && syn.File != nil {
		pos := syn.File.Position(syn.Offset)
		return nil, jsErrorAt(text, pos.Line, pos.Column, syn.Message, wrapped)
	}
	var ref *goja.CompilerReferenceError
	if errors.As(err, &ref) && ref.File != nil {
		pos := ref.File.Position(ref.Offset)
		return nil, jsErrorAt(text, pos.Line, pos.Column, ref.Message, wrapped)
	}
	return nil, &SnippetError{Line: 1, Column: 1, Message: err.Error()}
}

// jsErrorAt builds a JSError from a position in the compiled source. For a
// wrapped snippet, line 1 carries the opening parenthesis, and a position on
// the closing line moves to the end of the snippet.
func jsErrorAt(text string, line, col int, msg string, wrapped bool) *SnippetError {
	lines := strings.Split(text, "\n")
	switch {
	case line < 1:
		return &SnippetError{Line: 1, Column: 1, Message: msg}
	case line > len(lines):
		last := lines[len(lines)-1]
		if wrapped {
			msg += " at the end of the snippet (a snippet is one expression: check that brackets balance)"
		}
		return &SnippetError{Line: len(lines), Column: len(last) + 1, Message: msg}
	case wrapped && line == 1:
		col = max(col-1, 1)
	}
	return &SnippetError{Line: line, Column: col, Message: msg}
}

// snippetShape rejects snippets that parse but cannot be what a snippet
// must be: more than one statement, or a literal that is not a function
// (or, for an aggregate object, not an object).
func snippetShape(prog *ast.Program, object bool) string {
	if len(prog.Body) != 1 {
		return "must be a single expression"
	}
	st, ok := prog.Body[0].(*ast.ExpressionStatement)
	if !ok {
		return "must be a single expression"
	}
	e := st.Expression
	if object {
		switch x := e.(type) {
		case *ast.ObjectLiteral:
			return objectMethods(x)
		case *ast.FunctionLiteral, *ast.ArrowFunctionLiteral, *ast.StringLiteral, *ast.NumberLiteral,
			*ast.BooleanLiteral, *ast.NullLiteral, *ast.ArrayLiteral, *ast.TemplateLiteral, *ast.RegExpLiteral:
			return "must be an object with init, add and merge methods, e.g. ({init: () => 0, add: (a, r) => a + 1, merge: (a, b) => a + b})"
		}
		return ""
	}
	switch e.(type) {
	case *ast.StringLiteral, *ast.NumberLiteral, *ast.BooleanLiteral, *ast.NullLiteral, *ast.ObjectLiteral,
		*ast.ArrayLiteral, *ast.TemplateLiteral, *ast.RegExpLiteral:
		return "must be a function, e.g. r => r.page (it is a literal value)"
	}
	return ""
}

// objectMethods checks that an aggregate object literal names init, add
// and merge, and nothing else than those and result.
func objectMethods(o *ast.ObjectLiteral) string {
	have := map[string]bool{}
	for _, prop := range o.Value {
		var name string
		switch p := prop.(type) {
		case *ast.PropertyShort:
			name = string(p.Name.Name)
		case *ast.PropertyKeyed:
			if p.Computed {
				continue
			}
			switch k := p.Key.(type) {
			case *ast.StringLiteral:
				name = string(k.Value)
			case *ast.Identifier:
				name = string(k.Name)
			}
		default:
			return ""
		}
		if name == "" {
			continue
		}
		if !slices.Contains([]string{"init", "add", "merge", "result"}, name) {
			return fmt.Sprintf("unknown aggregate method %q (allowed: init, add, merge, result)", name)
		}
		have[name] = true
	}
	for _, m := range []string{"init", "add", "merge"} {
		if !have[m] {
			return fmt.Sprintf("the aggregate object has no %s method (needs init, add, merge; result optional)", m)
		}
	}
	return ""
}
