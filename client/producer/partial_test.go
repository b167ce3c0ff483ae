package producer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/testutil/kinesisfake"
)

// partialLog is an in-process stream that stores some entries of each
// PutRecords and answers the others with a per-record error, as a server
// does when a write fails on one shard and not on another: a record
// answered with an ErrorCode was not stored, so the stream holds a record
// twice only if the producer sends a stored one again.
type partialLog struct {
	mu     sync.Mutex
	rng    *rand.Rand
	stored map[string][]string // user record data -> sequence numbers it was stored under
	sent   int                 // entries received
	failed int                 // entries answered with an error
	seq    int
}

func (l *partialLog) PutRecords(_ context.Context, in *kinesis.PutRecordsInput, _ ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := &kinesis.PutRecordsOutput{}
	failed := int32(0)
	for _, e := range in.Records {
		l.sent++
		if l.rng.IntN(3) == 0 {
			l.failed++
			failed++
			code := "InternalFailure"
			if l.rng.IntN(2) == 0 {
				code = "ProvisionedThroughputExceededException"
			}
			out.Records = append(out.Records, types.PutRecordsResultEntry{ErrorCode: aws.String(code), ErrorMessage: aws.String("shard shardId-000000000000 did not store the record")})
			continue
		}
		l.seq++
		seq := fmt.Sprint(l.seq)
		users, err := deaggregate(e.Data)
		if errors.Is(err, errNotAggregated) {
			users, err = []userRecord{{Key: aws.ToString(e.PartitionKey), Data: e.Data}}, nil
		}
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			l.stored[string(u.Data)] = append(l.stored[string(u.Data)], seq)
		}
		out.Records = append(out.Records, types.PutRecordsResultEntry{ShardId: aws.String("shardId-000000000000"), SequenceNumber: aws.String(seq)})
	}
	out.FailedRecordCount = aws.Int32(failed)
	return out, nil
}

func (l *partialLog) ListShards(ctx context.Context, in *kinesis.ListShardsInput, o ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error) {
	return (&kinesisfake.OneShard{}).ListShards(ctx, in, o...)
}

// TestProducerRetriesOnlyFailedEntries: against a stream that answers a
// third of the entries of every PutRecords with a per-record error, the
// producer sends again only those entries, so the stream holds every
// record exactly once, under the sequence number the producer reported.
func TestProducerRetriesOnlyFailedEntries(t *testing.T) {
	for _, aggregate := range []bool{false, true} {
		t.Run(fmt.Sprintf("aggregate=%v", aggregate), func(t *testing.T) {
			seed := testSeed(t)
			log := &partialLog{rng: rand.New(rand.NewPCG(seed, 1)), stored: map[string][]string{}}
			c := newCollector()
			p, err := New(context.Background(), Target{Stream: "s", Client: log}, Options{
				Aggregate: aggregate, AggregateMaxBytes: 1 << 10, OnResult: c.onResult,
				BackoffBase: time.Microsecond, BackoffMax: time.Millisecond, Linger: time.Millisecond,
				RecordTTL: 10 * time.Minute,
			})
			if err != nil {
				t.Fatal(err)
			}
			want := putAllAndClose(t, p, c, rand.New(rand.NewPCG(seed, 2)), 3000, 10)
			log.mu.Lock()
			defer log.mu.Unlock()
			if log.failed == 0 {
				t.Fatal("no entry was answered with an error")
			}
			if stored := log.sent - log.failed; stored > 3000 || (!aggregate && stored != 3000) {
				t.Fatalf("%d entries sent, %d answered failed: %d stored for 3000 records", log.sent, log.failed, stored)
			}
			for _, r := range c.results {
				seqs := log.stored[string(r.Data)]
				if len(seqs) != 1 || seqs[0] != r.SequenceNumber {
					var x rec
					json.Unmarshal(r.Data, &x)
					t.Fatalf("record %v stored under %v, reported under %s: want once", x, seqs, r.SequenceNumber)
				}
			}
			total := 0
			for _, n := range want {
				total += n
			}
			if len(log.stored) != total {
				t.Fatalf("the stream holds %d distinct records, %d were put", len(log.stored), total)
			}
		})
	}
}
