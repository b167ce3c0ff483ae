package sources

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkFileRead reads a JSON-lines and a CSV file of 100,000 records
// through the file source, positions included; it reports records/s and
// bytes/s.
func BenchmarkFileRead(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	var jl, cs strings.Builder
	cs.WriteString("page,user,ms\n")
	for i := range n {
		fmt.Fprintf(&jl, "{\"page\":\"/p/%d\",\"user\":\"u%d\",\"ms\":%d}\n", i%50, i%1000, i%300)
		fmt.Fprintf(&cs, "/p/%d,u%d,%d\n", i%50, i%1000, i%300)
	}
	for name, body := range map[string]string{"jsonl": jl.String(), "csv": cs.String()} {
		path := filepath.Join(dir, "in."+name)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			src, err := NewFile(FileConfig{Paths: []string{path}})
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]Record, 512)
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				r, err := src.Open(context.Background(), Shard{ID: path}, "")
				if err != nil {
					b.Fatal(err)
				}
				got := 0
				for {
					k, err := r.Read(context.Background(), buf)
					got += k
					if err == io.EOF {
						break
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				r.Close()
				if got != n {
					b.Fatalf("read %d records, want %d", got, n)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
