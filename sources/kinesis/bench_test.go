package kinesis

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sources"
)

// BenchmarkReadShard reads a one-shard stream of 50,000 records of about
// 100 bytes on a second runnel serve from the trim horizon, by polling
// (paced to Kinesis's 5 calls/s and 2 MiB/s per shard) and by enhanced
// fan-out, and reports records/s per shard.
//
//	go test -run '^$' -bench ReadShard -benchtime 1x ./sources/kinesis
func BenchmarkReadShard(b *testing.B) {
	const n = 50_000
	testsrv.AWSTestKeys(b)
	srv := testsrv.StartRunnel(b, "--streams", "bench:1")
	c := srv.Client()
	var entries []putEntry
	for i := range n {
		entries = append(entries, putEntry{fmt.Sprintf("k%d", i%100), fmt.Sprintf(`{"k":"k%d","n":%d,"pad":"%080d"}`, i%100, i, 0)})
	}
	if err := putBatch(c, "bench", entries); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"poll", "fanout"} {
		b.Run(mode, func(b *testing.B) {
			cfg := Config{Stream: "bench", Conn: kinesisconn.Conn{Endpoint: srv.URL, Region: "us-east-1"}}
			if mode == "fanout" {
				cfg.Consumer = "bench"
			}
			src, err := New(context.Background(), cfg, nil)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := src.Shards(context.Background()); err != nil {
				b.Fatal(err)
			}
			buf := make([]sources.Record, 1000)
			b.ResetTimer()
			start := time.Now()
			for range b.N {
				r, err := src.Open(context.Background(), sources.Shard{ID: "shardId-000000000000"}, "")
				if err != nil {
					b.Fatal(err)
				}
				for got := 0; got < n; {
					k, err := r.Read(context.Background(), buf)
					if err != nil {
						b.Fatal(err)
					}
					got += k
				}
				r.Close()
			}
			b.ReportMetric(float64(b.N*n)/time.Since(start).Seconds(), "records/s")
		})
	}
}
