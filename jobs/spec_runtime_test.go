package jobs

import (
	"errors"
	"testing"

	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
)

// The runtime compiles snippets with operators/js.Compile. A job that Parse
// accepts must compile there too, and a syntax error must be reported at the
// same place by both, so what a user sees at submit time is what the runtime
// would say.
func TestSnippetsAgreeWithRuntime(t *testing.T) {
	snippets := []string{
		"r => r.ts",
		"function (r) { return r.n > 3 }",
		"(r) => {\n  const x = r.a\n  return x * 2\n}",
		"r => r.a // a trailing comment",
		"// a leading comment\nr => r.a",
		"r => `${r.a}-${r.b}`",
		"async r => r",
		"r => r.a +* 2",
		"r => {\n  return r.a +* 2\n}",
		"r => (r.a",
		"r => r)",
		"r => r.ts;",
		"r => { 'use strict'; with (r) { return x } }",
		"let x = 1",
		"r => r.a\n+",
		"}",
	}
	for _, src := range snippets {
		_, mine := CompileSnippet("s", src)
		_, theirs := js.Compile("", js.Snippet{Name: "s", Src: src})
		if (mine == nil) != (theirs == nil) {
			t.Errorf("%q: jobs says %v, operators/js says %v", src, mine, theirs)
			continue
		}
		var je *JSError
		var se *js.SyntaxError
		if errors.As(mine, &je) && errors.As(theirs, &se) && (je.Line != se.Line || je.Column != se.Column) {
			t.Errorf("%q: jobs places the error at %d:%d, operators/js at %d:%d", src, je.Line, je.Column, se.Line, se.Column)
		}
	}
	// jobs is stricter than the runtime's compiler about the shape of a
	// snippet: the runtime would compile these and fail (or misbehave)
	// only when a record arrives.
	for _, src := range []string{"({init: () => 0})", "a); (b", "'page'", "42"} {
		if _, err := CompileSnippet("s", src); err == nil {
			t.Errorf("%q accepted as a function snippet", src)
		}
	}
	// What Validate stores (normalized) compiles in the runtime.
	s := mustParse(t, head+"operators:\n  - {id: a, map: 'r => r.ts;  '}\nsinks: [{id: o, log: {}}]\n")
	if _, err := js.Compile("", js.Snippet{Name: "a.map", Src: s.Operators[0].Map}); err != nil {
		t.Errorf("normalized snippet %q does not compile in the runtime: %v", s.Operators[0].Map, err)
	}
}

// Aggregates Parse accepts are ones the aggregate package builds, with the
// same function, field and column type.
func TestAggregatesAgreeWithRuntime(t *testing.T) {
	for _, expr := range []string{"count", "sum(ms)", "avg( ms )", "MIN(ms)", "max(a.b)", "p50(ms)", "p95(ms)", "p99(ms)", "distinct(user)"} {
		mine, msg, _ := ParseAggregate("c", expr)
		if msg != "" {
			t.Errorf("%q: %s", expr, msg)
			continue
		}
		theirs, err := aggregate.Parse("c", expr)
		if err != nil {
			t.Errorf("%q: accepted by jobs, rejected by operators/aggregate: %v", expr, err)
			continue
		}
		if mine.Func != theirs.Func || mine.Field != theirs.Field {
			t.Errorf("%q: jobs %s(%s), operators/aggregate %s(%s)", expr, mine.Func, mine.Field, theirs.Func, theirs.Field)
		}
	}
	for _, typ := range ColumnTypes {
		sp := aggregate.Spec{Name: "c", Func: aggregate.Custom, Init: "() => 0", Add: "(a, r) => a", Merge: "(a, b) => a", Type: aggregate.ColumnType(typ)}
		if err := sp.Validate(); err != nil {
			t.Errorf("column type %q: %v", typ, err)
		}
	}
	if ColumnFloat64 != string(aggregate.Spec{Func: aggregate.Custom}.ColumnType()) {
		t.Errorf("default custom column type: jobs %s, operators/aggregate %s", ColumnFloat64, aggregate.Spec{Func: aggregate.Custom}.ColumnType())
	}
}
