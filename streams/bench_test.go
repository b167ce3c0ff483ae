package streams

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
)

// BenchmarkReadPages reads a shard of 100-byte records from the start in
// pages of 4096 records, as a job's stream source does.
func BenchmarkReadPages(b *testing.B) {
	s, err := Open(b.TempDir(), Options{Logger: quietLogger(), SyncInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	mustCreate(b, s, "r", 1)
	const n = 200_000
	recs := make([]PutRecord, 1000)
	for i := 0; i < n; i += len(recs) {
		for j := range recs {
			recs[j] = PutRecord{PartitionKey: keyFor(i + j), Data: payload(fmt.Sprint(i+j), 100)}
		}
		if _, err := s.Put(context.Background(), "r", recs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	read := 0
	for range b.N {
		for pos := uint64(0); ; {
			r, err := s.Read("r", ShardID(0), pos, 4096, 0)
			if err != nil {
				b.Fatal(err)
			}
			if len(r.Records) == 0 {
				break
			}
			read += len(r.Records)
			pos = r.Next
		}
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkWriteSync is the cost of one commit group's write and
// fdatasync on a real file: appended to a growing file, as the log writes
// today, and written over a file whose blocks were zeroed beforehand (the
// preallocation some logs use so that fdatasync need not journal a new
// size). The zeroing is done in 1 MiB steps inside the loop and counted:
// cpu-ns/op includes it, zero-cpu-ns/op is its share.
func BenchmarkWriteSync(b *testing.B) {
	for _, size := range []int{16 << 10, 64 << 10} {
		for _, mode := range []string{"grow", "prezeroed"} {
			b.Run(fmt.Sprintf("%s/%dKiB", mode, size>>10), func(b *testing.B) {
				f, err := os.Create(filepath.Join(b.TempDir(), "seg"))
				if err != nil {
					b.Fatal(err)
				}
				defer f.Close()
				buf := bytes.Repeat([]byte{0xa5}, size)
				zeros := make([]byte, 1<<20)
				var zeroed int64
				var zeroCPU time.Duration
				b.SetBytes(int64(size))
				b.ResetTimer()
				cpu := cpuclock.Process()
				for i := 0; i < b.N; i++ {
					off := int64(i) * int64(size)
					for mode == "prezeroed" && zeroed < off+int64(size) {
						z := cpuclock.Process()
						if _, err := f.WriteAt(zeros, zeroed); err != nil {
							b.Fatal(err)
						}
						if err := datasync(f); err != nil {
							b.Fatal(err)
						}
						zeroed += int64(len(zeros))
						zeroCPU += cpuclock.Since(z)
					}
					if _, err := f.WriteAt(buf, off); err != nil {
						b.Fatal(err)
					}
					if err := datasync(f); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(cpuclock.Since(cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(zeroCPU.Nanoseconds())/float64(b.N), "zero-cpu-ns/op")
			})
		}
	}
}

// BenchmarkHashPartitionKey is the routing hash of one partition key: a
// 16-character key, and a UUID.
func BenchmarkHashPartitionKey(b *testing.B) {
	for _, k := range []string{"0123456789abcdef", "123e4567-e89b-12d3-a456-426614174000"} {
		b.Run(fmt.Sprintf("%dB", len(k)), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				HashPartitionKey(k)
			}
		})
	}
}

// BenchmarkPutDurable is the log's side of the Kinesis bench's put phases:
// producers put batches of 100-byte records into a 4-shard stream on the
// real disk (b.TempDir, or a fresh directory under $RUNNEL_BENCH_DIR), each
// waiting for its durable acknowledgement — 8 producers of 500 records (as
// PutRecords) and 64 of one (as PutRecord) — with the active segments
// prefilled (the default) and appended to. cpu-ns/record is the process's
// CPU time a record (the producers' share included); records/sync is what
// group commit got.
func BenchmarkPutDurable(b *testing.B) {
	for _, load := range []struct{ producers, batch int }{{8, 500}, {64, 1}} {
		for _, mode := range []struct {
			name    string
			prefill int64
		}{{"prefill", 0}, {"append", -1}} {
			b.Run(fmt.Sprintf("%dx%d/%s", load.producers, load.batch, mode.name), func(b *testing.B) {
				benchPutDurable(b, load.producers, load.batch, mode.prefill)
			})
		}
	}
}

func benchPutDurable(b *testing.B, producers, batch int, prefill int64) {
	dir := b.TempDir()
	if d := os.Getenv("RUNNEL_BENCH_DIR"); d != "" {
		var err error
		if dir, err = os.MkdirTemp(d, "bench-"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	s, err := Open(dir, Options{Logger: quietLogger(), PrefillBytes: prefill})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	mustCreate(b, s, "p", 4)
	recs := make([][]PutRecord, producers)
	for p := range recs {
		for i := range batch {
			recs[p] = append(recs[p], PutRecord{PartitionKey: keyFor(p*batch + i), Data: payload(fmt.Sprint(i), 100)})
		}
	}
	before := s.WriteStats()
	b.ResetTimer()
	cpu := cpuclock.Process()
	var next atomic.Int64
	var wg sync.WaitGroup
	for p := range producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				if _, err := s.Put(context.Background(), "p", recs[p]); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	used := cpuclock.Since(cpu)
	b.StopTimer()
	after := s.WriteStats()
	n := float64(b.N) * float64(batch)
	b.ReportMetric(float64(used.Nanoseconds())/n, "cpu-ns/record")
	b.ReportMetric(n/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(after.Records-before.Records)/float64(max(after.Syncs-before.Syncs, 1)), "records/sync")
}
