package producer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/internal/testutil/kinesisfake"
)

// TestTakeBatch checks the batch rules on random queues: a batch is a
// prefix of the queue in order, within 500 Kinesis records and the byte
// bound, and with PerKey no two of its Kinesis records share a key.
func TestTakeBatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 7))
	for round := 0; round < 300; round++ {
		opts := Options{Aggregate: rng.IntN(2) == 0, Ordering: Ordering(rng.IntN(2)), NoRateLimit: rng.IntN(2) == 0,
			AggregateMaxBytes: []int{1 << 10, 50 << 10}[rng.IntN(2)]}
		opts.EnsureDefaults()
		p := &Producer{opts: opts}
		q := &queue{}
		keys := 1 + rng.IntN(1000)
		for i := 0; i < 1+rng.IntN(3000); i++ {
			r := &record{key: fmt.Sprint("k", rng.IntN(keys)), data: make([]byte, []int{10, 300, 20 << 10}[rng.IntN(3)])}
			q.recs = append(q.recs, r)
			q.bytes += r.size()
		}
		before := append([]*record(nil), q.recs...)
		batch := p.takeBatchLocked(q)
		if len(batch) == 0 || len(batch) > maxBatchRecords {
			t.Fatalf("round %d (%+v): batch of %d Kinesis records", round, opts, len(batch))
		}
		size, i := 0, 0
		seen := map[string]bool{}
		for _, e := range batch {
			size += len(e.req.Data) + len(aws.ToString(e.req.PartitionKey))
			if len(e.req.Data)+len(*e.req.PartitionKey) > maxRecordBytes {
				t.Fatalf("round %d: a Kinesis record of %d bytes", round, len(e.req.Data))
			}
			keys := map[string]bool{}
			for _, u := range e.users {
				if u != before[i] {
					t.Fatalf("round %d: user record %d is not the queue's next", round, i)
				}
				i++
				keys[u.key] = true
			}
			for k := range keys {
				if opts.Ordering == PerKey && seen[k] {
					t.Fatalf("round %d: key %s in two Kinesis records of one batch", round, k)
				}
				seen[k] = true
			}
		}
		if size > p.batchBytes() {
			t.Fatalf("round %d: batch of %d bytes, bound %d", round, size, p.batchBytes())
		}
		if len(q.recs) != len(before)-i {
			t.Fatalf("round %d: queue kept %d of %d after taking %d", round, len(q.recs), len(before), i)
		}
	}
}

// TestCloseStopsGoroutines: after Close every goroutine the producer
// started has returned.
func TestCloseStopsGoroutines(t *testing.T) {
	base := runtime.NumGoroutine()
	for i := 0; i < 3; i++ {
		p, err := New(context.Background(), Target{Stream: "s", Client: &kinesisfake.OneShard{}}, Options{Linger: time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		for j := 0; j < 1000; j++ {
			p.Put(context.Background(), fmt.Sprint(j), []byte("x"))
		}
		if err := p.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	testutil.WaitGoroutines(t, base)
}

// stuck never answers PutRecords before its context ends.
type stuck struct{ kinesisfake.OneShard }

func (s *stuck) PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestCloseDeadline: a Close whose context ends reports every record not
// yet acknowledged as failed with ErrClosed, each once.
func TestCloseDeadline(t *testing.T) {
	var got, closed atomic.Int64
	p, err := New(context.Background(), Target{Stream: "s", Client: &stuck{}}, Options{Linger: time.Millisecond,
		OnResult: func(r Result) {
			got.Add(1)
			if errors.Is(r.Err, ErrClosed) {
				closed.Add(1)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	for j := 0; j < 2000; j++ {
		p.Put(context.Background(), fmt.Sprint(j), []byte("x"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close returned %v", err)
	}
	if got.Load() != 2000 || closed.Load() != 2000 {
		t.Fatalf("%d results, %d with ErrClosed, for 2000 records", got.Load(), closed.Load())
	}
	if err := p.Put(context.Background(), "k", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
}
