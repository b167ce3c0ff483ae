package sinks

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileWritesAtCheckpoint checks that a JSON lines file holds every row
// written before a checkpoint once the checkpoint's PreCommit returns, while
// the sink stays open.
func TestFileWritesAtCheckpoint(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.jsonl")
	f, err := NewFile(FileConfig{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var _ Transactional = f
	ctx := context.Background()
	if err := f.Write(ctx, []Row{{Value: map[string]any{"a": 1}}, {Value: map[string]any{"a": 2}}}); err != nil {
		t.Fatal(err)
	}
	if err := f.PreCommit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "\n"); got != 2 {
		t.Fatalf("after the checkpoint the file holds %d lines, want 2:\n%s", got, b)
	}
}
