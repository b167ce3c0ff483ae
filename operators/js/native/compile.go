package native

import (
	"math"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
)

// compileFunc compiles src, an expression evaluating to a function
// of one record, when it is an arrow function or function expression of at
// most one plain parameter whose body is one expression of the subset or a
// block of const/let declarations, ifs and returns of such expressions.
// The expressions: the parameter and local constants, literals, undefined,
// NaN, Infinity, property reads with a name (r.a, r["a"]), object literals
// with named keys, shorthand properties and spreads, template literals, !
// - + typeof, arithmetic, comparisons, && || ?? and ?:, the builtins of
// builtins.go and calls of the functions block's functions that are
// themselves of the subset (funcs.go). env says which global names
// the job's functions block leaves alone and what functions it declares.
func compileFunc(src string, env *nativeEnv) (nexpr, bool) {
	prg, err := parser.ParseFile(nil, "", "("+src+"\n)", 0, parser.WithDisableSourceMaps)
	if err != nil || len(prg.Body) != 1 {
		return nil, false
	}
	es, ok := prg.Body[0].(*ast.ExpressionStatement)
	if !ok {
		return nil, false
	}
	if fl, named := es.Expression.(*ast.FunctionLiteral); named && fl.Name != nil {
		return nil, false // its name is bound inside it, to itself
	}
	params, expr, block, ok := functionParts(es.Expression)
	if !ok || len(params.List) > 1 {
		return nil, false
	}
	c := &ncompiler{env: env}
	if len(params.List) == 1 {
		if c.param, ok = paramName(params.List[0]); !ok {
			return nil, false
		}
	}
	body, ok := c.body(expr, block)
	if !ok {
		return nil, false
	}
	if c.slots == 0 {
		return body, true
	}
	slots := c.slots
	return func(e *neval, p nval) (nval, bool) {
		if cap(e.locals) < slots {
			e.locals = make([]nval, slots)
		}
		e.locals = e.locals[:slots]
		clear(e.locals)
		return body(e, p)
	}, true
}

// functionParts takes apart an arrow function or function expression of
// the subset's form: plain (non-async, non-generator) with no rest
// parameter; its body is an expression or a block.
func functionParts(x ast.Expression) (params *ast.ParameterList, expr ast.Expression, block *ast.BlockStatement, ok bool) {
	switch fn := x.(type) {
	case *ast.ArrowFunctionLiteral:
		if fn.Async || len(fn.DeclarationList) > 0 {
			return nil, nil, nil, false
		}
		params = fn.ParameterList
		switch b := fn.Body.(type) {
		case *ast.ExpressionBody:
			expr = b.Expression
		case *ast.BlockStatement:
			block = b
		}
	case *ast.FunctionLiteral:
		if fn.Async || fn.Generator || len(fn.DeclarationList) > 0 {
			return nil, nil, nil, false
		}
		params = fn.ParameterList
		block = fn.Body
	}
	if (expr == nil && block == nil) || params == nil || params.Rest != nil {
		return nil, nil, nil, false
	}
	return params, expr, block, true
}

// paramName is a plain parameter's name (no default, no destructuring).
func paramName(b *ast.Binding) (string, bool) {
	id, ok := b.Target.(*ast.Identifier)
	if !ok || b.Initializer != nil {
		return "", false
	}
	name := id.Name.String()
	return name, name != "arguments" && name != "eval"
}

type ncompiler struct {
	param string
	env   *nativeEnv
	// scopes are the blocks' constants, innermost last: name → slot in
	// neval.locals.
	scopes []map[string]int
	slots  int
}

// body compiles a function body: an expression or a block.
func (c *ncompiler) body(expr ast.Expression, block *ast.BlockStatement) (nexpr, bool) {
	if expr != nil {
		return c.expr(expr)
	}
	return c.block(block)
}

func constant(v nval) nexpr { return func(*neval, nval) (nval, bool) { return v, true } }

func (c *ncompiler) expr(e ast.Expression) (nexpr, bool) {
	switch x := e.(type) {
	case *ast.Identifier:
		name := x.Name.String()
		if slot, ok := c.local(name); ok {
			if slot < 0 {
				return nil, false // used before its declaration
			}
			return func(e *neval, _ nval) (nval, bool) { return e.locals[slot], true }, true
		}
		switch {
		case name == c.param && name != "":
			return func(_ *neval, p nval) (nval, bool) { return p, true }, true
		case name == "undefined":
			return constant(nval{k: nUndef}), true
		case name == "NaN":
			return constant(nval{k: nNum, f: math.NaN()}), true
		case name == "Infinity":
			return constant(nval{k: nNum, f: math.Inf(1)}), true
		}
		return nil, false
	case *ast.NullLiteral:
		return constant(nval{k: nNull}), true
	case *ast.BooleanLiteral:
		return constant(nval{k: nBool, b: x.Value}), true
	case *ast.StringLiteral:
		s, ok := literalString(x)
		if !ok {
			return nil, false
		}
		return constant(nval{k: nStr, s: s}), true
	case *ast.NumberLiteral:
		switch n := x.Value.(type) {
		case int64:
			if n > 1<<53 || n < -(1<<53) {
				return nil, false
			}
			return constant(nval{k: nNum, f: float64(n)}), true
		case float64:
			return constant(nval{k: nNum, f: n}), true
		}
		return nil, false
	case *ast.DotExpression:
		return c.member(x.Left, x.Identifier.Name.String())
	case *ast.BracketExpression:
		s, ok := x.Member.(*ast.StringLiteral)
		if !ok {
			return nil, false
		}
		name, ok := literalString(s)
		if !ok {
			return nil, false
		}
		return c.member(x.Left, name)
	case *ast.ObjectLiteral:
		return c.object(x)
	case *ast.UnaryExpression:
		if x.Postfix {
			return nil, false
		}
		return c.unary(x)
	case *ast.BinaryExpression:
		return c.binary(x)
	case *ast.TemplateLiteral:
		return c.template(x)
	case *ast.CallExpression:
		return c.call(x)
	case *ast.ConditionalExpression:
		t, ok1 := c.expr(x.Test)
		a, ok2 := c.expr(x.Consequent)
		b, ok3 := c.expr(x.Alternate)
		if !ok1 || !ok2 || !ok3 {
			return nil, false
		}
		return func(e *neval, p nval) (nval, bool) {
			v, ok := t(e, p)
			if !ok {
				return v, false
			}
			if truthy(v) {
				return a(e, p)
			}
			return b(e, p)
		}, true
	}
	return nil, false
}

// literalString is a string literal's value, unless it holds something
// other than well-formed text (lone surrogates).
func literalString(x *ast.StringLiteral) (string, bool) {
	s := x.Value.String()
	if !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) {
		return "", false
	}
	return s, true
}

// member compiles a read of property name of left.
func (c *ncompiler) member(left ast.Expression, name string) (nexpr, bool) {
	if protoNames[name] {
		return nil, false
	}
	l, ok := c.expr(left)
	if !ok {
		return nil, false
	}
	if name == "length" {
		// Of a string: its length in UTF-16 code units.
		return func(e *neval, p nval) (nval, bool) {
			o, ok := l(e, p)
			if !ok {
				return nval{}, false
			}
			switch o.k {
			case nStr:
				return nval{k: nNum, f: float64(utf16Len(o.s))}, true
			case nObj:
				return e.get(o.o, name)
			}
			return nval{}, false
		}, true
	}
	return func(e *neval, p nval) (nval, bool) {
		o, ok := l(e, p)
		if !ok || o.k != nObj {
			// Properties of other primitives and of arrays, and the
			// TypeError of null and undefined, are goja's.
			return nval{}, false
		}
		return e.get(o.o, name)
	}, true
}

// object compiles an object literal.
func (c *ncompiler) object(x *ast.ObjectLiteral) (nexpr, bool) {
	type part struct {
		name   string
		val    nexpr
		spread bool
	}
	var parts []part
	for _, p := range x.Value {
		switch q := p.(type) {
		case *ast.PropertyKeyed:
			if q.Kind != ast.PropertyKindValue || q.Computed {
				return nil, false
			}
			k, ok := q.Key.(*ast.StringLiteral)
			if !ok {
				return nil, false
			}
			name, ok := literalString(k)
			if !ok || name == "__proto__" {
				return nil, false
			}
			if _, isFn := q.Value.(*ast.FunctionLiteral); isFn {
				return nil, false
			}
			v, ok := c.expr(q.Value)
			if !ok {
				return nil, false
			}
			parts = append(parts, part{name: name, val: v})
		case *ast.PropertyShort:
			if q.Initializer != nil {
				return nil, false
			}
			v, ok := c.expr(&q.Name)
			if !ok {
				return nil, false
			}
			parts = append(parts, part{name: q.Name.Name.String(), val: v})
		case *ast.SpreadElement:
			v, ok := c.expr(q.Expression)
			if !ok {
				return nil, false
			}
			parts = append(parts, part{val: v, spread: true})
		default:
			return nil, false
		}
	}
	return func(e *neval, p nval) (nval, bool) {
		o := &nobj{isLit: true, lit: make([]nprop, 0, len(parts))}
		for _, pt := range parts {
			v, ok := pt.val(e, p)
			if !ok {
				return nval{}, false
			}
			if !pt.spread {
				o.set(pt.name, v)
				continue
			}
			switch v.k {
			case nUndef, nNull:
			case nObj:
				if !e.spread(o, v.o) {
					return nval{}, false
				}
			default:
				// Spreading strings (by character) and other values.
				return nval{}, false
			}
		}
		return nval{k: nObj, o: o}, true
	}, true
}
