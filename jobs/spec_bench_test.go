package jobs

import (
	"os"
	"testing"
)

// BenchmarkParse measures submit-time cost of a job file: YAML, validation,
// graph and compiling every JS snippet (the DESIGN.md example).
func BenchmarkParse(b *testing.B) {
	src, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(src); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkParseInvalid measures a file with many problems, the path a
// user editing a job hits repeatedly.
func BenchmarkParseInvalid(b *testing.B) {
	var src []byte
	for _, c := range errorCases {
		if c.name == "bad aggregates" {
			src = []byte(c.src)
		}
	}
	b.SetBytes(int64(len(src)))
	for b.Loop() {
		if _, err := Parse(src); err == nil {
			b.Fatal("parsed")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "jobs/s")
}
