package native

import (
	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"
)

// Calls of the functions block's functions in the native evaluator. A
// functions block made only of function declarations and of constants
// initialised with function expressions declares names nothing can
// reassign: the job's snippets run in goja only when some function is
// outside the subset, and a native chain has no assignments. Such a
// function of the subset is compiled once per chain and called with a
// frame of its own; recursion (a function reaching itself through its
// calls) stays in goja, since the evaluator has no time budget.

// nativeEnv is what the native compiler knows of a job's functions block.
type nativeEnv struct {
	globals nativeGlobals
	// decls are the block's functions by name; nil when the block holds
	// anything else.
	decls     map[string]ast.Expression
	compiled  map[string]*nfunc
	compiling map[string]bool
}

// nfunc is a compiled function of the functions block.
type nfunc struct {
	params int // slots 0..params-1 of its frame hold the arguments
	slots  int
	body   nexpr
}

func newNativeEnv(functions string) *nativeEnv {
	env := &nativeEnv{globals: globalsLeftAlone(functions), compiled: map[string]*nfunc{}, compiling: map[string]bool{}}
	prg, err := parser.ParseFile(nil, "", functions, 0, parser.WithDisableSourceMaps)
	if err != nil {
		return env
	}
	decls := map[string]ast.Expression{}
	for _, st := range prg.Body {
		switch x := st.(type) {
		case *ast.FunctionDeclaration:
			if x.Function.Name == nil {
				return env
			}
			decls[x.Function.Name.Name.String()] = x.Function
		case *ast.LexicalDeclaration:
			if x.Token != token.CONST {
				return env
			}
			for _, b := range x.List {
				id, ok := b.Target.(*ast.Identifier)
				if !ok {
					return env
				}
				switch fn := b.Initializer.(type) {
				case *ast.ArrowFunctionLiteral:
				case *ast.FunctionLiteral:
					if fn.Name != nil {
						return env // its own name is bound inside it
					}
				default:
					return env
				}
				decls[id.Name.String()] = b.Initializer
			}
		case *ast.EmptyStatement:
		default:
			return env
		}
	}
	env.decls = decls
	// Declarations alone change no builtin: only a declaration of the
	// same name hides one.
	_, m := decls["Math"]
	_, n := decls["Number"]
	_, st := decls["String"]
	env.globals = nativeGlobals{math: !m, number: !n, str: !st, methods: true}
	return env
}

// userFunc compiles the functions block's function name, when name means
// it here and it is of the subset.
func (c *ncompiler) userFunc(name string) (*nfunc, bool) {
	if _, shadowed := c.local(name); shadowed || name == c.param {
		return nil, false
	}
	env := c.env
	decl, ok := env.decls[name]
	if !ok || env.compiling[name] {
		return nil, false
	}
	if f, ok := env.compiled[name]; ok {
		return f, f != nil
	}
	env.compiling[name] = true
	f := compileUserFunc(decl, env)
	delete(env.compiling, name)
	env.compiled[name] = f
	return f, f != nil
}

func compileUserFunc(decl ast.Expression, env *nativeEnv) *nfunc {
	params, expr, block, ok := functionParts(decl)
	if !ok {
		return nil
	}
	sub := &ncompiler{env: env}
	scope := map[string]int{}
	for i, b := range params.List {
		name, ok := paramName(b)
		if _, dup := scope[name]; !ok || dup {
			return nil
		}
		scope[name] = i
	}
	sub.scopes = []map[string]int{scope}
	sub.slots = len(params.List)
	body, ok := sub.body(expr, block)
	if !ok {
		return nil
	}
	return &nfunc{params: len(params.List), slots: sub.slots, body: body}
}

// callUser calls f with the arguments' values in a new frame; missing
// arguments are undefined, extra ones evaluated and dropped.
func callUser(f *nfunc, args []nexpr) nexpr {
	return func(e *neval, p nval) (nval, bool) {
		frame := make([]nval, f.slots)
		for i, a := range args {
			v, ok := a(e, p)
			if !ok {
				return nval{}, false
			}
			if i < f.params {
				frame[i] = v
			}
		}
		saved := e.locals
		e.locals = frame
		v, ok := f.body(e, nval{})
		e.locals = saved
		return v, ok
	}
}
