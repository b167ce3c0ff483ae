package native

import (
	"math"

	"github.com/dop251/goja/ast"
	"github.com/dop251/goja/token"
)

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
