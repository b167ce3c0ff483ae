package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// FuzzParse: Parse never panics; it returns a Spec or a *SpecError whose
// problems each carry a line within the file (0 for whole-file problems) and
// a message; an accepted Spec validates again unchanged and has a graph.
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.yaml")
	examples, _ := filepath.Glob("../examples/*.yaml")
	seeds = append(append(seeds, examples...), "testdata/design.json")
	for _, name := range seeds {
		if src, err := os.ReadFile(name); err == nil {
			f.Add(src)
		}
	}
	for _, c := range errorCases {
		f.Add([]byte(c.src))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		s, err := Parse(src)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("error is %T, not *SpecError: %v", err, err)
			}
			if len(se.Problems) == 0 {
				t.Fatal("a SpecError without problems")
			}
			lines := strings.Count(string(src), "\n") + 1
			for _, p := range se.Problems {
				if p.Line < 0 || p.Line > lines+1 || p.Message == "" || p.Code == "" {
					t.Fatalf("bad problem (file has %d lines): %+v", lines, p)
				}
			}
			return
		}
		if s == nil {
			t.Fatal("no Spec and no error")
		}
		before := plain(s)
		if err := s.Validate(); err != nil {
			t.Fatalf("an accepted Spec fails Validate again: %v", err)
		}
		if g, err := s.Graph(); err != nil || g == nil {
			t.Fatalf("an accepted Spec has no graph: %v", err)
		}
		if after := plain(s); !reflect.DeepEqual(before, after) {
			t.Fatalf("Validate is not idempotent:\nfirst  %#v\nsecond %#v", before, after)
		}
		// What a submit checks next: evaluating the JS once gives no
		// problem, or problems that name a field the file has.
		if err := s.CheckScripts(); err != nil {
			var se *SpecError
			if !errors.As(err, &se) || len(se.Problems) != 1 {
				t.Fatalf("CheckScripts: %T %v, want a SpecError with one problem", err, err)
			}
			if p := se.Problems[0]; p.Code != CodeJSError || p.Field == "" || p.Message == "" {
				t.Fatalf("CheckScripts problem: %+v", p)
			}
		}
	})
}

// FuzzCompileSnippet: compiling a snippet never panics, and an error always
// points inside the snippet (line 1..lines, column 1..len(line)+1).
func FuzzCompileSnippet(f *testing.F) {
	for _, s := range []string{"r => r.ts", "function (r) { return r.a }", "r => (r.a", "r => r)", "", "({init: () => 0, add: (a) => a, merge: (a) => a})", "r => {\n  return r.a +* 2\n}", "`${", "/*", "//", "'"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, src string, object bool) {
		var err error
		if object {
			_, err = CompileObjectSnippet("f", src)
		} else {
			_, err = CompileSnippet("f", src)
		}
		if err == nil {
			return
		}
		var je *JSError
		if !errors.As(err, &je) {
			t.Fatalf("error %T is not a *JSError: %v", err, err)
		}
		lines := strings.Split(src, "\n")
		if je.Line < 1 || je.Line > len(lines) || je.Column < 1 || je.Column > len(lines[je.Line-1])+1 {
			t.Fatalf("error at %d:%d outside the snippet %q: %s", je.Line, je.Column, src, je.Message)
		}
	})
}

// FuzzParseAggregate: the string form of an aggregate never panics, and
// what it accepts validates.
func FuzzParseAggregate(f *testing.F) {
	for _, s := range []string{"count", "sum(ms)", "p95(a.b)", "count(x)", "sum", "({})", "p97(ms)", "avg( ms )", "max(()"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, spec string) {
		a, msg, _ := ParseAggregate("c", spec)
		if msg != "" || a.Func == AggCustom {
			return
		}
		if !slices.Contains(BuiltinAggregates, a.Func) || (a.Func != AggCount) != (a.Field != "") || (a.Field != "" && !fieldRE.MatchString(a.Field)) {
			t.Fatalf("%q accepted as %+v", spec, a)
		}
	})
}

// FuzzParseDuration: a duration either parses to whole, non-negative
// milliseconds or is rejected with a message.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"10s", "500ms", "1h30m", "0", "10", "-5s", "1500us", "10x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, msg := parseDuration(s)
		if msg == "" && (d < 0 || d%time.Millisecond != 0) {
			t.Fatalf("%q accepted as %v", s, d)
		}
		if msg != "" && d != 0 {
			t.Fatalf("%q rejected but returned %v", s, d)
		}
	})
}
