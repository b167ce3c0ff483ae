package kinesisbench

import (
	"context"
	"flag"
	"os"
	"testing"
	"time"
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
