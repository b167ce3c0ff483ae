package producer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/aws/smithy-go"
)

// entry is one Kinesis record of a batch: a user record sent alone, or an
// aggregated record of several.
type entry struct {
	req   types.PutRecordsRequestEntry
	users []*record
	agg   bool
}

// runQueue sends a shard's records, one batch at a time, until the
// producer closes (or the shard is retired) and the queue is empty.
func (p *Producer) runQueue(q *queue) {
	defer p.wg.Done()
	for {
		batch, ok := p.nextBatch(q)
		if !ok {
			return
		}
		p.send(q, batch)
	}
}

// nextBatch waits until the queue has a batch to send and takes it (the
// queue is then busy), or reports false when the worker should exit.
func (p *Producer) nextBatch(q *queue) ([]entry, bool) {
	for {
		p.mu.Lock()
		if p.ctx.Err() != nil {
			p.mu.Unlock()
			return nil, false
		}
		if len(q.recs) == 0 && (q.retired || p.mu.closing) {
			q.busy = false
			p.signalAllLocked() // queues waiting for this one may go
			p.mu.Unlock()
			return nil, false
		}
		wait := p.readyLocked(q, time.Now())
		if wait == 0 {
			batch := p.takeBatchLocked(q)
			q.busy = true
			p.mu.Unlock()
			return batch, true
		}
		p.mu.Unlock()
		var timer *time.Timer
		var fire <-chan time.Time
		if wait > 0 {
			timer = time.NewTimer(wait)
			fire = timer.C
		}
		select {
		case <-q.wake:
		case <-fire:
		case <-p.ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// readyLocked returns 0 when q should send now, a positive time to wait
// for its linger or backoff, or -1 to wait for a signal.
func (p *Producer) readyLocked(q *queue, now time.Time) time.Duration {
	if len(q.recs) == 0 {
		return -1
	}
	for _, w := range q.waitFor {
		if !w.drained() {
			return -1
		}
	}
	q.waitFor = nil
	if now.Before(q.retryAt) {
		return q.retryAt.Sub(now)
	}
	if p.mu.closing || p.mu.flushing > 0 || q.bytes >= p.batchBytes() ||
		(!p.opts.Aggregate && len(q.recs) >= maxBatchRecords) {
		return 0
	}
	due := q.recs[0].enq.Add(p.opts.Linger)
	if !now.Before(due) {
		return 0
	}
	return due.Sub(now)
}

// batchBytes is the most a batch carries: one second of a shard's write
// limit (1 MiB). Batches go to one shard each, and a shard takes no more
// than that per second on AWS; PutRecords' own bound is 5 MiB.
func (p *Producer) batchBytes() int {
	return min(shardBytesPerSec, maxBatchBytes)
}

// takeBatchLocked removes the next batch from the head of q: at most 500
// Kinesis records and batchBytes bytes, and with PerKey ordering no two
// Kinesis records with the same partition key, so that a partial failure
// cannot put a key's later record ahead of an earlier one.
func (p *Producer) takeBatchLocked(q *queue) []entry {
	var (
		batch   []entry
		size    int
		taken   int
		agg     *aggregator
		aggRecs []*record
		keys    map[string]bool // keys of closed entries
		aggKeys map[string]bool
	)
	perKey := p.opts.Ordering == PerKey
	if perKey {
		keys = map[string]bool{}
	}
	limit := p.batchBytes()
	closeAgg := func() {
		if agg == nil {
			return
		}
		e := entry{users: aggRecs}
		if agg.len() == 1 {
			r := aggRecs[0]
			e.req = types.PutRecordsRequestEntry{PartitionKey: aws.String(r.key), Data: r.data}
		} else {
			e.req = types.PutRecordsRequestEntry{PartitionKey: aws.String(aggRecs[0].key), Data: agg.encode()}
			e.agg = true
		}
		batch = append(batch, e)
		for k := range aggKeys {
			if perKey {
				keys[k] = true
			}
		}
		agg, aggRecs, aggKeys = nil, nil, nil
	}
	for _, r := range q.recs {
		if perKey && keys[r.key] {
			break
		}
		if p.opts.Aggregate && r.size() < p.opts.AggregateMaxBytes {
			if agg != nil && agg.sizeWith(r.key, r.data) > p.opts.AggregateMaxBytes {
				closeAgg()
				if perKey && keys[r.key] {
					break
				}
			}
			if agg == nil && len(batch) >= maxBatchRecords {
				break
			}
			cur := 0 // the open aggregate's size within size
			first := r.key
			if agg != nil {
				cur = aggOverhead + agg.size + len(aggRecs[0].key)
				first = aggRecs[0].key
			}
			var next int
			if agg == nil {
				next = newAggregator().sizeWith(r.key, r.data) + len(first)
			} else {
				next = agg.sizeWith(r.key, r.data) + len(first)
			}
			if size-cur+next > limit && (len(batch) > 0 || agg != nil) {
				break
			}
			if agg == nil {
				agg, aggKeys = newAggregator(), map[string]bool{}
			}
			agg.add(r.key, r.data)
			aggRecs = append(aggRecs, r)
			aggKeys[r.key] = true
			size += next - cur
			taken++
			continue
		}
		closeAgg()
		if perKey && keys[r.key] {
			break
		}
		if len(batch) >= maxBatchRecords || (size+r.size() > limit && len(batch) > 0) {
			break
		}
		batch = append(batch, entry{users: []*record{r},
			req: types.PutRecordsRequestEntry{PartitionKey: aws.String(r.key), Data: r.data}})
		if perKey {
			keys[r.key] = true
		}
		size += r.size()
		taken++
	}
	closeAgg()
	for _, r := range q.recs[:taken] {
		q.bytes -= r.size()
	}
	q.recs = q.recs[taken:]
	return batch
}

// send puts a batch, paced by the shard's limits and bounded by the
// producer's concurrency, and settles its records.
func (p *Producer) send(q *queue, batch []entry) {
	n, size, users := len(batch), 0, 0
	reqs := make([]types.PutRecordsRequestEntry, n)
	for i, e := range batch {
		reqs[i] = e.req
		size += len(e.req.Data) + len(aws.ToString(e.req.PartitionKey))
		users += len(e.users)
	}
	p.mu.Lock()
	wait := q.rate.reserve(time.Now(), n, size)
	p.mu.Unlock()
	if wait > 0 {
		select {
		case <-time.After(wait):
		case <-p.ctx.Done():
		}
	}
	acquired := false
	select {
	case p.sem <- struct{}{}:
		acquired = true
	case <-p.ctx.Done():
	}
	p.metrics.inFlight.Add(float64(users))
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.RequestTimeout)
	out, err := p.api.PutRecords(ctx, &kinesis.PutRecordsInput{StreamName: aws.String(p.stream), Records: reqs}, noRetries, ownBody)
	cancel()
	if acquired {
		<-p.sem
	}
	p.metrics.inFlight.Sub(float64(users))
	p.metrics.requests.Inc()
	if err != nil && p.ctx.Err() != nil {
		err = ErrClosed // a Close whose context ended cut the call short
	}
	if err == nil && len(out.Records) != n {
		err = fmt.Errorf("PutRecords answered %d results for %d records", len(out.Records), n)
	}
	if err != nil {
		p.metrics.callsFailed.Inc()
		// An endpoint that cannot be reached or does not answer is
		// warned of when a series of failures starts and every tenth.
		p.mu.Lock()
		failures := q.failures
		p.mu.Unlock()
		level := slog.LevelDebug
		if failures%10 == 0 && !errors.Is(err, ErrClosed) {
			level = slog.LevelWarn
		}
		p.log.Log(context.Background(), level, "producer: PutRecords failed as a whole; its records are sent again",
			"stream", p.stream, "shard", q.shard.id, "records", users, "failures", failures+1, "err", err)
	}
	var retry []*record
	var lastErr error
	now := time.Now()
	misrouted := false
	var strays []stray
	settle := func(r *record, recErr error) {
		r.attempts++
		r.lastErr = recErr
		if !retriable(recErr) || now.Sub(r.enq) >= p.opts.RecordTTL ||
			(p.opts.MaxAttempts > 0 && r.attempts >= p.opts.MaxAttempts) {
			p.fail(r)
			return
		}
		retry = append(retry, r)
	}
	for i, e := range batch {
		var recErr error
		switch {
		case err != nil:
			recErr = err
		case out.Records[i].ErrorCode != nil:
			recErr = &RecordError{Code: *out.Records[i].ErrorCode, Message: aws.ToString(out.Records[i].ErrorMessage)}
		}
		if recErr == nil {
			res := out.Records[i]
			shard := aws.ToString(res.ShardId)
			if shard != q.predicted {
				misrouted = true
				if e.agg {
					// Routed by its first user record's key to a shard
					// that may not hold the others' hash keys.
					strays = append(strays, stray{e, shard, aws.ToString(res.SequenceNumber)})
					continue
				}
			}
			p.acknowledge(e, shard, aws.ToString(res.SequenceNumber), nil)
			continue
		}
		lastErr = recErr
		for _, r := range e.users {
			settle(r, recErr)
		}
	}
	var fresh []shardRange
	if len(strays) > 0 {
		var wrong error
		fresh, wrong = p.settleStrays(strays, settle)
		if wrong != nil {
			lastErr = wrong
		}
	}
	if len(retry) > 0 {
		p.metrics.retries.Add(float64(len(retry)))
		p.log.Debug("producer: retrying records", "stream", p.stream, "shard", q.shard.id, "records", len(retry), "err", lastErr)
	}
	p.mu.Lock()
	q.busy = false
	if lastErr != nil {
		q.failures++
		q.retryAt = now.Add(p.backoff(q.failures))
	} else {
		q.failures = 0
	}
	if fresh != nil {
		p.mu.lastList = now
		p.installLocked(fresh)
	}
	p.requeueLocked(q, retry)
	if q.drained() {
		p.signalAllLocked()
	}
	p.mu.Unlock()
	if misrouted && fresh == nil {
		p.refresh()
	}
}

// requeueLocked puts records back at the head of their queue, in order:
// q's, or when q was retired by a reshard, the queues of the shards that
// now hold their hash keys (which wait until q is drained).
func (p *Producer) requeueLocked(q *queue, rs []*record) {
	if len(rs) == 0 {
		return
	}
	if !q.retired {
		for _, r := range rs {
			q.bytes += r.size()
		}
		q.recs = append(slices.Clip(rs), q.recs...)
		return
	}
	by := map[*queue][]*record{}
	var order []*queue
	for _, r := range rs {
		t := p.mu.byID[p.mu.ranges[shardFor(p.mu.ranges, r.hash)].id]
		if by[t] == nil {
			order = append(order, t)
		}
		by[t] = append(by[t], r)
		t.bytes += r.size()
	}
	for _, t := range order {
		t.recs = append(by[t], t.recs...)
		t.signal()
	}
}

// stray is an aggregated record acknowledged by another shard than the
// producer predicted (the stream was resharded).
type stray struct {
	e          entry
	shard, seq string
}

// ErrWrongShard is the error of a user record whose aggregated record
// went to a shard whose hash key range does not hold the record's key:
// consumers drop it there (as the KCL does), so it is sent again.
var ErrWrongShard = errors.New("producer: aggregated record went to a shard that does not hold this user record's hash key (stream resharded); sent again")

// settleStrays lists the open shards and, for each stray aggregated
// record, acknowledges the user records whose hash keys the shard it went
// to holds and settles the others (through settle) as failed with
// ErrWrongShard, as the KPL does after a reshard. It returns the fresh
// shard list (nil when listing failed: then every user record is sent
// again) and ErrWrongShard when a record is sent again.
func (p *Producer) settleStrays(strays []stray, settle func(*record, error)) ([]shardRange, error) {
	ctx, cancel := context.WithTimeout(p.ctx, p.opts.RequestTimeout)
	ranges, err := listOpenShards(ctx, p.api, p.stream)
	cancel()
	if err != nil {
		p.log.Error("producer: list shards after a misrouted aggregated record", "stream", p.stream, "err", err)
		p.metrics.listErrors.Inc()
		ranges = nil
	}
	var wrong error
	for _, st := range strays {
		i := slices.IndexFunc(ranges, func(r shardRange) bool { return r.id == st.shard })
		held := func(r *record) bool { return i >= 0 && ranges[i].holds(r.hash) }
		p.acknowledge(st.e, st.shard, st.seq, held)
		for _, r := range st.e.users {
			if !held(r) {
				wrong = ErrWrongShard
				settle(r, ErrWrongShard)
			}
		}
	}
	return ranges, wrong
}

// acknowledge reports the user records of an acknowledged entry: those
// for which only says true, or all when only is nil.
func (p *Producer) acknowledge(e entry, shard, seq string, only func(*record) bool) {
	size, n := 0, 0
	for i, r := range e.users {
		if only != nil && !only(r) {
			continue
		}
		n++
		size += r.size()
		p.metrics.recordsSent.Inc()
		p.metrics.bytesSent.Add(float64(len(r.data)))
		if p.opts.OnResult != nil {
			sub := -1
			if e.agg {
				sub = i
			}
			p.opts.OnResult(Result{Key: r.key, Data: r.data, ShardID: shard, SequenceNumber: seq, SubSequence: sub, Attempts: r.attempts + 1, Meta: r.meta})
		}
	}
	if n == 0 {
		return
	}
	p.metrics.kinesisRecords.Inc()
	p.mu.Lock()
	p.resolveLocked(n, size)
	p.mu.Unlock()
}

// backoff returns base·2^(failures-1) capped at BackoffMax, with jitter
// over its upper half, so that shards retrying together spread out.
func (p *Producer) backoff(failures int) time.Duration {
	d := p.opts.BackoffBase
	for i := 1; i < failures && d < p.opts.BackoffMax; i++ {
		d *= 2
	}
	d = min(d, p.opts.BackoffMax)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// RecordError is a per-record failure PutRecords reported.
type RecordError struct {
	Code, Message string
}

func (e *RecordError) Error() string { return e.Code + ": " + e.Message }

// retriable says whether another attempt can succeed: per-record errors
// (throttling, internal failures) and request errors other than those
// that say the request itself is wrong or not allowed.
func retriable(err error) bool {
	var re *RecordError
	if errors.As(err, &re) {
		return true
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, ErrClosed) {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "ResourceNotFoundException", "ValidationException", "InvalidArgumentException",
			"AccessDeniedException", "UnrecognizedClientException", "MissingAuthenticationTokenException",
			"IncompleteSignatureException", "InvalidSignatureException", "KMSAccessDeniedException",
			"KMSDisabledException", "KMSNotFoundException", "KMSInvalidStateException":
			return false
		}
	}
	return true
}
