package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/internal/testutil/kinesisfake"
)

// unreachable fails its first PutRecords calls as a whole, as an
// endpoint that is down does, then accepts every record.
type unreachable struct {
	kinesisfake.OneShard
	failing atomic.Int64
}

func (u *unreachable) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, o ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	if u.failing.Add(-1) >= 0 {
		return nil, errors.New(`Post "http://127.0.0.1:1/": dial tcp 127.0.0.1:1: connect: connection refused`)
	}
	return u.OneShard.PutRecords(ctx, in, o...)
}

// TestUnreachableEndpointIsWarned: a producer whose PutRecords calls fail
// as a whole 12 times in a row warns, naming stream and shard, when the
// series starts and at its tenth failure (not at each), and then writes
// every record.
func TestUnreachableEndpointIsWarned(t *testing.T) {
	api := &unreachable{}
	api.failing.Store(12)
	var logs testutil.Buffer
	c := newCollector()
	p, err := New(context.Background(), Target{Stream: "down", Client: api}, Options{Linger: time.Millisecond,
		BackoffBase: time.Millisecond, BackoffMax: 2 * time.Millisecond, RecordTTL: time.Hour, OnResult: c.onResult,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{}
	for i := range 5 {
		d := fmt.Appendf(nil, `{"k":"k","i":%d}`, i)
		if err := p.Put(context.Background(), "k", d); err != nil {
			t.Fatal(err)
		}
		want["k"]++
	}
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkResults(t, c, want)
	var warns []string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "level=WARN") && strings.Contains(l, "failed as a whole") &&
			strings.Contains(l, "stream=down") && strings.Contains(l, "shard=shardId-000000000000") {
			warns = append(warns, l)
		}
	}
	if len(warns) != 2 || !strings.Contains(warns[0], "failures=1 ") || !strings.Contains(warns[1], "failures=11 ") {
		t.Fatalf("12 failed calls: want warnings at the 1st and 11th, got %d:\n%s\nall logs:\n%s", len(warns), strings.Join(warns, "\n"), logs.String())
	}
}
