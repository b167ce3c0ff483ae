package kinesis

import (
	"sort"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/streams"
)

// Per-shard throughput limits of AWS, applied with --shard-limits.
const (
	writeBytesPerSec   = 1 << 20
	writeRecordsPerSec = 1000
	readBytesPerSec    = 2 << 20
	readCallsPerSec    = 5
)

// bucket is a token bucket refilled on use.
type bucket struct {
	tokens float64
	last   time.Time
}

func (b *bucket) refill(now time.Time, rate, burst float64) {
	if b.last.IsZero() {
		b.tokens, b.last = burst, now
		return
	}
	b.tokens = min(burst, b.tokens+rate*now.Sub(b.last).Seconds())
	b.last = now
}

type shardBuckets struct {
	wBytes, wRecs, rBytes, rCalls bucket
}

// limiter holds the buckets of every shard.
type limiter struct {
	now func() time.Time
	// scale multiplies the per-shard rates and bursts.
	scale float64
	mu    struct {
		sync.Mutex
		shards map[string]*shardBuckets
	}
}

func newLimiter(now func() time.Time) *limiter {
	l := &limiter{now: now, scale: 1}
	l.mu.shards = map[string]*shardBuckets{}
	return l
}

// get returns a shard's buckets; caller holds mu.
func (l *limiter) get(stream, shard string) *shardBuckets {
	k := stream + "/" + shard
	b := l.mu.shards[k]
	if b == nil {
		b = &shardBuckets{}
		l.mu.shards[k] = b
	}
	return b
}

// admitPuts routes each record to its shard as the store will and takes
// its bytes and one record from the shard's write buckets. It returns
// refused with the throttling error of each record that may not be put
// added (records refused already are skipped and take nothing); refused
// is allocated when nil and a record is refused, and stays nil otherwise.
func (l *limiter) admitPuts(h *Handler, stream string, recs []streams.PutRecord, refused []*apiError) []*apiError {
	shards := h.shardsOf(stream, recs)
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := range recs {
		if shards[i] == "" || refused != nil && refused[i] != nil {
			// No open shard (or no stream): the put itself reports why.
			continue
		}
		b := l.get(stream, shards[i])
		b.wBytes.refill(now, l.scale*writeBytesPerSec, l.scale*writeBytesPerSec)
		b.wRecs.refill(now, l.scale*writeRecordsPerSec, l.scale*writeRecordsPerSec)
		size := float64(len(recs[i].Data) + len(recs[i].PartitionKey))
		if b.wRecs.tokens >= 1 && b.wBytes.tokens >= size {
			b.wRecs.tokens--
			b.wBytes.tokens -= size
			continue
		}
		if refused == nil {
			refused = make([]*apiError, len(recs))
		}
		refused[i] = h.throttledWrite(stream, shards[i])
	}
	return refused
}

// shardsOf names the open shard each record goes to, as the log routes
// it (the write limits and the injected throttles count by it); "" when
// the stream cannot be described (the put itself then reports why).
func (h *Handler) shardsOf(name string, recs []streams.PutRecord) []string {
	out := make([]string, len(recs))
	info, err := h.store.DescribeStream(name)
	if err != nil {
		return out
	}
	var open []streams.ShardInfo
	for _, s := range info.Shards {
		if s.Open {
			open = append(open, s)
		}
	}
	sort.Slice(open, func(i, j int) bool { return open[i].Range.Start.Cmp(open[j].Range.Start) < 0 })
	for i := range recs {
		hk := streams.HashPartitionKey(recs[i].PartitionKey)
		if recs[i].ExplicitHashKey != "" {
			hk, _ = streams.ParseHashKey(recs[i].ExplicitHashKey)
		}
		if j := sort.Search(len(open), func(j int) bool { return open[j].Range.End.Cmp(hk) >= 0 }); j < len(open) {
			out[i] = open[j].ID
		}
	}
	return out
}

// admitRead takes one call from the shard's read bucket; a shard that has
// read more than its byte rate waits until the debt is repaid.
func (l *limiter) admitRead(stream, shard string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.get(stream, shard)
	b.rCalls.refill(now, l.scale*readCallsPerSec, l.scale*readCallsPerSec)
	b.rBytes.refill(now, l.scale*readBytesPerSec, l.scale*readBytesPerSec)
	if b.rCalls.tokens < 1 || b.rBytes.tokens <= 0 {
		return false
	}
	b.rCalls.tokens--
	return true
}

func (l *limiter) chargeRead(stream, shard string, n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.get(stream, shard).rBytes.tokens -= float64(n)
}
