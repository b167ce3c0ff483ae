package producer

import (
	"bytes"
	"context"
	"crypto/md5"
	"fmt"
	"math/big"
	"sort"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
)

// hashKey is a partition key's 128-bit hash key (the MD5 of the key, big
// endian), which Kinesis uses to route a record to the shard whose hash
// key range holds it.
type hashKey [16]byte

func hashOf(key string) hashKey { return md5.Sum([]byte(key)) }

func parseHashKey(s string) (hashKey, error) {
	var h hashKey
	n, ok := new(big.Int).SetString(s, 10)
	if !ok || n.Sign() < 0 || n.BitLen() > 128 {
		return h, fmt.Errorf("hash key %q is not a 128-bit decimal number", s)
	}
	n.FillBytes(h[:])
	return h, nil
}

// shardRange is one open shard's hash key range.
type shardRange struct {
	id         string
	start, end hashKey
}

// holds says whether h lies in the range.
func (s shardRange) holds(h hashKey) bool {
	return bytes.Compare(s.start[:], h[:]) <= 0 && bytes.Compare(h[:], s.end[:]) <= 0
}

// listOpenShards lists the stream's open shards (those without an ending
// sequence number), sorted by the start of their hash key range.
func listOpenShards(ctx context.Context, api API, stream string) ([]shardRange, error) {
	var out []shardRange
	in := &kinesis.ListShardsInput{StreamName: aws.String(stream)}
	for {
		res, err := api.ListShards(ctx, in, noRetries)
		if err != nil {
			return nil, err
		}
		for _, s := range res.Shards {
			if s.SequenceNumberRange != nil && s.SequenceNumberRange.EndingSequenceNumber != nil {
				continue
			}
			if s.HashKeyRange == nil || s.ShardId == nil {
				return nil, fmt.Errorf("shard without an id or hash key range")
			}
			lo, err := parseHashKey(aws.ToString(s.HashKeyRange.StartingHashKey))
			if err != nil {
				return nil, fmt.Errorf("shard %s: %w", *s.ShardId, err)
			}
			hi, err := parseHashKey(aws.ToString(s.HashKeyRange.EndingHashKey))
			if err != nil {
				return nil, fmt.Errorf("shard %s: %w", *s.ShardId, err)
			}
			out = append(out, shardRange{id: *s.ShardId, start: lo, end: hi})
		}
		if res.NextToken == nil || *res.NextToken == "" {
			break
		}
		in = &kinesis.ListShardsInput{NextToken: res.NextToken}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("stream %s has no open shards", stream)
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].start[:], out[j].start[:]) < 0 })
	return out, nil
}

// shardFor returns the index of the range holding h, or the last range
// whose start is at or below h when the ranges have a gap (the server's
// answer then corrects the prediction).
func shardFor(ranges []shardRange, h hashKey) int {
	i := sort.Search(len(ranges), func(i int) bool { return bytes.Compare(ranges[i].start[:], h[:]) > 0 })
	if i == 0 {
		return 0
	}
	return i - 1
}

// queue holds the records bound for one shard, oldest first. At most one
// batch of a queue is in flight. Guarded by Producer.mu.
type queue struct {
	shard     shardRange
	recs      []*record
	bytes     int
	busy      bool      // a batch is in flight
	retired   bool      // the shard closed: no new records; drains, then exits
	retryAt   time.Time // no send before this (backoff)
	failures  int       // consecutive failed attempts, for the backoff
	waitFor   []*queue  // queues of replaced shards that must drain first
	wake      chan struct{}
	rate      limiter
	predicted string // shard id, for the misprediction check
}

func newQueue(s shardRange, o *Options) *queue {
	q := &queue{shard: s, predicted: s.id, wake: make(chan struct{}, 1)}
	if !o.NoRateLimit {
		q.rate = limiter{
			bytes: bucket{rate: float64(shardBytesPerSec), burst: float64(shardBytesPerSec)},
			recs:  bucket{rate: float64(shardRecordsPerSec), burst: float64(shardRecordsPerSec)},
			on:    true,
		}
	}
	return q
}

func (q *queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// drained says whether the queue holds nothing and sends nothing.
func (q *queue) drained() bool { return len(q.recs) == 0 && !q.busy }

// Kinesis's per-shard write limits.
const (
	shardBytesPerSec   = 1 << 20
	shardRecordsPerSec = 1000
)

// bucket is a token bucket that may go into debt: take returns how long
// to wait until the debt is repaid.
type bucket struct {
	rate, burst, tokens float64
	last                time.Time
}

func (b *bucket) take(now time.Time, n float64) time.Duration {
	if b.last.IsZero() {
		b.tokens = b.burst
	} else {
		b.tokens = min(b.burst, b.tokens+b.rate*now.Sub(b.last).Seconds())
	}
	b.last = now
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / b.rate * float64(time.Second))
}

// limiter keeps a shard's writes within Kinesis's per-shard limits.
type limiter struct {
	bytes, recs bucket
	on          bool
}

// reserve takes n records of size bytes and returns how long to wait
// before sending them.
func (l *limiter) reserve(now time.Time, n, size int) time.Duration {
	if !l.on {
		return 0
	}
	return max(l.bytes.take(now, float64(size)), l.recs.take(now, float64(n)))
}
