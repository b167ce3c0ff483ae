package sinks

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/confine"
)

func confinedRoot(t *testing.T) (*confine.Root, string) {
	t.Helper()
	dir := t.TempDir()
	r, err := confine.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, dir
}

// TestConfinedFileNeverTruncates: a new confined sink refuses a file that
// is already there and leaves it as it was; a resumed JSON-lines sink
// appends to its own file (ending a line a crash cut short first); a
// resumed columnar sink keeps its file and writes the next part beside it.
func TestConfinedFileNeverTruncates(t *testing.T) {
	root, dir := confinedRoot(t)
	keep := filepath.Join(dir, "keep.jsonl")
	os.WriteFile(keep, []byte("precious\n"), 0o644)
	_, err := NewFile(FileConfig{Path: "keep.jsonl", Root: root})
	if !errors.Is(err, ErrFileExists) || !strings.Contains(err.Error(), "keep.jsonl") {
		t.Fatalf("a new sink over an existing file: %v, want ErrFileExists naming it", err)
	}
	if b, _ := os.ReadFile(keep); string(b) != "precious\n" {
		t.Fatalf("the existing file changed: %q", b)
	}

	os.WriteFile(filepath.Join(dir, "own.jsonl"), []byte(`{"key":"a"}`+"\n"+`{"key":"cut`), 0o644)
	s, err := NewFile(FileConfig{Path: "own.jsonl", Root: root, Resume: true, Columns: []Column{{Name: "key", Type: String}}})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, s, []Row{{Key: "b", Value: map[string]any{"key": "b"}}})
	if b, _ := os.ReadFile(filepath.Join(dir, "own.jsonl")); string(b) != `{"key":"a"}`+"\n"+`{"key":"cut`+"\n"+`{"key":"b"}`+"\n" {
		t.Fatalf("resumed file: %q", b)
	}

	os.WriteFile(filepath.Join(dir, "r.parquet"), []byte("earlier"), 0o644)
	os.WriteFile(filepath.Join(dir, "r-1.parquet"), []byte("earlier too"), 0o644)
	p, err := NewFile(FileConfig{Path: "r.parquet", Root: root, Resume: true})
	if err != nil {
		t.Fatal(err)
	}
	if p.Path() != "r-2.parquet" {
		t.Fatalf("resumed parquet writes %s, want r-2.parquet", p.Path())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "r.parquet")); string(b) != "earlier" {
		t.Fatalf("the earlier part changed: %q", b)
	}
}

// TestConfinedFileStaysBeneath: paths leading out of the root are refused
// by Validate (absolute, "..") or at open (a symlink out), and nothing is
// written outside.
func TestConfinedFileStaysBeneath(t *testing.T) {
	root, dir := confinedRoot(t)
	outside := t.TempDir()
	os.Symlink(outside, filepath.Join(dir, "out"))
	for _, p := range []string{filepath.Join(outside, "x.jsonl"), "../x.jsonl", "out/x.jsonl"} {
		s, err := NewFile(FileConfig{Path: p, Root: root})
		if err == nil {
			s.Close()
			t.Errorf("sink at %s was created", p)
		} else if !errors.Is(err, confine.ErrEscapes) {
			t.Errorf("sink at %s: %v, want confine.ErrEscapes", p, err)
		}
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Fatalf("files written outside the root: %v", ents)
	}
}
