package postgres

import (
	"context"
	"testing"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/internal/sinktest"
)

// BenchmarkExactlyOnceEpoch writes 10,000 window rows per checkpoint epoch
// through Write, PreCommit (staging in Pebble) and Commit (COPY, merge and
// progress row in one transaction) into a real PostgreSQL.
func BenchmarkExactlyOnceEpoch(b *testing.B) {
	pg := testsrv.StartPostgres(b)
	ctx := context.Background()
	s, err := New(ctx, Config{DSN: pg.DSN, Table: "bench", CreateTable: true, Columns: windowCols, Job: "j", Sink: "out"})
	sinktest.Open(b, s, err, "out")
	const perEpoch = 10_000
	rows := make([]sinks.Row, perEpoch)
	epoch := uint64(0)
	for b.Loop() {
		epoch++
		for i := range rows {
			rows[i] = row(int64(epoch)*1000, "k"+string(rune('a'+i%26)), i)
		}
		sinktest.Checkpoint(b, s, epoch, rows)
	}
	b.ReportMetric(float64(perEpoch*b.N)/b.Elapsed().Seconds(), "rows/s")
}
