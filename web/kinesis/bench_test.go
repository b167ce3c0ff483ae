package kinesis

import (
	"context"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/streams"
)

// TestMain lets BenchIngest run this test binary as its benchmark servers.
func TestMain(m *testing.M) {
	BenchServerMain()
	os.Exit(m.Run())
}

var serverProfile = flag.String("serverprofile", "", "BenchmarkIngest: write the Runnel server process's CPU profile here")

// BenchmarkIngest runs BenchIngest (`go test -bench Ingest -benchtime 1x`)
// with 3 s phases (1 s with -short); `runnel bench ingest --api kinesis`
// runs the same with the default 5 s phases.
func BenchmarkIngest(b *testing.B) {
	phase := 3 * time.Second
	if testing.Short() {
		phase = time.Second
	}
	for i := 0; i < b.N; i++ {
		rep, err := BenchIngest(context.Background(), BenchConfig{Phase: phase, LatencySamples: 200, ServerCPUProfile: *serverProfile})
		if err != nil {
			b.Fatal(err)
		}
		b.Log("\n" + rep.String())
		b.ReportMetric(rep.Runnel.RecordsPerSec, "records/s")
		b.ReportMetric(rep.Ceiling.RecordsPerSec, "ceiling-records/s")
		b.ReportMetric(100*rep.Ratio, "%-of-ceiling")
		b.ReportMetric(100*rep.MedianRatio, "median-%-of-ceiling")
		b.ReportMetric(float64(rep.Runnel.ServerCPU.Nanoseconds())/1e3, "server-µs-CPU/record")
		b.ReportMetric(rep.PutRecord.RecordsPerSec, "putrecord/s")
		b.ReportMetric(float64(rep.PutRecord.ServerCPU.Nanoseconds())/1e3, "server-µs-CPU/putrecord")
		b.ReportMetric(float64(rep.GetRecordsP99.Microseconds())/1e3, "getrecords-p99-ms")
		b.ReportMetric(float64(rep.SubscribeP99.Microseconds())/1e3, "subscribe-p99-ms")
	}
}

// BenchmarkPutRecordsDecode is the JSON decode of a 500-record body on the
// fast path and through encoding/json.
func BenchmarkPutRecordsDecode(b *testing.B) {
	body := putRecordsBody(500, 100)
	b.Run("fast", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			var in putRecordsInput
			if !parsePutRecordsJSON(body, &in, new([]byte)) {
				b.Fatal("fast path refused")
			}
		}
		b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(body)))
		for i := 0; i < b.N; i++ {
			var in putRecordsInput
			if err := decode(codecJSON, body, &in); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
	})
}

// BenchmarkHandlerPutRecords is the server's PutRecords path without the
// network: request parsing, validation, the durable append and the
// response, for 500 × 100-byte records per call.
func BenchmarkHandlerPutRecords(b *testing.B) {
	store, err := streams.Open(b.TempDir(), streams.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	h := newHandler(store, Options{CreateDelay: -1})
	if _, err := store.CreateStream("bench", 4, streams.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	body := putRecordsBody(500, 100)
	b.ResetTimer()
	cpu := processCPU()
	for i := 0; i < b.N; i++ {
		if w := serve(h, "PutRecords", contentJSON, body); w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body.Bytes())
		}
	}
	cpu = processCPU() - cpu
	b.ReportMetric(float64(b.N*500)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*500), "cpu-ns/record")
}

// BenchmarkHandlerPutRecord is one single-record PutRecord through the
// handler without the network, from 64 goroutines (group commit shares
// the durable writes among them).
func BenchmarkHandlerPutRecord(b *testing.B) {
	store, err := streams.Open(b.TempDir(), streams.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	h := newHandler(store, Options{CreateDelay: -1})
	if _, err := store.CreateStream("bench", 4, streams.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	body := []byte(`{"StreamName":"bench","PartitionKey":"key","Data":"` + strings.Repeat("A", 136) + `"}`)
	b.SetParallelism(32)
	b.ResetTimer()
	cpu := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if w := serve(h, "PutRecord", contentJSON, body); w.Code != 200 {
				b.Errorf("status %d: %s", w.Code, w.Body.Bytes())
				return
			}
		}
	})
	cpu = processCPU() - cpu
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/record")
}

// The bench reports the median of its per-round ratios.
func TestMedian(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{0.7}, 0.7},
		{[]float64{0.9, 0.5}, 0.7},
		{[]float64{0.8, 0.4, 0.6}, 0.6},
		{[]float64{0.1, 0.9, 0.3, 0.5}, 0.4},
	} {
		if got := median(c.in); got < c.want-1e-9 || got > c.want+1e-9 {
			t.Errorf("median(%v) = %v, want %v", c.in, got, c.want)
		}
	}
}
