package jobs

import (
	"os"
	"path/filepath"
	"testing"
)

// Every example job file parses, and its comment says what it computes.
func TestExamplesParse(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{"page-views.yaml": false, "p95-latency.yaml": false, "sessions.yaml": false, "custom-aggregate.yaml": false}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(src) == 0 || src[0] != '#' {
			t.Errorf("%s: start with a comment saying what the job computes", f)
		}
		s, err := Parse(src)
		if err != nil {
			t.Errorf("%s:\n%v", f, err)
			continue
		}
		if _, ok := want[filepath.Base(f)]; ok {
			want[filepath.Base(f)] = true
		}
		// File sources name data shipped with the examples, relative to
		// the repository root where runnel run is started.
		for _, p := range s.Source.File {
			if _, err := os.Stat(filepath.Join("..", p)); err != nil {
				t.Errorf("%s: source file %s: %v", f, p, err)
			}
		}
	}
	for name, found := range want {
		if !found {
			t.Errorf("examples/%s is missing or does not parse", name)
		}
	}
}
