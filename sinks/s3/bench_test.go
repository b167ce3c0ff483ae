package s3

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/internal/sinktest"
)

// BenchmarkParquetEpoch writes 100,000 window rows per checkpoint epoch
// through Write, PreCommit (Parquet encoding, zstd, and a put into the
// staging prefix) and Commit (copy to the final key, delete the staged
// object) against versitygw. It reports the MB/s of Parquet published and
// this process's CPU per row (encoding and the client; not the server's).
func BenchmarkParquetEpoch(b *testing.B) {
	srv := testsrv.StartS3(b, bucket)
	ctx := context.Background()
	cfg := testConfig(srv)
	cfg.Compression, cfg.BufferBytes = "zstd", MaxBufferBytes
	s, err := New(ctx, cfg)
	sinktest.Open(b, s, err, "out")
	const perEpoch = 100_000
	rows := make([]sinks.Row, perEpoch)
	epoch := uint64(0)
	cpu := cpuclock.Process()
	for b.Loop() {
		epoch++
		for i := range rows {
			rows[i] = row(int64(epoch)*3_600_000, fmt.Sprintf("k%05d", i), i)
		}
		sinktest.Checkpoint(b, s, epoch, rows)
	}
	used := cpuclock.Since(cpu)
	elapsed := b.Elapsed()
	var size int64
	for _, k := range srv.Objects(b, bucket, "views/") {
		h, err := srv.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)})
		if err != nil {
			b.Fatal(err)
		}
		size += aws.ToInt64(h.ContentLength)
	}
	b.ReportMetric(float64(size)/1e6/elapsed.Seconds(), "MB/s")
	b.ReportMetric(float64(perEpoch*b.N)/elapsed.Seconds(), "rows/s")
	b.ReportMetric(float64(used.Nanoseconds())/float64(perEpoch*b.N), "cpu-ns/row")
}
