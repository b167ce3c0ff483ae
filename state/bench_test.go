package state

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkSet measures unsynced single-key writes to a Space.
func BenchmarkSet(b *testing.B) {
	_, s := benchSpace(b)
	val := make([]byte, 100)
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if err := s.Set(fmt.Appendf(nil, "key-%09d", i%1_000_000), val); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkCheckpoint100k times a checkpoint of 100,000 keys of 100-byte
// values, rewriting 10% of them between checkpoints.
func BenchmarkCheckpoint100k(b *testing.B) {
	db, s := benchSpace(b)
	val := make([]byte, 100)
	for i := range 100_000 {
		if err := s.Set(fmt.Appendf(nil, "key-%06d", i), val); err != nil {
			b.Fatal(err)
		}
	}
	var total, paused time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		for j := range 10_000 {
			if err := s.Set(fmt.Appendf(nil, "key-%06d", (i*10_000+j)%100_000), val); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		info, err := db.Checkpoint(uint64(i+1), nil)
		if err != nil {
			b.Fatal(err)
		}
		total += info.Duration
		paused = max(paused, info.Paused)
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms/checkpoint")
	b.ReportMetric(float64(paused.Microseconds())/1000, "max-paused-ms")
}

// benchSpace opens a DB in a fresh directory, closed when the benchmark
// ends, and one operator task's Space in it.
func benchSpace(b *testing.B) (*DB, *Space) {
	db, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	s, err := db.Namespace("op", "0")
	if err != nil {
		b.Fatal(err)
	}
	return db, s
}
