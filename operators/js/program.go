package js

import (
	"errors"
	"fmt"
	"strings"

	"github.com/dop251/goja"
	"github.com/dop251/goja/parser"
)

// Snippet is one piece of user JavaScript: an expression that evaluates to
// a function, such as "r => r.ts" or "function (r) { return r.n > 3 }".
type Snippet struct {
	// Name says where the snippet comes from in errors, e.g. "parse.map".
	Name string
	// Src is the expression.
	Src string
	// Methods, if set, means the expression evaluates to an object (not a
	// function) that must have these methods, e.g. a custom aggregate's
	// {init, add, merge}.
	Methods []string
}

// SyntaxError reports a snippet (or the functions block) that does not
// compile. Line and Column are 1-based and relative to the snippet's own
// text, so they match what the user wrote in the job file.
type SyntaxError struct {
	Name   string
	Line   int
	Column int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("js: %s: syntax error at line %d, column %d: %s", e.Name, e.Line, e.Column, e.Msg)
}

// Program is the compiled JavaScript of one job: its functions block and
// its snippets. It is immutable and may be shared by any number of VMs.
type Program struct {
	functions *goja.Program
	snippets  []*goja.Program
	names     []string
	methods   [][]string
	// source is the functions block and the snippets, for what the
	// sandbox looks for in them (guardRegex).
	source string
}

// FunctionsName is the snippet name used for the job's functions block.
const FunctionsName = "functions"

// Compile compiles the job's functions block (may be empty) and its
// snippets once. Each snippet must be a single expression; it is wrapped in
// parentheses, so an object literal or arrow function needs no extra care.
func Compile(functions string, snippets ...Snippet) (*Program, error) {
	p := &Program{source: functions}
	if strings.TrimSpace(functions) != "" {
		prg, err := compileSrc(FunctionsName, functions)
		if err != nil {
			return nil, syntaxError(FunctionsName, err)
		}
		p.functions = prg
	}
	for _, s := range snippets {
		if strings.TrimSpace(s.Src) == "" {
			return nil, &SyntaxError{Name: s.Name, Line: 1, Column: 1, Msg: "empty expression"}
		}
		// One "(" precedes line 1; the closing paren goes on its own line
		// so a trailing // comment cannot swallow it.
		prg, err := compileSrc(s.Name, "("+s.Src+"\n)")
		if err != nil {
			return nil, clampToSnippet(syntaxError(s.Name, err), s.Src)
		}
		p.source += "\n" + s.Src
		p.snippets = append(p.snippets, prg)
		p.names = append(p.names, s.Name)
		p.methods = append(p.methods, s.Methods)
	}
	return p, nil
}

// clampToSnippet moves an error reported on the wrapper's closing line
// ("unexpected end") to the end of the snippet's last line.
func clampToSnippet(err error, src string) error {
	se, ok := err.(*SyntaxError)
	if !ok {
		return err
	}
	lines := strings.Split(src, "\n")
	if se.Line > len(lines) {
		se.Line = len(lines)
		se.Column = len(lines[len(lines)-1]) + 1
		if se.Line == 1 {
			se.Column++
		}
	}
	if se.Line == 1 {
		se.Column = max(se.Column-1, 1)
	}
	return se
}

// compileSrc parses first so that syntax errors keep their position
// (goja.Compile flattens them into a message).
func compileSrc(name, src string) (*goja.Program, error) {
	ast, err := parser.ParseFile(nil, name, src, 0, parser.WithDisableSourceMaps)
	if err != nil {
		return nil, err
	}
	return goja.CompileAST(ast, false)
}

// Len returns the number of snippets.
func (p *Program) Len() int { return len(p.snippets) }

// syntaxError converts a goja parse or compile error into a *SyntaxError.
func syntaxError(name string, err error) error {
	se := &SyntaxError{Name: name, Line: 1, Column: 1, Msg: err.Error()}
	var list parser.ErrorList
	var one *parser.Error
	var cse *goja.CompilerSyntaxError
	switch {
	case errors.As(err, &list) && len(list) > 0:
		se.Line, se.Column, se.Msg = list[0].Position.Line, list[0].Position.Column, list[0].Message
	case errors.As(err, &one):
		se.Line, se.Column, se.Msg = one.Position.Line, one.Position.Column, one.Message
	case errors.As(err, &cse):
		se.Msg = cse.Message
		if cse.File != nil {
			pos := cse.File.Position(cse.Offset)
			se.Line, se.Column = pos.Line, pos.Column
		}
	}
	return se
}
