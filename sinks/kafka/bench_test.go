package kafka

import (
	"context"
	"strconv"
	"testing"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/internal/sinktest"
	"github.com/runnel-dev/runnel/state"
)

// BenchmarkExactlyOnceEpoch writes 10,000 rows per checkpoint epoch
// through Write, PreCommit (staging in Pebble) and Commit (one Kafka
// transaction with the progress offset) into an in-process kfake.
func BenchmarkExactlyOnceEpoch(b *testing.B) {
	brokers := testsrv.Kafka(b, 1, "out")
	db, err := state.Open(b.TempDir(), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	sp, _ := db.Namespace("k", "sink")
	ctx := context.Background()
	s, err := New(Config{Brokers: brokers, Topic: "out", Job: "j", Sink: "k"})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	if err := s.OpenState(ctx, sp); err != nil {
		b.Fatal(err)
	}
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
