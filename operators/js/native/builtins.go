package native

import (
	"math"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/token"
)

// Block bodies, template literals and a few builtins for the native
// evaluator (compile.go). Each mirrors what goja does, or gives up.

// nativeGlobals says which builtins the evaluator may assume are the
// engine's own: a job's functions block could redefine them.
type nativeGlobals struct {
	math, number, str, methods bool
}

var (
	mentionsMath   = regexp.MustCompile(`\bMath\b`)
	mentionsNumber = regexp.MustCompile(`\bNumber\b`)
	mentionsString = regexp.MustCompile(`\bString\b`)
	// Ways to change what a string's methods do.
	mentionsProto = regexp.MustCompile(`prototype|__proto__|[sS]etPrototypeOf|defineProperty|Reflect`)
)

// globalsLeftAlone lists the builtins a functions block does not mention.
func globalsLeftAlone(functions string) nativeGlobals {
	return nativeGlobals{
		math:    !mentionsMath.MatchString(functions),
		number:  !mentionsNumber.MatchString(functions),
		str:     !mentionsString.MatchString(functions),
		methods: !mentionsProto.MatchString(functions),
	}
}

// local resolves a constant of an enclosing block: its slot, or -1 while
// it is declared further on (a use is then a ReferenceError in JS).
func (c *ncompiler) local(name string) (int, bool) {
	for i := len(c.scopes) - 1; i >= 0; i-- {
		if slot, ok := c.scopes[i][name]; ok {
			return slot, true
		}
	}
	return 0, false
}

// global says whether name is the engine's global of that name here: not
// a parameter or constant, and left alone by the functions block.
func (c *ncompiler) global(name string, allowed bool) bool {
	_, shadowed := c.local(name)
	return allowed && !shadowed && name != c.param
}

// nstmt runs a statement: done says it returned v.
type nstmt func(e *neval, p nval) (v nval, done, ok bool)

// block compiles a function body of const/let declarations, ifs, returns
// and nested blocks; it returns undefined when it runs off its end.
func (c *ncompiler) block(b *ast.BlockStatement) (nexpr, bool) {
	run, ok := c.stmts(b.List)
	if !ok {
		return nil, false
	}
	return func(e *neval, p nval) (nval, bool) {
		v, _, ok := run(e, p)
		return v, ok
	}, true
}

func (c *ncompiler) stmts(list []ast.Statement) (nstmt, bool) {
	// A block's declarations shadow outer names from its start.
	scope := map[string]int{}
	for _, st := range list {
		if d, ok := st.(*ast.LexicalDeclaration); ok {
			for _, b := range d.List {
				if id, ok := b.Target.(*ast.Identifier); ok {
					scope[id.Name.String()] = -1
				}
			}
		}
	}
	c.scopes = append(c.scopes, scope)
	defer func() { c.scopes = c.scopes[:len(c.scopes)-1] }()
	var parts []nstmt
	for _, st := range list {
		part, ok := c.stmt(st)
		if !ok {
			return nil, false
		}
		if part != nil {
			parts = append(parts, part)
		}
	}
	return func(e *neval, p nval) (nval, bool, bool) {
		for _, part := range parts {
			if v, done, ok := part(e, p); done || !ok {
				return v, done, ok
			}
		}
		return nval{k: nUndef}, false, true
	}, true
}

func (c *ncompiler) stmt(st ast.Statement) (nstmt, bool) {
	switch x := st.(type) {
	case *ast.EmptyStatement:
		return nil, true
	case *ast.ReturnStatement:
		if x.Argument == nil {
			return func(*neval, nval) (nval, bool, bool) { return nval{k: nUndef}, true, true }, true
		}
		v, ok := c.expr(x.Argument)
		if !ok {
			return nil, false
		}
		return func(e *neval, p nval) (nval, bool, bool) {
			r, ok := v(e, p)
			return r, true, ok
		}, true
	case *ast.BlockStatement:
		return c.stmts(x.List)
	case *ast.IfStatement:
		test, ok := c.expr(x.Test)
		if !ok {
			return nil, false
		}
		// A declaration directly under an if is a syntax error; the
		// branches get scopes of their own all the same.
		then, ok := c.stmts([]ast.Statement{x.Consequent})
		if !ok {
			return nil, false
		}
		var alt nstmt
		if x.Alternate != nil {
			if alt, ok = c.stmts([]ast.Statement{x.Alternate}); !ok {
				return nil, false
			}
		}
		return func(e *neval, p nval) (nval, bool, bool) {
			t, ok := test(e, p)
			if !ok {
				return nval{}, false, false
			}
			if truthy(t) {
				return then(e, p)
			}
			if alt != nil {
				return alt(e, p)
			}
			return nval{}, false, true
		}, true
	case *ast.LexicalDeclaration:
		if x.Token != token.CONST && x.Token != token.LET {
			return nil, false
		}
		scope := c.scopes[len(c.scopes)-1]
		var inits []nstmt
		for _, b := range x.List {
			id, ok := b.Target.(*ast.Identifier)
			if !ok {
				return nil, false // destructuring
			}
			name := id.Name.String()
			var init nexpr = constant(nval{k: nUndef})
			if b.Initializer != nil {
				// Compiled before the name is in scope: a use of it in
				// its own initializer is a ReferenceError, not native.
				if init, ok = c.expr(b.Initializer); !ok {
					return nil, false
				}
			}
			if scope[name] >= 0 || name == c.param {
				return nil, false
			}
			slot := c.slots
			c.slots++
			scope[name] = slot
			inits = append(inits, func(e *neval, p nval) (nval, bool, bool) {
				v, ok := init(e, p)
				e.locals[slot] = v
				return nval{}, false, ok
			})
		}
		return func(e *neval, p nval) (nval, bool, bool) {
			for _, in := range inits {
				if _, _, ok := in(e, p); !ok {
					return nval{}, false, false
				}
			}
			return nval{}, false, true
		}, true
	}
	return nil, false
}

// template compiles an untagged template literal.
func (c *ncompiler) template(x *ast.TemplateLiteral) (nexpr, bool) {
	if x.Tag != nil || len(x.Elements) != len(x.Expressions)+1 {
		return nil, false
	}
	strs := make([]string, len(x.Elements))
	for i, el := range x.Elements {
		s := el.Parsed.String()
		if !el.Valid || !utf8.ValidString(s) || strings.ContainsRune(s, utf8.RuneError) {
			return nil, false
		}
		strs[i] = s
	}
	subs := make([]nexpr, len(x.Expressions))
	for i, sub := range x.Expressions {
		var ok bool
		if subs[i], ok = c.expr(sub); !ok {
			return nil, false
		}
	}
	return func(e *neval, p nval) (nval, bool) {
		var b strings.Builder
		b.WriteString(strs[0])
		for i, sub := range subs {
			v, ok := sub(e, p)
			if !ok {
				return nval{}, false
			}
			s, ok := jsToString(v)
			if !ok {
				return nval{}, false
			}
			b.WriteString(s)
			b.WriteString(strs[i+1])
		}
		return nval{k: nStr, s: b.String()}, true
	}, true
}

// jsToString is ToString for primitives whose text needs no float
// formatting.
func jsToString(v nval) (string, bool) {
	switch v.k {
	case nStr:
		return v.s, true
	case nUndef:
		return "undefined", true
	case nNull:
		return "null", true
	case nBool:
		return strconv.FormatBool(v.b), true
	case nNum:
		switch f := v.f; {
		case math.IsNaN(f):
			return "NaN", true
		case math.IsInf(f, 1):
			return "Infinity", true
		case math.IsInf(f, -1):
			return "-Infinity", true
		case f == math.Trunc(f) && math.Abs(f) <= 1<<53:
			return strconv.FormatInt(int64(f), 10), true // -0 too: "0"
		}
	}
	return "", false
}

// call compiles a call of a builtin: Math.floor and friends, Number(x),
// String(x), and string methods.
func (c *ncompiler) call(x *ast.CallExpression) (nexpr, bool) {
	args := make([]nexpr, len(x.ArgumentList))
	for i, a := range x.ArgumentList {
		if _, spread := a.(*ast.SpreadElement); spread {
			return nil, false
		}
		var ok bool
		if args[i], ok = c.expr(a); !ok {
			return nil, false
		}
	}
	switch f := x.Callee.(type) {
	case *ast.Identifier:
		name := f.Name.String()
		if fn, ok := c.userFunc(name); ok {
			return callUser(fn, args), true
		}
		switch {
		case name == "Number" && c.global(name, c.env.globals.number) && len(args) <= 1:
			return c.convert(args, nval{k: nNum}, func(v nval) (nval, bool) {
				n, ok := stringToNumber(v)
				return nval{k: nNum, f: n}, ok
			}), true
		case name == "String" && c.global(name, c.env.globals.str) && len(args) <= 1:
			return c.convert(args, nval{k: nStr}, func(v nval) (nval, bool) {
				s, ok := jsToString(v)
				return nval{k: nStr, s: s}, ok
			}), true
		}
	case *ast.DotExpression:
		name := f.Identifier.Name.String()
		if id, ok := f.Left.(*ast.Identifier); ok && id.Name.String() == "Math" {
			if !c.global("Math", c.env.globals.math) {
				return nil, false
			}
			return c.mathCall(name, args)
		}
		if !c.env.globals.methods {
			return nil, false
		}
		recv, ok := c.expr(f.Left)
		if !ok {
			return nil, false
		}
		return stringMethod(name, recv, args)
	}
	return nil, false
}

// convert is a one-argument conversion; none gives zero.
func (c *ncompiler) convert(args []nexpr, zero nval, conv func(nval) (nval, bool)) nexpr {
	if len(args) == 0 {
		return constant(zero)
	}
	a := args[0]
	return func(e *neval, p nval) (nval, bool) {
		v, ok := a(e, p)
		if !ok {
			return v, false
		}
		return conv(v)
	}
}

// numberArgs evaluates arguments as numbers (ToNumber where it is simple).
func numberArgs(e *neval, p nval, args []nexpr, out []float64) ([]float64, bool) {
	out = out[:0]
	for _, a := range args {
		v, ok := a(e, p)
		if !ok {
			return nil, false
		}
		f, ok := toNumber(v)
		if !ok {
			return nil, false
		}
		out = append(out, f)
	}
	return out, true
}

// mathCall compiles Math.name(args...) as goja computes it.
func (c *ncompiler) mathCall(name string, args []nexpr) (nexpr, bool) {
	var one func(float64) float64
	switch name {
	case "floor":
		one = math.Floor
	case "ceil":
		one = math.Ceil
	case "trunc":
		one = math.Trunc
	case "abs":
		one = math.Abs
	case "sqrt":
		one = math.Sqrt
	case "round":
		one = jsRound
	case "sign":
		// goja answers NaN and zeros with the argument itself (a null,
		// say): only numbers are native.
		return func(e *neval, p nval) (nval, bool) {
			if len(args) == 0 {
				return nval{k: nNum, f: math.NaN()}, true
			}
			v, ok := args[0](e, p)
			if !ok || v.k != nNum {
				return nval{}, false
			}
			if v.f > 0 {
				v.f = 1
			} else if v.f < 0 {
				v.f = -1
			}
			return v, true
		}, true
	case "min", "max":
		isMax := name == "max"
		return func(e *neval, p nval) (nval, bool) {
			var buf [4]float64
			xs, ok := numberArgs(e, p, args, buf[:])
			if !ok {
				return nval{}, false
			}
			r := math.Inf(1)
			if isMax {
				r = math.Inf(-1)
			}
			for _, x := range xs {
				if math.IsNaN(x) {
					return nval{k: nNum, f: math.NaN()}, true
				}
				if isMax {
					r = math.Max(r, x)
				} else {
					r = math.Min(r, x)
				}
			}
			return nval{k: nNum, f: r}, true
		}, true
	default:
		return nil, false
	}
	return func(e *neval, p nval) (nval, bool) {
		var buf [4]float64
		xs, ok := numberArgs(e, p, args, buf[:])
		if !ok {
			return nval{}, false
		}
		x := math.NaN()
		if len(xs) > 0 {
			x = xs[0]
		}
		return nval{k: nNum, f: one(x)}, true
	}, true
}

// jsRound is Math.round: halves round up, -0 and (-0.5, 0) give -0.
func jsRound(f float64) float64 {
	if math.IsNaN(f) || f == 0 {
		return f
	}
	t := math.Trunc(f)
	if f >= 0 {
		if f-t >= 0.5 {
			return t + 1
		}
	} else if t-f > 0.5 {
		return t - 1
	}
	if t == 0 && f < 0 {
		return math.Copysign(0, -1)
	}
	return t
}

// stringMethod compiles recv.name(args...) for a few string methods,
// exact for the strings it accepts: a receiver that is not a string gives
// up (arrays have methods of these names too).
func stringMethod(name string, recv nexpr, args []nexpr) (nexpr, bool) {
	strArgs := func(e *neval, p nval) (string, []string, bool) {
		r, ok := recv(e, p)
		if !ok || r.k != nStr {
			return "", nil, false
		}
		var as []string
		for _, a := range args {
			v, ok := a(e, p)
			if !ok || v.k != nStr {
				return "", nil, false
			}
			as = append(as, v.s)
		}
		return r.s, as, true
	}
	switch name {
	case "startsWith", "endsWith", "includes":
		if len(args) != 1 {
			return nil, false
		}
		test := strings.HasPrefix
		switch name {
		case "endsWith":
			test = strings.HasSuffix
		case "includes":
			test = strings.Contains
		}
		// Over well-formed text a UTF-8 prefix, suffix or substring is
		// one in UTF-16 too.
		return func(e *neval, p nval) (nval, bool) {
			s, as, ok := strArgs(e, p)
			if !ok {
				return nval{}, false
			}
			return nval{k: nBool, b: test(s, as[0])}, true
		}, true
	case "toLowerCase", "toUpperCase", "trim":
		if len(args) != 0 {
			return nil, false
		}
		return func(e *neval, p nval) (nval, bool) {
			s, _, ok := strArgs(e, p)
			if !ok || !isASCII(s) {
				// Unicode case mapping and white space differ between
				// Go and JS.
				return nval{}, false
			}
			switch name {
			case "toLowerCase":
				s = strings.ToLower(s)
			case "toUpperCase":
				s = strings.ToUpper(s)
			default:
				s = strings.Trim(s, " \t\n\v\f\r")
			}
			return nval{k: nStr, s: s}, true
		}, true
	}
	return nil, false
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// utf16Len is the length of well-formed s in UTF-16 code units.
func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n++
		if r > 0xFFFF {
			n++
		}
	}
	return n
}

// decimalLiteral is the StrDecimalLiteral of JS's ToNumber (after the
// white space is trimmed), without the Infinity forms.
var decimalLiteral = regexp.MustCompile(`^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$`)

// stringToNumber is Number(v): ToNumber, with strings read as JS reads
// them where that is plain (ASCII white space, decimal literals,
// Infinity); hex, octal and binary literals and other white space give up.
func stringToNumber(v nval) (float64, bool) {
	if v.k != nStr {
		return toNumber(v)
	}
	if !isASCII(v.s) {
		return 0, false
	}
	s := strings.Trim(v.s, " \t\n\v\f\r")
	switch s {
	case "":
		return 0, true
	case "Infinity", "+Infinity":
		return math.Inf(1), true
	case "-Infinity":
		return math.Inf(-1), true
	}
	if !decimalLiteral.MatchString(s) {
		if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") || strings.HasPrefix(s, "0o") ||
			strings.HasPrefix(s, "0O") || strings.HasPrefix(s, "0b") || strings.HasPrefix(s, "0B") {
			return 0, false
		}
		return math.NaN(), true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		// Out of range: ParseFloat answers ±Inf (or 0) with an error,
		// which is JS's value too.
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return f, true
		}
		return 0, false
	}
	return f, true
}
