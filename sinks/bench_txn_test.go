//go:build unix

package sinks

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

// benchRows is the rows per checkpoint in the sink benchmarks: a few
// seconds of window results of a busy job.
const benchRows = 10_000

// meter adds up the wall and CPU time of the measured parts of a benchmark.
type meter struct {
	wall, cpu time.Duration
	rows      int
}

func (m *meter) measure(rows int, fn func()) {
	w, c := time.Now(), cpuclock.Process()
	fn()
	m.wall += time.Since(w)
	m.cpu += cpuclock.Since(c)
	m.rows += rows
}

func (m *meter) report(b *testing.B) {
	b.ReportMetric(float64(m.rows)/m.wall.Seconds(), "rows/s")
	b.ReportMetric(float64(m.cpu.Nanoseconds())/float64(m.rows), "cpu-ns/row")
}

// benchStream opens a 4-shard output stream on disk and a state DB.
func benchStream(b *testing.B) (*streams.Store, *state.Space) {
	dir := b.TempDir()
	store, err := streams.Open(filepath.Join(dir, "streams"), streams.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	if _, err := store.CreateStream("out", 4, streams.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	db, err := state.Open(filepath.Join(dir, "state"), state.Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	sp, err := db.Namespace("sink", "0")
	if err != nil {
		b.Fatal(err)
	}
	return store, sp
}

func benchSink(b *testing.B, store *streams.Store, sp *state.Space) *Stream {
	s, err := NewStream(StreamConfig{Store: store, Stream: "out", Columns: WindowColumns(Column{Name: "n", Type: Int64})})
	if err != nil {
		b.Fatal(err)
	}
	if sp != nil {
		if err := s.OpenState(context.Background(), sp); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

func must(b *testing.B, err error) {
	if err != nil {
		b.Fatal(err)
	}
}

// The baseline: plain Writes, one durable Put per 500 rows.
func BenchmarkStreamPlainWrite(b *testing.B) {
	store, _ := benchStream(b)
	s := benchSink(b, store, nil)
	rows := txnRows(1, benchRows, 100)[0]
	var m meter
	for b.Loop() {
		m.measure(len(rows), func() { must(b, s.Write(context.Background(), rows)) })
	}
	m.report(b)
}

// Commit alone: the staged records' durable Puts and the deletes.
func BenchmarkStreamTxnCommit(b *testing.B) { benchStreamTxn(b, txnSteps{commit: true}) }

// PreCommit alone: encoding the staged records into the state and reading
// the shard positions.
func BenchmarkStreamTxnPreCommit(b *testing.B) { benchStreamTxn(b, txnSteps{preCommit: true}) }

// The whole transactional path per checkpoint: Write, PreCommit, Commit
// (the checkpoint itself is the state layer's cost).
func BenchmarkStreamTxnCycle(b *testing.B) {
	benchStreamTxn(b, txnSteps{write: true, preCommit: true, commit: true})
}

// txnSteps says which steps of a checkpoint a benchmark measures.
type txnSteps struct{ write, preCommit, commit bool }

// benchStreamTxn runs Write, PreCommit and Commit of benchRows rows per
// checkpoint and measures the steps in measured.
func benchStreamTxn(b *testing.B, measured txnSteps) {
	store, sp := benchStream(b)
	s := benchSink(b, store, sp)
	rows := txnRows(1, benchRows, 100)[0]
	ctx := context.Background()
	var m meter
	step := func(measure bool, fn func() error) {
		if measure {
			m.measure(0, func() { must(b, fn()) })
		} else {
			must(b, fn())
		}
	}
	epoch := uint64(0)
	for b.Loop() {
		epoch++
		step(measured.write, func() error { return s.Write(ctx, rows) })
		step(measured.preCommit, func() error { return s.PreCommit(ctx, epoch) })
		step(measured.commit, func() error { return s.Commit(ctx, epoch) })
		m.rows += len(rows)
	}
	m.report(b)
}

// Recovery of a commit cut short after half its records: reading them back
// from the stream, matching, appending the other half.
func BenchmarkStreamTxnRecover(b *testing.B) {
	store, sp := benchStream(b)
	rows := txnRows(1, benchRows, 100)[0]
	ctx := context.Background()
	var m meter
	epoch := uint64(0)
	for b.Loop() {
		epoch++
		s := benchSink(b, store, sp)
		must(b, s.Write(ctx, rows))
		must(b, s.PreCommit(ctx, epoch))
		half := benchRows / 2
		s.put = func(ctx context.Context, recs []streams.PutRecord) error {
			if half <= 0 {
				return errCrash
			}
			half -= len(recs)
			_, err := store.Put(ctx, "out", recs)
			return err
		}
		if err := s.Commit(ctx, epoch); !errors.Is(err, errCrash) {
			b.Fatalf("commit: %v, want the simulated crash", err)
		}
		m.measure(len(rows), func() { benchSink(b, store, sp) })
	}
	m.report(b)
}

// Dashboard PreCommit: storing 10 batches of 100 new rows as Arrow IPC and
// trimming beyond 10,000 retained rows.
func BenchmarkDashboardTxnPreCommit(b *testing.B) {
	_, sp := benchStream(b)
	d, err := NewDashboard(DashboardConfig{Columns: WindowColumns(Column{Name: "n", Type: Int64})})
	must(b, err)
	ctx := context.Background()
	must(b, d.OpenState(ctx, sp))
	rows := txnRows(10, 100, 100)
	var m meter
	epoch := uint64(0)
	for b.Loop() {
		epoch++
		for _, r := range rows {
			must(b, d.Write(ctx, r))
		}
		m.measure(1000, func() { must(b, d.PreCommit(ctx, epoch)) })
	}
	m.report(b)
}
