package kinesis

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
	kinesissrc "github.com/runnel-dev/runnel/sources/kinesis"
)

// anyKeys makes the default credential chain find keys; a server without
// --auth accepts any.
func anyKeys(t *testing.T) { testsrv.AWSTestKeys(t) }

func windowRows(from, to int) []sinks.Row {
	var rows []sinks.Row
	for i := from; i < to; i++ {
		k := fmt.Sprintf("page-%d", i%13)
		rows = append(rows, sinks.Row{Key: k, Value: map[string]any{"key": k, "window_start": float64(i / 13 * 1000), "views": float64(i)}})
	}
	return rows
}

// readStream reads every record of the stream (KPL records de-aggregated)
// with the kinesis source, shard by shard, until n arrived.
func readStream(t *testing.T, url, stream string, n int) []map[string]any {
	t.Helper()
	src, err := kinesissrc.New(context.Background(), kinesissrc.Config{Stream: stream,
		Conn: kinesisconn.Conn{Endpoint: url, Region: "us-east-1"}, PollInterval: 20 * time.Millisecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	shards, err := src.Shards(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	for _, sh := range shards {
		r, err := src.Open(ctx, sh, "")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]sources.Record, 500)
		for {
			// The stream holds everything already: a read that waits a
			// second has reached the shard's end.
			rctx, rcancel := context.WithTimeout(ctx, time.Second)
			k, err := r.Read(rctx, buf)
			rcancel()
			for _, rec := range buf[:k] {
				out = append(out, rec.Value.(map[string]any))
			}
			if err != nil {
				if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, io.EOF) {
					t.Fatal(err)
				}
				break
			}
		}
		r.Close()
	}
	if len(out) < n {
		t.Fatalf("read %d records, want at least %d", len(out), n)
	}
	return out
}

// TestWritesEveryRowThroughThrottling writes rows to a server that
// throttles 40% of PutRecords calls, with a checkpoint flush between
// two batches, then writes the second batch again as a replay after a
// restore would: every row is in the stream, and the replayed rows carry
// the ids of the first writes, so de-duplicating by id leaves each row
// once. Run plain and with KPL aggregation.
func TestWritesEveryRowThroughThrottling(t *testing.T) {
	anyKeys(t)
	for _, agg := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregate=%v", agg), func(t *testing.T) {
			srv := testsrv.StartRunnel(t, "--inject", "PutRecords:throttle:0.4", "--streams", "out:3")
			ctx := context.Background()
			cfg := Config{Stream: "out", Conn: kinesisconn.Conn{Endpoint: srv.URL, Region: "us-east-1"}, Aggregate: agg,
				Job: "j", Sink: "s", Linger: 10 * time.Millisecond}
			s, err := New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(ctx, windowRows(0, 600)); err != nil {
				t.Fatal(err)
			}
			if err := s.PreCommit(ctx, 1); err != nil {
				t.Fatal(err)
			}
			if got := s.Written(); got != 600 {
				t.Fatalf("after the checkpoint flush %d rows acknowledged, want 600", got)
			}
			if err := s.Write(ctx, windowRows(600, 1000)); err != nil {
				t.Fatal(err)
			}
			stats := s.Stats()
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			// A restarted job restored from checkpoint 1 writes rows
			// 600-999 again, after epoch 1.
			again, err := New(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			again.epoch = 1
			if err := again.Write(ctx, windowRows(600, 1000)); err != nil {
				t.Fatal(err)
			}
			if err := again.Close(); err != nil {
				t.Fatal(err)
			}
			if stats.Retries+s.Stats().Retries+again.Stats().Retries == 0 {
				t.Error("no PutRecords retries: the injected throttling was not seen")
			}
			got := readStream(t, srv.URL, "out", 1400)
			byID := map[string]map[string]any{}
			for _, rec := range got {
				id, _ := rec[DefaultIDField].(string)
				if prev, dup := byID[id]; dup && fmt.Sprint(prev) != fmt.Sprint(rec) {
					t.Fatalf("id %s on two different rows: %v and %v", id, prev, rec)
				}
				byID[id] = rec
			}
			views := map[float64]bool{}
			for _, rec := range byID {
				views[rec["views"].(float64)] = true
			}
			if len(byID) != 1000 || len(views) != 1000 {
				t.Fatalf("%d records, %d distinct ids, %d distinct rows; want 1000 rows each with one id", len(got), len(byID), len(views))
			}
			if len(got) > 1400 {
				t.Errorf("%d records for 1400 writes: the retries of failed records duplicated some", len(got))
			}
		})
	}
}

func TestValidate(t *testing.T) {
	for _, c := range []Config{
		{Job: "j", Sink: "s"},
		{Stream: "s"},
		{Stream: "s", Job: "j", Sink: "s", Conn: kinesisconn.Conn{Endpoint: "ftp://x"}},
	} {
		if err := c.Validate(); !errors.Is(err, sinks.ErrConfig) {
			t.Errorf("Validate(%+v) = %v, want a configuration error", c, err)
		}
	}
}
