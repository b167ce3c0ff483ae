package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
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
	})
}
