package functions

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/runnel-dev/runnel/operators"
)

// Filter is a compiled set of filter criteria: Lambda's event filtering
// patterns (the EventBridge pattern syntax). A record passes when any one
// pattern matches it; an empty Filter passes every record.
//
// A pattern is a JSON object whose keys name fields of the record and
// whose values are either a nested object (the field must be an object
// matching it) or a non-empty list of matchers, any one of which must
// match the field's value. When the value is an array, any element may
// match. Matchers:
//
//	"text", 5, true, null       the value equals it (numbers numerically)
//	{"prefix": "s"}              a string starting with s
//	{"suffix": "s"}              a string ending with s
//	{"equals-ignore-case": "s"}  a string equal to s up to case
//	{"numeric": [">", 0, "<=", 5]}  a number in the range (=, <, <=, >, >=)
//	{"exists": true|false}       the field is present (absent)
//	{"anything-but": x}          anything but x: a value, a list of values,
//	                             or {"prefix": s} / {"suffix": s}
//
// "$or": [pattern, ...] at any level matches when one of the patterns
// does. A field a pattern names that the record lacks matches only
// {"exists": false}.
type Filter struct {
	patterns []*pattern
}

// pattern is one compiled object pattern: every field must match, and
// then one alternative of every $or.
type pattern struct {
	fields []fieldPattern
	or     [][]*pattern
}

type fieldPattern struct {
	name     string
	sub      *pattern  // a nested object pattern, or
	matchers []matcher // a list of matchers
}

// matcher matches one value; present is false when the field is absent.
// whole marks exists, which looks at the field itself rather than at
// each element of an array value.
type matcher struct {
	match func(v any, present bool) bool
	whole bool
}

// ErrFilter marks an invalid filter pattern.
var ErrFilter = errors.New("functions: invalid filter pattern")

func filterErr(path, format string, args ...any) error {
	if path == "" {
		return fmt.Errorf("%w: %s", ErrFilter, fmt.Sprintf(format, args...))
	}
	return fmt.Errorf("%w: %s: %s", ErrFilter, path, fmt.Sprintf(format, args...))
}

// ParseFilter compiles patterns, each the JSON text of one pattern.
func ParseFilter(patterns ...string) (*Filter, error) {
	f := &Filter{}
	for i, src := range patterns {
		dec := json.NewDecoder(strings.NewReader(src))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			return nil, filterErr("", "pattern %d is not JSON: %v", i+1, err)
		}
		if dec.More() {
			return nil, filterErr("", "pattern %d has text after its object", i+1)
		}
		obj, ok := v.(map[string]any)
		if !ok {
			return nil, filterErr("", "pattern %d must be a JSON object", i+1)
		}
		p, err := compilePattern(obj, "")
		if err != nil {
			return nil, err
		}
		f.patterns = append(f.patterns, p)
	}
	return f, nil
}

// Empty reports whether the filter passes everything.
func (f *Filter) Empty() bool { return f == nil || len(f.patterns) == 0 }

// Match reports whether rec (a JSON-like value) passes the filter.
func (f *Filter) Match(rec any) bool {
	if f.Empty() {
		return true
	}
	for _, p := range f.patterns {
		if p.match(rec) {
			return true
		}
	}
	return false
}

func compilePattern(obj map[string]any, path string) (*pattern, error) {
	if len(obj) == 0 {
		return nil, filterErr(path, "an empty pattern object matches nothing useful; remove it")
	}
	p := &pattern{}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		at := joinPath(path, k)
		switch v := obj[k].(type) {
		case map[string]any:
			if k == "$or" {
				return nil, filterErr(at, "$or takes a list of patterns")
			}
			sub, err := compilePattern(v, at)
			if err != nil {
				return nil, err
			}
			p.fields = append(p.fields, fieldPattern{name: k, sub: sub})
		case []any:
			if len(v) == 0 {
				return nil, filterErr(at, "an empty list matches nothing")
			}
			if k == "$or" {
				if len(v) < 2 {
					return nil, filterErr(at, "$or needs at least two patterns")
				}
				var alts []*pattern
				for i, x := range v {
					o, ok := x.(map[string]any)
					if !ok {
						return nil, filterErr(fmt.Sprintf("%s[%d]", at, i), "must be a pattern object")
					}
					alt, err := compilePattern(o, fmt.Sprintf("%s[%d]", at, i))
					if err != nil {
						return nil, err
					}
					alts = append(alts, alt)
				}
				p.or = append(p.or, alts)
				continue
			}
			fp := fieldPattern{name: k}
			for i, x := range v {
				m, err := compileMatcher(x, fmt.Sprintf("%s[%d]", at, i))
				if err != nil {
					return nil, err
				}
				fp.matchers = append(fp.matchers, m)
			}
			p.fields = append(p.fields, fp)
		default:
			return nil, filterErr(at, "must be a list of matchers or a nested pattern object, e.g. [\"value\"]")
		}
	}
	return p, nil
}

func joinPath(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func (p *pattern) match(v any) bool {
	obj, _ := v.(map[string]any)
	for _, f := range p.fields {
		x, present := obj[f.name]
		if f.sub != nil {
			if !present || !f.sub.match(x) {
				return false
			}
			continue
		}
		if !matchAny(f.matchers, x, present) {
			return false
		}
	}
	for _, alts := range p.or {
		if !slices.ContainsFunc(alts, func(a *pattern) bool { return a.match(v) }) {
			return false
		}
	}
	return true
}

// matchAny applies matchers to a field's value; an array value matches
// when one of its elements does.
func matchAny(ms []matcher, v any, present bool) bool {
	arr, isArr := v.([]any)
	for _, m := range ms {
		if m.whole || !isArr {
			if m.match(v, present) {
				return true
			}
			continue
		}
		for _, e := range arr {
			if m.match(e, true) {
				return true
			}
		}
	}
	return false
}

func compileMatcher(x any, at string) (matcher, error) {
	switch x := x.(type) {
	case nil, string, bool, json.Number:
		return matcher{match: equals(x)}, nil
	case map[string]any:
		if len(x) != 1 {
			return matcher{}, filterErr(at, "a matcher object has exactly one key, e.g. {\"prefix\": \"a\"}")
		}
		for op, arg := range x {
			return compileOperator(op, arg, at+"."+op)
		}
	}
	return matcher{}, filterErr(at, "must be a value or a matcher object")
}

func compileOperator(op string, arg any, at string) (matcher, error) {
	var f func(any, bool) bool
	var err error
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		s, ok := arg.(string)
		if !ok {
			return matcher{}, filterErr(at, "takes a string")
		}
		return matcher{match: stringMatcher(op, s)}, nil
	case "exists":
		want, ok := arg.(bool)
		if !ok {
			return matcher{}, filterErr(at, "takes true or false")
		}
		return matcher{match: func(_ any, present bool) bool { return present == want }, whole: true}, nil
	case "numeric":
		f, err = compileNumeric(arg, at)
		return matcher{match: f}, err
	case "anything-but":
		f, err = compileAnythingBut(arg, at)
		return matcher{match: f}, err
	}
	return matcher{}, filterErr(at, "unknown matcher %q (known: prefix, suffix, equals-ignore-case, numeric, exists, anything-but)", op)
}

func stringMatcher(op, s string) func(any, bool) bool {
	return func(v any, present bool) bool {
		str, ok := v.(string)
		if !present || !ok {
			return false
		}
		switch op {
		case "prefix":
			return strings.HasPrefix(str, s)
		case "suffix":
			return strings.HasSuffix(str, s)
		default:
			return strings.EqualFold(str, s)
		}
	}
}

// equals matches a value equal to lit; numbers compare as numbers.
func equals(lit any) func(any, bool) bool {
	if n, ok := lit.(json.Number); ok {
		f, err := n.Float64()
		if err != nil {
			return func(any, bool) bool { return false }
		}
		return func(v any, present bool) bool {
			g, ok := number(v)
			return present && ok && g == f
		}
	}
	return func(v any, present bool) bool {
		if !present {
			return false
		}
		if _, isArr := v.([]any); isArr {
			return false
		}
		if _, isObj := v.(map[string]any); isObj {
			return false
		}
		return v == lit
	}
}

// number reads a JSON-like number: any Go number or a json.Number, as
// operators.Value.Float reads them; a numeric string is not a number here.
func number(v any) (float64, bool) {
	if _, isString := v.(string); isString {
		return 0, false
	}
	return operators.ValueOf(v).Float()
}

func compileNumeric(arg any, at string) (func(any, bool) bool, error) {
	list, ok := arg.([]any)
	if !ok || len(list) == 0 || len(list)%2 != 0 || len(list) > 4 {
		return nil, filterErr(at, "takes [OP, N] or [OP, N, OP, N], e.g. [\">\", 0, \"<=\", 5]")
	}
	type bound struct {
		op string
		n  float64
	}
	var bounds []bound
	for i := 0; i < len(list); i += 2 {
		op, ok := list[i].(string)
		if !ok {
			return nil, filterErr(at, "element %d must be an operator (=, <, <=, >, >=)", i)
		}
		switch op {
		case "=", "<", "<=", ">", ">=":
		default:
			return nil, filterErr(at, "%q is not an operator (=, <, <=, >, >=)", op)
		}
		n, ok := list[i+1].(json.Number)
		if !ok {
			return nil, filterErr(at, "element %d must be a number", i+1)
		}
		f, err := n.Float64()
		if err != nil || math.IsInf(f, 0) {
			return nil, filterErr(at, "%s is out of range", n)
		}
		bounds = append(bounds, bound{op, f})
	}
	if len(bounds) == 2 && (bounds[0].op == "=" || bounds[1].op == "=") {
		return nil, filterErr(at, "= stands alone: [\"=\", N]")
	}
	return func(v any, present bool) bool {
		f, ok := number(v)
		if !present || !ok {
			return false
		}
		for _, b := range bounds {
			var in bool
			switch b.op {
			case "=":
				in = f == b.n
			case "<":
				in = f < b.n
			case "<=":
				in = f <= b.n
			case ">":
				in = f > b.n
			case ">=":
				in = f >= b.n
			}
			if !in {
				return false
			}
		}
		return true
	}, nil
}

func compileAnythingBut(arg any, at string) (func(any, bool) bool, error) {
	var not []func(any, bool) bool
	switch a := arg.(type) {
	case []any:
		if len(a) == 0 {
			return nil, filterErr(at, "an empty list excludes nothing")
		}
		for i, x := range a {
			switch x.(type) {
			case string, json.Number, bool, nil:
				not = append(not, equals(x))
			default:
				return nil, filterErr(fmt.Sprintf("%s[%d]", at, i), "must be a value")
			}
		}
	case map[string]any:
		if len(a) != 1 {
			return nil, filterErr(at, "takes {\"prefix\": s} or {\"suffix\": s}")
		}
		for op, s := range a {
			str, ok := s.(string)
			if (op != "prefix" && op != "suffix") || !ok {
				return nil, filterErr(at, "takes {\"prefix\": s} or {\"suffix\": s}")
			}
			not = append(not, stringMatcher(op, str))
		}
	case string, json.Number, bool, nil:
		not = append(not, equals(a))
	default:
		return nil, filterErr(at, "takes a value, a list of values, or {\"prefix\": s}")
	}
	return func(v any, present bool) bool {
		if !present {
			return false
		}
		for _, m := range not {
			if m(v, true) {
				return false
			}
		}
		return true
	}, nil
}
