package js

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/parser"
	"github.com/dop251/goja/token"
)

// Native evaluation of simple record functions.
//
// Most record functions in job files are one expression over the record's
// fields: `r => ({page: r.page, ms: r.ms})`, `r => r.status === 200`,
// `r => r.page`. A chain whose every stage is such a function (see
// compileNative for the subset) also gets a Go evaluator of it, which runs
// the batch without entering the JS engine: field reads straight from the
// raw JSON, no JS objects built, no calls into goja.
//
// The evaluator gives the same results as goja or none: whatever it does
// not model exactly — a property of null or undefined (a TypeError in JS),
// a comparison of a number with a string, a key that is not a string or an
// integer, an object read through its prototype, an input that is not a
// JSON object or a plain Go map — makes it give up on the record, and the
// whole batch then runs in goja as it would have without it. Errors,
// on_error policies and dead letters therefore always come from goja. The
// evaluator has no loops or calls, so it needs no time budget.
// TestNativeEquivalence checks it against goja on random functions and
// records.

// nkind is the type of a natively evaluated value.
type nkind uint8

const (
	nUndef nkind = iota
	nNull
	nBool
	nNum
	nStr
	nObj
	nArr
)

// nval is a JS value in the native evaluator.
type nval struct {
	k nkind
	b bool
	f float64
	s string
	o *nobj
}

// nobj is an object or array value: a JSON object or array of the record's
// bytes, a Go map or slice of a record that is not raw JSON, or an object
// a function built.
type nobj struct {
	raw    []byte // a JSON object or array, exactly
	fields []rawField
	index  bool // fields holds raw's top-level fields
	gomap  map[string]any
	goarr  []any
	lit    []nprop
	idx    map[string]int // name → index in lit, for wide literals
	isLit  bool
}

type nprop struct {
	name string
	v    nval
}

// nexpr evaluates an expression with the function's parameter bound to p;
// ok false means the evaluator cannot give the result goja would.
type nexpr func(e *neval, p nval) (v nval, ok bool)

// neval is the per-task state of the native evaluator.
type neval struct {
	// dirty: the record's nested objects or arrays were read; goja would
	// have made JS objects of them, so the record's bytes no longer stand
	// for its JS object (rawObject.dirty).
	dirty bool
	// scratch for the record's top-level fields
	fields []rawField
	// the running function's constants
	locals []nval
}

// protoNames are properties every object inherits from Object.prototype:
// reading one that the object lacks gives a function, which the evaluator
// does not model.
var protoNames = map[string]bool{
	"constructor": true, "__proto__": true, "hasOwnProperty": true, "isPrototypeOf": true,
	"propertyIsEnumerable": true, "toString": true, "valueOf": true, "toLocaleString": true,
	"__defineGetter__": true, "__defineSetter__": true, "__lookupGetter__": true, "__lookupSetter__": true,
}

// nativeStage is a compiled stage function.
type nativeStage struct {
	kind Kind
	fn   nexpr
}

// compileNative returns a Go evaluator for each stage of spec, or nil when
// any stage is outside the subset.
func compileNative(spec ChainSpec) []nativeStage {
	for _, f := range spec.Project {
		if protoNames[f] {
			return nil
		}
	}
	env := newNativeEnv(spec.Functions)
	out := make([]nativeStage, len(spec.Stages))
	for i, st := range spec.Stages {
		fn, ok := compileNativeFunc(st.Src, env)
		if !ok {
			return nil
		}
		out[i] = nativeStage{kind: st.Kind, fn: fn}
	}
	return out
}

// compileNativeFunc compiles src, an expression evaluating to a function
// of one record, when it is an arrow function or function expression of at
// most one plain parameter whose body is one expression of the subset or a
// block of const/let declarations, ifs and returns of such expressions.
// The expressions: the parameter and local constants, literals, undefined,
// NaN, Infinity, property reads with a name (r.a, r["a"]), object literals
// with named keys, shorthand properties and spreads, template literals, !
// - + typeof, arithmetic, comparisons, && || ?? and ?:, the builtins of
// native_builtins.go and calls of the functions block's functions that are
// themselves of the subset (native_funcs.go). env says which global names
// the job's functions block leaves alone and what functions it declares.
func compileNativeFunc(src string, env *nativeEnv) (nexpr, bool) {
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

// set defines property name of a literal object; a repeated name keeps its
// place and takes the new value, as in JS.
func (o *nobj) set(name string, v nval) {
	if o.idx != nil {
		if i, ok := o.idx[name]; ok {
			o.lit[i].v = v
			return
		}
		o.idx[name] = len(o.lit)
		o.lit = append(o.lit, nprop{name, v})
		return
	}
	for i := range o.lit {
		if o.lit[i].name == name {
			o.lit[i].v = v
			return
		}
	}
	o.lit = append(o.lit, nprop{name, v})
	if len(o.lit) >= 16 {
		// Wide objects (a spread record) get an index, so that building
		// one stays linear in its fields.
		o.idx = make(map[string]int, 2*len(o.lit))
		for i, p := range o.lit {
			o.idx[p.name] = i
		}
	}
}

// lookup finds property name of a literal object.
func (o *nobj) lookup(name string) (nval, bool) {
	if o.idx != nil {
		i, ok := o.idx[name]
		if !ok {
			return nval{}, false
		}
		return o.lit[i].v, true
	}
	for i := range o.lit {
		if o.lit[i].name == name {
			return o.lit[i].v, true
		}
	}
	return nval{}, false
}

// spread copies the own properties of src into the literal o.
func (e *neval) spread(o, src *nobj) bool {
	switch {
	case src.isLit:
		for _, p := range src.lit {
			o.set(p.name, p.v)
		}
	case src.gomap != nil:
		for k := range src.gomap {
			v, ok := e.get(src, k)
			if !ok {
				return false
			}
			o.set(k, v)
		}
	case src.raw != nil:
		if !e.indexed(src) {
			return false
		}
		// From the last field back, skipping keys already seen: a
		// repeated key's last value counts, as in JSON.parse, and only
		// that one is read (as goja reads it).
		ro := rawObject{b: src.raw, fields: src.fields}
		seen := nobj{}
		for i := len(src.fields) - 1; i >= 0; i-- {
			f := &src.fields[i]
			k := ro.key(f)
			if _, dup := seen.lookup(k); dup {
				continue
			}
			seen.set(k, nval{})
			v, ok := e.value(src, f)
			if !ok {
				return false
			}
			o.set(k, v)
		}
	default:
		return false
	}
	return true
}

func (c *ncompiler) unary(x *ast.UnaryExpression) (nexpr, bool) {
	a, ok := c.expr(x.Operand)
	if !ok {
		return nil, false
	}
	switch x.Operator {
	case token.NOT:
		return func(e *neval, p nval) (nval, bool) {
			v, ok := a(e, p)
			return nval{k: nBool, b: !truthy(v)}, ok
		}, true
	case token.MINUS, token.PLUS:
		neg := x.Operator == token.MINUS
		return func(e *neval, p nval) (nval, bool) {
			v, ok := a(e, p)
			if !ok {
				return nval{}, false
			}
			f, ok := toNumber(v)
			if !ok {
				return nval{}, false
			}
			if neg {
				f = -f
			}
			return nval{k: nNum, f: f}, true
		}, true
	case token.TYPEOF:
		return func(e *neval, p nval) (nval, bool) {
			v, ok := a(e, p)
			if !ok {
				return v, false
			}
			return nval{k: nStr, s: typeOf(v)}, true
		}, true
	}
	return nil, false
}

func typeOf(v nval) string {
	switch v.k {
	case nUndef:
		return "undefined"
	case nBool:
		return "boolean"
	case nNum:
		return "number"
	case nStr:
		return "string"
	}
	return "object"
}

func (c *ncompiler) binary(x *ast.BinaryExpression) (nexpr, bool) {
	a, ok1 := c.expr(x.Left)
	b, ok2 := c.expr(x.Right)
	if !ok1 || !ok2 {
		return nil, false
	}
	switch x.Operator {
	case token.LOGICAL_AND, token.LOGICAL_OR, token.COALESCE:
		op := x.Operator
		return func(e *neval, p nval) (nval, bool) {
			l, ok := a(e, p)
			if !ok {
				return l, false
			}
			switch op {
			case token.LOGICAL_AND:
				if !truthy(l) {
					return l, true
				}
			case token.LOGICAL_OR:
				if truthy(l) {
					return l, true
				}
			default:
				if l.k != nUndef && l.k != nNull {
					return l, true
				}
			}
			return b(e, p)
		}, true
	}
	var op func(l, r nval) (nval, bool)
	switch x.Operator {
	case token.STRICT_EQUAL:
		op = func(l, r nval) (nval, bool) { eq, ok := strictEqual(l, r); return nval{k: nBool, b: eq}, ok }
	case token.STRICT_NOT_EQUAL:
		op = func(l, r nval) (nval, bool) { eq, ok := strictEqual(l, r); return nval{k: nBool, b: !eq}, ok }
	case token.EQUAL:
		op = func(l, r nval) (nval, bool) { eq, ok := looseEqual(l, r); return nval{k: nBool, b: eq}, ok }
	case token.NOT_EQUAL:
		op = func(l, r nval) (nval, bool) { eq, ok := looseEqual(l, r); return nval{k: nBool, b: !eq}, ok }
	case token.LESS, token.LESS_OR_EQUAL, token.GREATER, token.GREATER_OR_EQUAL:
		cmp := x.Operator
		op = func(l, r nval) (nval, bool) { return compare(cmp, l, r) }
	case token.PLUS:
		op = func(l, r nval) (nval, bool) {
			if l.k == nStr && r.k == nStr {
				return nval{k: nStr, s: l.s + r.s}, true
			}
			// Without strings (number formatting) or objects (ToPrimitive)
			// + is numeric.
			x, ok1 := toNumber(l)
			y, ok2 := toNumber(r)
			if !ok1 || !ok2 {
				return nval{}, false
			}
			return nval{k: nNum, f: x + y}, true
		}
	case token.MINUS, token.MULTIPLY, token.SLASH, token.REMAINDER:
		arith := x.Operator
		op = func(l, r nval) (nval, bool) {
			x, ok1 := toNumber(l)
			y, ok2 := toNumber(r)
			if !ok1 || !ok2 {
				return nval{}, false
			}
			var f float64
			switch arith {
			case token.MINUS:
				f = x - y
			case token.MULTIPLY:
				f = x * y
				if f == 0 && math.Signbit(f) && isInt(x) && isInt(y) {
					// goja multiplies two integers as integers: its
					// zero has no sign (but for 0 * -1), where JS's is
					// -0. Which of its two number forms goja holds a
					// value in is not tracked here.
					return nval{}, false
				}
			case token.SLASH:
				f = x / y
			default:
				f = jsRemainder(x, y)
			}
			return nval{k: nNum, f: f}, true
		}
	default:
		return nil, false
	}
	return func(e *neval, p nval) (nval, bool) {
		l, ok := a(e, p)
		if !ok {
			return l, false
		}
		r, ok := b(e, p)
		if !ok {
			return r, false
		}
		return op(l, r)
	}, true
}

// isInt reports whether f is an integer other than -0, as goja may hold
// it in its integer form.
func isInt(f float64) bool {
	return f == math.Trunc(f) && !(f == 0 && math.Signbit(f)) && math.Abs(f) <= 1<<53
}

// jsRemainder is JS's %: the sign of the dividend, NaN for a zero divisor
// or an infinite dividend, the dividend for an infinite divisor.
func jsRemainder(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || math.IsInf(a, 0) || b == 0 {
		return math.NaN()
	}
	if math.IsInf(b, 0) {
		return a
	}
	return math.Mod(a, b)
}

// toNumber is JS's ToNumber for the values it is simple for: strings
// (which need JS's number grammar) and objects (ToPrimitive) are not.
func toNumber(v nval) (float64, bool) {
	switch v.k {
	case nNum:
		return v.f, true
	case nUndef:
		return math.NaN(), true
	case nNull:
		return 0, true
	case nBool:
		if v.b {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func truthy(v nval) bool {
	switch v.k {
	case nUndef, nNull:
		return false
	case nBool:
		return v.b
	case nNum:
		return v.f != 0 && !math.IsNaN(v.f)
	case nStr:
		return v.s != ""
	}
	return true
}

// strictEqual is ===; objects compare by identity, which the evaluator
// does not track (ok false).
func strictEqual(l, r nval) (eq, ok bool) {
	if l.k != r.k {
		return false, true
	}
	switch l.k {
	case nUndef, nNull:
		return true, true
	case nBool:
		return l.b == r.b, true
	case nNum:
		return l.f == r.f, true
	case nStr:
		return l.s == r.s, true
	}
	return false, false
}

// looseEqual is == where the conversions are simple: null and undefined,
// the same types, booleans against numbers.
func looseEqual(l, r nval) (eq, ok bool) {
	ln, rn := l.k == nUndef || l.k == nNull, r.k == nUndef || r.k == nNull
	switch {
	case ln && rn:
		return true, true
	case ln || rn:
		return false, true
	case l.k == r.k:
		return strictEqual(l, r)
	case l.k == nBool && r.k == nNum, l.k == nNum && r.k == nBool:
		x, _ := toNumber(l)
		y, _ := toNumber(r)
		return x == y, true
	}
	return false, false
}

// compare is < <= > >= of two strings whose UTF-8 byte order is their
// UTF-16 order (no characters outside the BMP), or of two values that
// convert to numbers simply.
func compare(op token.Token, l, r nval) (nval, bool) {
	var lt, gt bool
	switch {
	case l.k == nStr && r.k == nStr:
		if !bmpOnly(l.s) || !bmpOnly(r.s) {
			return nval{}, false
		}
		lt, gt = l.s < r.s, l.s > r.s
	default:
		x, ok1 := toNumber(l)
		y, ok2 := toNumber(r)
		if !ok1 || !ok2 {
			return nval{}, false
		}
		if math.IsNaN(x) || math.IsNaN(y) {
			return nval{k: nBool}, true
		}
		lt, gt = x < y, x > y
	}
	var b bool
	switch op {
	case token.LESS:
		b = lt
	case token.LESS_OR_EQUAL:
		b = !gt
	case token.GREATER:
		b = gt
	default:
		b = !lt
	}
	return nval{k: nBool, b: b}, true
}

func bmpOnly(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0xF0 {
			return false
		}
	}
	return true
}

// get reads property name of o.
func (e *neval) get(o *nobj, name string) (nval, bool) {
	switch {
	case o.isLit:
		if v, ok := o.lookup(name); ok {
			return v, true
		}
	case o.gomap != nil:
		if x, ok := o.gomap[name]; ok {
			return e.fromGo(x)
		}
	case o.raw != nil:
		if !e.indexed(o) {
			return nval{}, false
		}
		ro := rawObject{b: o.raw, fields: o.fields}
		if f := ro.find(name); f != nil {
			return e.value(o, f)
		}
	default:
		return nval{}, false
	}
	if protoNames[name] {
		return nval{}, false
	}
	return nval{k: nUndef}, true
}

// indexed indexes a raw object's fields on first use (validated when the
// record was).
func (e *neval) indexed(o *nobj) bool {
	if o.index {
		return true
	}
	fields, err := indexObject(o.raw, 0, nil)
	if err != nil {
		return false
	}
	o.fields, o.index = fields, true
	return true
}

// value decodes a raw field's value.
func (e *neval) value(o *nobj, f *rawField) (nval, bool) {
	b := o.raw[f.vs:f.ve]
	switch b[0] {
	case '{':
		e.dirty = true
		return nval{k: nObj, o: &nobj{raw: b}}, true
	case '[':
		e.dirty = true
		return nval{k: nArr, o: &nobj{raw: b}}, true
	}
	x, _ := decodeGoAt(o.raw[:f.ve], int(f.vs))
	return e.fromGo(x)
}

// fromGo converts a value of a Go record (or a decoded JSON primitive) as
// goja's ToValue would see it.
func (e *neval) fromGo(x any) (nval, bool) {
	switch y := x.(type) {
	case nil:
		return nval{k: nNull}, true
	case bool:
		return nval{k: nBool, b: y}, true
	case string:
		return nval{k: nStr, s: y}, true
	case float64:
		return nval{k: nNum, f: y}, true
	case float32:
		return nval{k: nNum, f: float64(y)}, true
	case int64:
		return intVal(y)
	case int:
		return intVal(int64(y))
	case int32:
		return nval{k: nNum, f: float64(y)}, true
	case map[string]any:
		if y == nil {
			return nval{}, false
		}
		e.dirty = true
		return nval{k: nObj, o: &nobj{gomap: y}}, true
	case []any:
		if y == nil {
			return nval{}, false
		}
		e.dirty = true
		return nval{k: nArr, o: &nobj{goarr: y}}, true
	}
	return nval{}, false
}

// intVal is an integer that a JS number holds exactly.
func intVal(n int64) (nval, bool) {
	if n > 1<<53 || n < -(1<<53) {
		return nval{}, false
	}
	return nval{k: nNum, f: float64(n)}, true
}

// export converts a value as exportValue converts its JS counterpart.
func (e *neval) export(v nval) any {
	switch v.k {
	case nBool:
		return v.b
	case nNum:
		if f := v.f; (f != 0 || !math.Signbit(f)) && f == math.Trunc(f) && f >= -(1<<53) && f <= 1<<53 {
			return int64(f)
		}
		return v.f
	case nStr:
		return v.s
	case nObj, nArr:
		o := v.o
		switch {
		case o.isLit:
			m := make(map[string]any, len(o.lit))
			for _, p := range o.lit {
				m[p.name] = e.export(p.v)
			}
			return m
		case o.gomap != nil:
			return o.gomap
		case o.goarr != nil:
			return o.goarr
		case o.raw != nil:
			return decodeGo(o.raw, 0)
		}
	}
	return nil
}

// toKey is the driver's key normalisation where it needs no number
// formatting beyond integers.
func toKeyNative(v nval) (string, bool) {
	switch v.k {
	case nStr:
		return v.s, true
	case nBool:
		return strconv.FormatBool(v.b), true
	case nNum:
		if v.f == math.Trunc(v.f) && math.Abs(v.f) <= 1<<53 {
			return strconv.FormatInt(int64(v.f), 10), true
		}
	}
	return "", false
}

// toMsNative is the driver's toMs for numbers and digit strings.
func toMsNative(v nval) (int64, bool) {
	f := v.f
	switch v.k {
	case nNum:
	case nStr:
		s := v.s
		digits := strings.TrimPrefix(s, "-")
		if len(digits) == 0 || len(digits) > 15 || strings.Trim(digits, "0123456789") != "" {
			return 0, false
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, false
		}
		f = float64(n)
	default:
		return 0, false
	}
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		return 0, false
	}
	return int64(math.Floor(f)), true
}
