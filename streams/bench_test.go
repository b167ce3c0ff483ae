package streams

import (
	"context"
	"fmt"
	"testing"
	"time"
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
