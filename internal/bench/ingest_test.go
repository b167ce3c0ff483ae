package bench

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

// BenchmarkAppend is the ingest target: 8 producers putting batches of 500
// 100-byte records, each put acknowledged only after fsync. b.N counts
// records. It also reports the disk's own fsync'd sequential write rate
// for the same volume, so the ratio shows.
func BenchmarkAppend(b *testing.B) {
	for _, shards := range []int{1, 4} {
		b.Run(map[int]string{1: "shards=1", 4: "shards=4"}[shards], func(b *testing.B) {
			cfg := IngestConfig{Shards: shards, Records: max(b.N, 500)}
			b.ResetTimer()
			cpu0 := cpuclock.Process()
			lats, elapsed, n, err := appendRecords(b.TempDir(), withDefaults(b, cfg))
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			b.ReportMetric(float64(cpuclock.Since(cpu0).Nanoseconds())/float64(n), "cpu-ns/record")
			b.ReportMetric(float64(n)/elapsed.Seconds(), "records/s")
			b.ReportMetric(float64(n)*100/elapsed.Seconds()/1e6, "MB/s")
			b.ReportMetric(float64(Percentile(lats, 0.5).Microseconds())/1000, "ack-p50-ms")
			b.ReportMetric(float64(Percentile(lats, 0.99).Microseconds())/1000, "ack-p99-ms")
			rate, fs50, err := DiskSyncRate(b.TempDir(), max(n*int64(streams.FrameSize("k-0000000000", make([]byte, 100))), 16<<20), 1<<20)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(rate/1e6, "disk-MB/s")
			b.ReportMetric(float64(fs50.Microseconds())/1000, "disk-fsync-p50-ms")
		})
	}
}

func withDefaults(b *testing.B, c IngestConfig) IngestConfig {
	if err := c.Validate(); err != nil {
		b.Fatal(err)
	}
	return c
}

// BenchmarkDiskSync is the disk baseline on its own: sequential 1 MiB
// writes, each fsync'd. b.N counts MiB.
func BenchmarkDiskSync(b *testing.B) {
	rate, fs50, err := DiskSyncRate(b.TempDir(), int64(max(b.N, 16))<<20, 1<<20)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rate/1e6, "disk-MB/s")
	b.ReportMetric(float64(fs50.Microseconds())/1000, "fsync-p50-ms")
}

// BenchmarkReadLatency measures put → a reader waiting on a caught-up
// shard has the record: one producer puts one record at a time, one reader
// waits and reads; b.N counts records. Readers see only durable records,
// so this includes the fsync; the put's ack latency is reported alongside.
func BenchmarkReadLatency(b *testing.B) {
	s := streamstest.Open(b, streams.Options{Logger: discardLogger()}, "lat", 1)
	ctx := context.Background()
	sent := make(chan time.Time, 1)
	lats := make([]time.Duration, 0, b.N)
	done := make(chan error, 1)
	go func() {
		pos := uint64(1)
		for len(lats) < b.N {
			if err := s.Wait(ctx, "lat", streams.ShardID(0), pos); err != nil {
				done <- err
				return
			}
			r, err := s.Read("lat", streams.ShardID(0), pos, 0, 0)
			if err != nil {
				done <- err
				return
			}
			for range r.Records {
				lats = append(lats, time.Since(<-sent))
			}
			pos = r.Next
		}
		done <- nil
	}()
	acks := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		sent <- t0
		if _, err := s.Put(ctx, "lat", []streams.PutRecord{{PartitionKey: "k", Data: make([]byte, 100)}}); err != nil {
			b.Fatal(err)
		}
		acks = append(acks, time.Since(t0))
		// Let the reader catch up so it always waits on a caught-up shard.
		for len(sent) > 0 {
			time.Sleep(10 * time.Microsecond)
		}
	}
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(Percentile(lats, 0.5).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(Percentile(lats, 0.99).Microseconds())/1000, "p99-ms")
	// The put's own ack latency (one fsync) over the same records: the
	// share of the reader's latency that is durability, not wake-up.
	b.ReportMetric(float64(Percentile(acks, 0.5).Microseconds())/1000, "ack-p50-ms")
	b.ReportMetric(float64(Percentile(acks, 0.99).Microseconds())/1000, "ack-p99-ms")
}

func TestIngestSmoke(t *testing.T) {
	rep, err := Ingest(t.TempDir(), IngestConfig{Producers: 2, Batch: 10, Shards: 2, Records: 200})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Records != 200 || rep.RecordsPerSec <= 0 || rep.DiskBytesPerSec <= 0 || rep.AckP99 < rep.AckP50 {
		t.Fatalf("implausible report: %+v", rep)
	}
	if _, err := Ingest(os.TempDir(), IngestConfig{Producers: -1}); err == nil {
		t.Fatal("negative producers accepted")
	}
}
