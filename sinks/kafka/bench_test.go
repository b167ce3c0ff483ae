package kafka

import (
	"strconv"
	"testing"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/internal/sinktest"
)

// BenchmarkExactlyOnceEpoch writes 10,000 rows per checkpoint epoch
// through Write, PreCommit (staging in Pebble) and Commit (one Kafka
// transaction with the progress offset) into an in-process kfake.
func BenchmarkExactlyOnceEpoch(b *testing.B) {
	brokers := testsrv.Kafka(b, 1, "out")
	s, err := New(Config{Brokers: brokers, Topic: "out", Job: "j", Sink: "k"})
	sinktest.Open(b, s, err, "k")
	const perEpoch = 10_000
	rows := make([]sinks.Row, perEpoch)
	for i := range rows {
		rows[i] = row("k"+strconv.Itoa(i%100), i)
	}
	epoch := uint64(0)
	for b.Loop() {
		epoch++
		sinktest.Checkpoint(b, s, epoch, rows)
	}
	b.ReportMetric(float64(perEpoch*b.N)/b.Elapsed().Seconds(), "rows/s")
}
