package sources

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// FuzzFileSource feeds arbitrary bytes to the file source as JSON lines and
// as CSV: it must not panic, every record it returns is an object (CSV) or
// a decoded value, and every failure is a *RecordError naming a line or a
// wrapped read error.
func FuzzFileSource(f *testing.F) {
	f.Add([]byte("a,b\n1,x\n\"q\"\"\",2\n"), true)
	f.Add([]byte("{\"a\":1}\n\n[1,2]\n\"s\"\n"), false)
	f.Add([]byte("a\n1,2\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, csv bool) {
		format := FileJSONLines
		if csv {
			format = FileCSV
		}
		p := filepath.Join(t.TempDir(), "in")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		src, err := NewFile(FileConfig{Paths: []string{p}, Format: format})
		if err != nil {
			t.Fatal(err)
		}
		r, err := src.Open(context.Background(), Shard{ID: p}, "")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		buf := make([]Record, 3)
		for i := 0; i < 1000; i++ {
			n, err := r.Read(context.Background(), buf)
			for _, rec := range buf[:n] {
				if _, ok := rec.Value.(map[string]any); csv && !ok {
					t.Fatalf("CSV record %#v is not an object", rec.Value)
				}
				if rec.Position == "" {
					t.Fatal("record without position")
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				var re *RecordError
				if !errors.As(err, &re) && !errors.Is(err, ErrJSON) && err.Error() == "" {
					t.Fatalf("unexplained error %v", err)
				}
				return
			}
		}
	})
}
