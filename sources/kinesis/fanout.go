package kinesis

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/backoff"
	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/sources"
)

// consumerARN returns the fan-out consumer's ARN, registering the
// consumer when the stream has none of that name, and waits until it is
// active.
func (s *Source) consumerARN(ctx context.Context) (string, error) {
	s.mu.Lock()
	arn := s.mu.consumerARN
	s.mu.Unlock()
	if arn != "" {
		return arn, nil
	}
	var sum *kinesis.DescribeStreamSummaryOutput
	err := s.retry(ctx, "DescribeStreamSummary", "", func(ctx context.Context) (err error) {
		sum, err = s.api.DescribeStreamSummary(ctx, &kinesis.DescribeStreamSummaryInput{StreamName: aws.String(s.cfg.Stream)})
		return err
	})
	if err != nil {
		return "", fmt.Errorf("kinesis source: describe stream %s: %w", s.cfg.Stream, err)
	}
	streamARN := sum.StreamDescriptionSummary.StreamARN
	var b backoff.Backoff
	for {
		var d *kinesis.DescribeStreamConsumerOutput
		err := s.retry(ctx, "DescribeStreamConsumer", "", func(ctx context.Context) (err error) {
			d, err = s.api.DescribeStreamConsumer(ctx, &kinesis.DescribeStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String(s.cfg.Consumer)})
			return err
		})
		switch {
		case kinesisconn.Code(err) == "ResourceNotFoundException":
			err = s.retry(ctx, "RegisterStreamConsumer", "", func(ctx context.Context) error {
				_, err := s.api.RegisterStreamConsumer(ctx, &kinesis.RegisterStreamConsumerInput{StreamARN: streamARN, ConsumerName: aws.String(s.cfg.Consumer)})
				if kinesisconn.Code(err) == "ResourceInUseException" {
					return nil // registered meanwhile by another reader
				}
				return err
			})
			if err != nil {
				return "", fmt.Errorf("kinesis source: register consumer %s on %s: %w", s.cfg.Consumer, s.cfg.Stream, err)
			}
			continue
		case err != nil:
			return "", fmt.Errorf("kinesis source: describe consumer %s on %s: %w", s.cfg.Consumer, s.cfg.Stream, err)
		}
		c := d.ConsumerDescription
		if c.ConsumerStatus == types.ConsumerStatusActive {
			s.mu.Lock()
			s.mu.consumerARN = deref(c.ConsumerARN)
			s.mu.Unlock()
			return deref(c.ConsumerARN), nil
		}
		if err := backoff.Sleep(ctx, b.Next()); err != nil {
			return "", err
		}
	}
}

// awsEventGap is the longest gap between SubscribeToShard events while a
// shard has no new records: Runnel's own endpoint sends an empty event at
// least every five seconds, and Kinesis one every few seconds.
const awsEventGap = 5 * time.Second

// ErrNoEvent is the error of a subscription that went without any event
// for three times the gap an endpoint leaves while idle (at least
// Config.CallTimeout): the endpoint took it and stopped answering. It is
// ended and another subscribes from where it stopped.
var ErrNoEvent = errors.New("kinesis source: no event from the endpoint")

// eventWait is how long a subscription may go without an event.
func (s *Source) eventWait() time.Duration {
	return max(3*cmp.Or(s.eventGap, awsEventGap), s.cfg.CallTimeout)
}

// fanOutReader reads a shard through SubscribeToShard subscriptions, one
// after the other. A subscription lives on the reader's own context, not
// Read's, so a Read that ends (for a checkpoint, say) does not end it.
type fanOutReader struct {
	readerBase
	arn    string
	ctx    context.Context
	cancel context.CancelFunc
	start  types.StartingPosition
	stream *kinesis.SubscribeToShardEventStream
	// endSub ends the subscription's own context; heard is when it last
	// brought an event (or began).
	endSub context.CancelFunc
	heard  time.Time
	ended  bool
	// backoff and failed (failures other than throttling) are those of
	// the subscriptions since one last brought an event; next is the
	// earliest time of the next subscription: a series of failures
	// outlives a Read that a checkpoint cut short.
	backoff backoff.Backoff
	failed  int
	next    time.Time
	// asking is when the endpoint was first asked for the subscription
	// it has not answered yet (zero when it answered): checkpoints cut
	// Reads, and the call in one, short, so a paused endpoint is noticed
	// over several calls.
	asking time.Time
}

func (s *Source) openFanOut(ctx context.Context, base readerBase) (*fanOutReader, error) {
	arn, err := s.consumerARN(ctx)
	if err != nil {
		return nil, err
	}
	r := &fanOutReader{readerBase: base, arn: arn, start: types.StartingPosition{Type: base.from.typ},
		backoff: backoff.Backoff{Max: s.backoffMax}}
	if base.from.seq != "" {
		r.start.SequenceNumber = aws.String(base.from.seq)
	}
	if base.from.typ == types.ShardIteratorTypeAtTimestamp {
		r.start.Timestamp = aws.Time(base.from.at)
	}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r, nil
}

// subscribe opens the next subscription, retrying what can be retried
// (a subscription of the same consumer and shard still open for a few
// seconds after a restart is refused with ResourceInUseException). The
// call is bounded by CallTimeout and given up when ctx ends; the
// subscription it opens lives on until ended.
func (r *fanOutReader) subscribe(ctx context.Context) error {
	s := r.src
	for {
		if err := backoff.Sleep(ctx, time.Until(r.next)); err != nil {
			return err
		}
		if r.asking.IsZero() {
			r.asking = time.Now()
		}
		start := r.start
		sctx, endSub := context.WithCancel(r.ctx)
		timer := time.AfterFunc(s.cfg.CallTimeout, endSub)
		stop := context.AfterFunc(ctx, endSub)
		out, err := s.api.SubscribeToShard(sctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(r.arn),
			ShardId: aws.String(r.shard), StartingPosition: &start})
		fired := !timer.Stop()
		stop()
		if ctx.Err() == nil {
			r.asking = time.Time{}
		}
		if err == nil && !fired && ctx.Err() == nil {
			r.stream, r.endSub, r.heard = out.GetStream(), endSub, time.Now()
			return nil
		}
		endSub()
		if err == nil {
			out.GetStream().Close()
		}
		if ctx.Err() != nil {
			if waited := time.Since(r.asking); waited >= s.cfg.CallTimeout {
				err := fmt.Errorf("SubscribeToShard: %w for %s", ErrNoAnswer, waited.Round(time.Millisecond))
				r.failed += s.noteRetry("SubscribeToShard", r.shard, err, r.failed)
				r.next = time.Now().Add(r.backoff.Next())
				r.asking = time.Time{}
			}
			return ctx.Err()
		}
		if fired {
			err = fmt.Errorf("SubscribeToShard: %w within %s", ErrNoAnswer, s.cfg.CallTimeout)
		}
		if !kinesisconn.Retryable(err) && kinesisconn.Code(err) != "ResourceInUseException" {
			return fmt.Errorf("kinesis source %s: subscribe to shard as %s: %w", r.shard, s.cfg.Consumer, err)
		}
		r.failed += s.noteRetry("SubscribeToShard", r.shard, err, r.failed)
		r.next = time.Now().Add(r.backoff.Next())
	}
}

func (r *fanOutReader) Read(ctx context.Context, buf []sources.Record) (int, error) {
	for len(r.pending) == 0 {
		if r.ended {
			return 0, io.EOF
		}
		if r.stream == nil {
			if err := r.subscribe(ctx); err != nil {
				return 0, err
			}
		}
		wait := r.src.eventWait()
		silent := time.NewTimer(time.Until(r.heard.Add(wait)))
		select {
		case ev, ok := <-r.stream.Events():
			silent.Stop()
			if !ok {
				r.closed(ctx)
				continue
			}
			r.heard = time.Now()
			if e, isEvent := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); isEvent {
				if err := r.event(&e.Value); err != nil {
					return 0, err
				}
			}
		case <-silent.C:
			r.endStream()
			err := fmt.Errorf("SubscribeToShard events: %w for %s", ErrNoEvent, wait)
			r.failed += r.src.noteRetry("SubscribeToShard events", r.shard, err, r.failed)
			r.next = time.Now().Add(r.backoff.Next())
		case <-ctx.Done():
			silent.Stop()
			return 0, ctx.Err()
		}
	}
	return take(r.shard, r.dec, &r.pending, buf)
}

func (r *fanOutReader) event(e *types.SubscribeToShardEvent) error {
	r.src.noteRecovered("SubscribeToShard", r.shard, r.failed)
	r.failed = 0
	r.backoff.Reset()
	r.next = time.Time{}
	r.push(e.Records)
	if e.ContinuationSequenceNumber != nil {
		r.start = types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: e.ContinuationSequenceNumber}
	} else if r.last != "" {
		r.start = types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(r.last)}
	}
	if e.ContinuationSequenceNumber == nil || len(e.ChildShards) > 0 {
		r.ended = true
		r.endStream()
		return r.end(e.ChildShards)
	}
	return nil
}

// endStream ends the subscription and its connection.
func (r *fanOutReader) endStream() {
	r.endSub()
	r.stream.Close()
	r.stream = nil
}

// closed handles the end of a subscription: after its lifetime (five
// minutes) it is renewed at once; after an error, with backoff.
func (r *fanOutReader) closed(ctx context.Context) {
	err := r.stream.Err()
	r.endStream()
	if err != nil && ctx.Err() == nil && r.ctx.Err() == nil {
		r.failed += r.src.noteRetry("SubscribeToShard events", r.shard, err, r.failed)
		r.next = time.Now().Add(r.backoff.Next())
	}
}

func (r *fanOutReader) Close() error {
	if r.stream != nil {
		r.endStream()
	}
	r.cancel()
	return nil
}
