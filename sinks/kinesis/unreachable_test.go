package kinesis

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/internal/testutil/kinesisfake"
	"github.com/runnel-dev/runnel/sinks"
)

// downAPI is a one-shard stream whose endpoint refuses its first
// PutRecords and ListShards calls, as one that is down does.
type downAPI struct {
	kinesisfake.OneShard
	failing     atomic.Int64 // PutRecords calls still to refuse
	listFailing atomic.Int64 // ListShards calls still to refuse
	listMissing atomic.Bool  // ListShards answers that the stream is missing
}

func (d *downAPI) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, o ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if d.failing.Add(-1) >= 0 {
		return nil, errors.New(`Post "http://127.0.0.1:9/": dial tcp 127.0.0.1:9: connect: connection refused`)
	}
	return d.OneShard.PutRecords(ctx, in, o...)
}

func (d *downAPI) ListShards(ctx context.Context, in *kinesis.ListShardsInput, o ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	if d.listMissing.Load() {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Stream views not found")}
	}
	if d.listFailing.Add(-1) >= 0 {
		return nil, errors.New(`Post "http://127.0.0.1:9/": dial tcp 127.0.0.1:9: connect: connection refused`)
	}
	return d.OneShard.ListShards(ctx, in, o...)
}

// flushTwenty writes 20 window rows to s, pre-commits them as checkpoint
// 1 and closes s; the test fails unless s wrote all 20.
func flushTwenty(t *testing.T, s *Sink) {
	t.Helper()
	if err := s.Write(context.Background(), windowRows(0, 20)); err != nil {
		t.Fatal(err)
	}
	if err := s.PreCommit(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Written() != 20 {
		t.Fatalf("written %d rows, want 20", s.Written())
	}
}

// TestDownEndpointIsWarned: while the endpoint refuses PutRecords, the
// sink warns naming its id, the stream, the shard and the endpoint, and
// the checkpoint's flush completes once the endpoint is back.
func TestDownEndpointIsWarned(t *testing.T) {
	api := &downAPI{}
	api.failing.Store(3)
	var logs testutil.Buffer
	s, err := New(context.Background(), Config{Stream: "views", Conn: kinesisconn.Conn{Endpoint: "http://127.0.0.1:9"},
		Job: "j", Sink: "out", Linger: time.Millisecond, api: api, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	flushTwenty(t, s)
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "sink=out") && strings.Contains(l, "stream=views") &&
			strings.Contains(l, "shard=shardId-000000000000") && strings.Contains(l, "endpoint=http://127.0.0.1:9") {
			return
		}
	}
	t.Fatalf("no warning names the sink, stream, shard and endpoint; logs:\n%s", logs.String())
}

// TestStartsWhileEndpointDown: a sink whose endpoint refuses ListShards
// at New (a job starting while its Kinesis is down) is made all the same,
// warns naming the endpoint, and writes every row once the endpoint is
// back; a missing stream still fails New.
func TestStartsWhileEndpointDown(t *testing.T) {
	api := &downAPI{}
	api.listFailing.Store(3)
	var logs testutil.Buffer
	cfg := Config{Stream: "views", Conn: kinesisconn.Conn{Endpoint: "http://127.0.0.1:9"},
		Job: "j", Sink: "out", Linger: time.Millisecond, api: api, Logger: slog.New(slog.NewTextHandler(&logs, nil))}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New with the endpoint down: %v", err)
	}
	flushTwenty(t, s)
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "endpoint=http://127.0.0.1:9") {
		t.Fatalf("no warning names the endpoint; logs:\n%s", logs.String())
	}

	api.listMissing.Store(true)
	if _, err := New(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") {
		t.Fatalf("New on a missing stream: %v, want its ResourceNotFoundException", err)
	}
}

// heldAPI is a one-shard stream whose endpoint holds PutRecords until
// released, as a paused one does.
type heldAPI struct {
	downAPI
	release chan struct{}
}

func (h *heldAPI) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, o ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	select {
	case <-h.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return h.downAPI.PutRecords(ctx, in, o...)
}

// TestWaitingFlushIsListed: a checkpoint's flush that waits on an
// endpoint that does not answer is listed among the job's stalled sink
// calls (sinks.Stalled, shown in the job's warnings) naming the stream
// and endpoint, and no longer once the endpoint answered.
func TestWaitingFlushIsListed(t *testing.T) {
	api := &heldAPI{release: make(chan struct{})}
	const job = "flush-waits-job"
	s, err := New(context.Background(), Config{Stream: "views", Conn: kinesisconn.Conn{Endpoint: "http://127.0.0.1:9"},
		Job: job, Sink: "out", Linger: time.Millisecond, api: api, Logger: slog.New(slog.NewTextHandler(&testutil.Buffer{}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	s.watch = s.watch.WithAfter(10 * time.Millisecond)
	if err := s.Write(context.Background(), windowRows(0, 5)); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.PreCommit(context.Background(), 1) }()
	testutil.Eventually(t, 20*time.Second, func() bool {
		st := sinks.Stalled(job)
		return len(st) == 1 && st[0].Sink == "out" && st[0].Kind == "kinesis" &&
			strings.Contains(st[0].Target, "views") && strings.Contains(st[0].Target, "127.0.0.1:9")
	}, "the waiting flush is not listed as stalled: %v", sinks.Stalled(job))
	close(api.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := sinks.Stalled(job); len(st) != 0 {
		t.Fatalf("still listed after the flush: %v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}
