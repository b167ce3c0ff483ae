package aggregate

import (
	"fmt"
	"strings"

	"github.com/runnel-dev/runnel/operators"
)

// Builtin aggregate function names (as in the job file).
const (
	Count    = "count"
	Sum      = "sum"
	Avg      = "avg"
	Min      = "min"
	Max      = "max"
	P50      = "p50"
	P95      = "p95"
	P99      = "p99"
	Distinct = "distinct"
	Custom   = "custom"
)

// ColumnType is the type of a result column, for sinks building a schema.
type ColumnType string

// Result column types.
const (
	Int64   ColumnType = "int64"
	Float64 ColumnType = "float64"
	String  ColumnType = "string"
)

// Spec is one aggregate of a window: one result column.
type Spec struct {
	// Name is the result column's name.
	Name string
	// Func is one of the builtin names above or Custom.
	Func string
	// Field is the record field a builtin reads, a dotted path for nested
	// objects. Empty for count (count records) and custom.
	Field string
	// A custom aggregate is either Object, one JS expression evaluating to
	// an object with methods init, add, merge and result, or the four
	// snippets Init, Add, Merge, Result (each evaluating to a function;
	// Result optional: the accumulator itself is then the result).
	Object                   string
	Init, Add, Merge, Result string
	// Type is the result column type of a custom aggregate (default
	// Float64); builtins have fixed types (see Spec.ColumnType).
	Type ColumnType
}

// Validate checks that the spec names a known function with the operands
// it needs.
func (s Spec) Validate() error {
	if s.Name == "" {
		return fmt.Errorf("aggregate: unnamed %s", s.Func)
	}
	switch s.Func {
	case Count:
	case Sum, Avg, Min, Max, P50, P95, P99, Distinct:
		if s.Field == "" {
			return fmt.Errorf("aggregate %q: %s needs a field", s.Name, s.Func)
		}
	case Custom:
		if s.Object == "" && (s.Init == "" || s.Add == "" || s.Merge == "") {
			return fmt.Errorf("aggregate %q: custom needs an object {init, add, merge, result} or init, add and merge", s.Name)
		}
		switch s.Type {
		case "", Int64, Float64, String:
		default:
			return fmt.Errorf("aggregate %q: unknown result type %q", s.Name, s.Type)
		}
	default:
		return fmt.Errorf("aggregate %q: unknown function %q", s.Name, s.Func)
	}
	return nil
}

// ColumnType returns the type of the spec's result column.
func (s Spec) ColumnType() ColumnType {
	switch s.Func {
	case Count, Distinct:
		return Int64
	case Custom:
		if s.Type == "" {
			return Float64
		}
		return s.Type
	}
	return Float64
}

// Parse parses the short form of a builtin: "count", "sum(ms)", "p95(a.b)".
func Parse(name, expr string) (Spec, error) {
	expr = strings.TrimSpace(expr)
	fn, field := expr, ""
	if i := strings.IndexByte(expr, '('); i >= 0 {
		if !strings.HasSuffix(expr, ")") {
			return Spec{}, fmt.Errorf("aggregate %q: %q: missing )", name, expr)
		}
		fn, field = strings.TrimSpace(expr[:i]), strings.TrimSpace(expr[i+1:len(expr)-1])
	}
	s := Spec{Name: name, Func: strings.ToLower(fn), Field: field}
	if s.Func == Custom {
		return Spec{}, fmt.Errorf("aggregate %q: custom aggregates are JS objects, not %q", name, expr)
	}
	return s, s.Validate()
}

// fieldOf reads a dotted path from a record value (operators.Value: a
// JSON-like Go value, raw JSON, or a JS object or projection), exported
// to a JSON-like Go value.
func fieldOf(v any, path []string) any {
	x, _ := operators.ValueOf(v).Field(path...).Export()
	return x
}

// number converts a JSON-like value to float64 (operators.Value.Float):
// numeric strings count (CSV sources yield strings); anything else is not
// a number.
func number(v any) (float64, bool) { return operators.ValueOf(v).Float() }
