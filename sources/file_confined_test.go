package sources

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-dev/runnel/internal/confine"
)

// TestConfinedFileSource: a confined file source reads files beneath its
// root, refuses paths leading out when validated, and resolves each file
// when its shard opens, so a symlink swapped to point out after the job
// was built is refused then.
func TestConfinedFileSource(t *testing.T) {
	dir := t.TempDir()
	root, err := confine.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	os.WriteFile(filepath.Join(dir, "in.jsonl"), []byte(`{"a":1}`+"\n"), 0o644)
	for _, p := range []string{"/etc/passwd", "../in.jsonl"} {
		if _, err := NewFile(FileConfig{Paths: []string{p}, Root: root}); !errors.Is(err, confine.ErrEscapes) {
			t.Errorf("source of %s: %v, want confine.ErrEscapes", p, err)
		}
	}
	os.Symlink("in.jsonl", filepath.Join(dir, "link.jsonl"))
	src, err := NewFile(FileConfig{Paths: []string{"link.jsonl"}, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	r, err := src.Open(context.Background(), Shard{ID: "link.jsonl"}, "")
	if err != nil {
		t.Fatalf("a symlink inside the root: %v", err)
	}
	r.Close()
	os.Remove(filepath.Join(dir, "link.jsonl"))
	os.Symlink("/etc/passwd", filepath.Join(dir, "link.jsonl"))
	if r, err := src.Open(context.Background(), Shard{ID: "link.jsonl"}, ""); !errors.Is(err, confine.ErrEscapes) {
		if r != nil {
			r.Close()
		}
		t.Fatalf("after the symlink was swapped to /etc/passwd: %v, want confine.ErrEscapes", err)
	}
}
