package consumer

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/backoff"
	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/streams"
)

// run reads the shard from its checkpoint until the shard ends (then it
// checkpoints SHARD_END, which finishes the lease), the lease is lost, or
// a hand-off is asked for (then it releases the lease at its checkpoint).
func (r *shardRunner) run(ctx context.Context) error {
	w, l := r.w, r.lease
	api := w.g.Kinesis
	rng, err := hashRange(l)
	if err != nil {
		return err
	}
	pos := l.Checkpoint // everything up to pos is handled
	r.health = &readHealth{log: w.log, shard: l.Shard}
	iter, err := r.iterator(ctx, pos)
	if err != nil {
		return err
	}
	w.log.Info("shard lease taken", "shard", l.Shard, "epoch", l.Epoch, "from", pos.SequenceNumber, "sub", pos.SubSequenceNumber)
	for {
		if r.handingOff() {
			return r.handOff(ctx, pos)
		}
		out, err := api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: iter, Limit: aws.Int32(int32(w.g.MaxRecords))})
		switch {
		case err == nil:
			r.health.ok()
		case ctx.Err() != nil:
			return nil
		case kinesisconn.Code(err) == "ExpiredIteratorException":
			if iter, err = r.iterator(ctx, pos); err != nil {
				return err
			}
			continue
		default:
			w.m.readErrors.Inc()
			if err := r.health.failed(ctx, "GetRecords", err); err != nil {
				return stopErr(ctx, err)
			}
			continue
		}
		recs := r.userRecords(out.Records, rng, pos)
		if len(recs) > 0 {
			last := recs[len(recs)-1]
			batch := Batch{ShardID: l.Shard, Records: recs, MillisBehindLatest: aws.ToInt64(out.MillisBehindLatest)}
			if !r.handle(ctx, batch) {
				return nil
			}
			next := consumergroups.Checkpoint{SequenceNumber: last.SequenceNumber, SubSequenceNumber: last.SubSequenceNumber}
			if err := w.g.Leases.Checkpoint(ctx, l.Shard, w.g.Worker, l.Epoch, next); err != nil {
				if isLost(err) {
					w.m.lost.Inc()
					w.log.Warn("checkpoint refused: the lease was taken over; stopping the shard", "shard", l.Shard, "epoch", l.Epoch, "err", err)
					return nil
				}
				// Not stored: the batch will be handed again after a
				// restart; carry on (at least once).
				w.log.Warn("checkpoint failed", "shard", l.Shard, "err", err)
			} else {
				w.m.checkpoints.Inc()
			}
			pos = next
		}
		if out.NextShardIterator == nil || *out.NextShardIterator == "" {
			return r.end(ctx)
		}
		iter = out.NextShardIterator
		if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
			if backoff.Sleep(ctx, w.g.IdleTimeBetweenReads) != nil {
				return nil
			}
		}
	}
}

// handle hands b to the handler until it returns nil, and reports whether
// it did (false: the lease was lost or the worker stopped meanwhile).
func (r *shardRunner) handle(ctx context.Context, b Batch) bool {
	w := r.w
	delay := w.g.RetryBackoff
	for {
		for !r.leaseValid() { // no Sync for a lease duration: wait for one
			if backoff.Sleep(ctx, 50*time.Millisecond) != nil {
				return false
			}
		}
		err := w.h(ctx, b)
		if err == nil {
			w.m.records.Add(float64(len(b.Records)))
			w.m.batches.Inc()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		w.m.handlerErrors.Inc()
		w.log.Warn("handler failed; handing the batch again", "shard", b.ShardID, "records", len(b.Records), "retry_in", delay, "err", err)
		if backoff.Sleep(ctx, delay) != nil {
			return false
		}
		delay = min(2*delay, 30*time.Second)
	}
}

// end checkpoints SHARD_END, retrying until it is stored or the lease is
// lost; the shard's children become eligible then.
func (r *shardRunner) end(ctx context.Context) error {
	w, l := r.w, r.lease
	var b backoff.Backoff
	for {
		err := w.g.Leases.Checkpoint(ctx, l.Shard, w.g.Worker, l.Epoch, consumergroups.Checkpoint{SequenceNumber: consumergroups.ShardEnd})
		switch {
		case err == nil:
			w.log.Info("shard finished", "shard", l.Shard)
			w.m.checkpoints.Inc()
			select {
			case w.wake <- struct{}{}:
			default:
			}
			return nil
		case isLost(err):
			w.m.lost.Inc()
			w.log.Warn("shard end refused: the lease was taken over", "shard", l.Shard, "err", err)
			return nil
		}
		w.log.Warn("checkpoint shard end failed; retrying", "shard", l.Shard, "err", err)
		if backoff.Sleep(ctx, b.Next()) != nil {
			return nil
		}
	}
}

// handOff releases the lease at pos.
func (r *shardRunner) handOff(ctx context.Context, pos consumergroups.Checkpoint) error {
	w, l := r.w, r.lease
	var cp *consumergroups.Checkpoint
	if pos.SequenceNumber != "" {
		cp = &pos
	}
	if err := w.g.Leases.Release(ctx, l.Shard, w.g.Worker, l.Epoch, cp); err != nil && !isLost(err) {
		return fmt.Errorf("release lease of %s: %w", l.Shard, err)
	}
	w.log.Info("shard lease handed off", "shard", l.Shard, "epoch", l.Epoch)
	return nil
}

// iterator starts reading at pos: at its sequence number (records up to
// pos's sub-sequence are skipped by userRecords), else where the group
// starts.
func (r *shardRunner) iterator(ctx context.Context, pos consumergroups.Checkpoint) (*string, error) {
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(r.w.g.Stream), ShardId: aws.String(r.lease.Shard)}
	switch {
	case pos.SequenceNumber != "":
		in.ShardIteratorType, in.StartingSequenceNumber = types.ShardIteratorTypeAtSequenceNumber, aws.String(pos.SequenceNumber)
	case r.startAt == "latest":
		in.ShardIteratorType = types.ShardIteratorTypeLatest
	default:
		in.ShardIteratorType = types.ShardIteratorTypeTrimHorizon
	}
	for {
		out, err := r.w.g.Kinesis.GetShardIterator(ctx, in)
		if err == nil {
			return out.ShardIterator, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("get shard iterator of %s: %w", r.lease.Shard, err)
		}
		r.w.m.readErrors.Inc()
		if err := r.health.failed(ctx, "GetShardIterator", err); err != nil {
			return nil, err
		}
	}
}

// stopErr is what a reader returns when a failed read stops it: a
// *ReadError, which stops the worker, or nil when ctx ended (a stop asked
// for).
func stopErr(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func hashRange(l consumergroups.Lease) (streams.HashRange, error) {
	start, err := streams.ParseHashKey(l.HashKeyStart)
	if err != nil {
		return streams.HashRange{}, fmt.Errorf("lease of %s: hash key start: %w", l.Shard, err)
	}
	end, err := streams.ParseHashKey(l.HashKeyEnd)
	if err != nil {
		return streams.HashRange{}, fmt.Errorf("lease of %s: hash key end: %w", l.Shard, err)
	}
	return streams.HashRange{Start: start, End: end}, nil
}
