package kinesis

import (
	"context"
	"testing"
	"time"
)

// BenchmarkIngest runs BenchIngest (`go test -bench Ingest -benchtime 1x`)
// with 3 s phases (1 s with -short); `runnel bench ingest --api kinesis`
// runs the same with the default 5 s phases.
func BenchmarkIngest(b *testing.B) {
	phase := 3 * time.Second
	if testing.Short() {
		phase = time.Second
	}
	for i := 0; i < b.N; i++ {
		rep, err := BenchIngest(context.Background(), BenchConfig{Phase: phase, LatencySamples: 200})
		if err != nil {
			b.Fatal(err)
		}
		b.Log("\n" + rep.String())
		b.ReportMetric(rep.Runnel.RecordsPerSec, "records/s")
		b.ReportMetric(rep.Ceiling.RecordsPerSec, "ceiling-records/s")
		b.ReportMetric(100*rep.Ratio, "%-of-ceiling")
		b.ReportMetric(float64(rep.ServerCPUPerRecord.Nanoseconds())/1e3, "server-µs-CPU/record")
		b.ReportMetric(rep.PutRecord.RecordsPerSec, "putrecord/s")
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
			if !parsePutRecordsJSON(body, &in) {
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
