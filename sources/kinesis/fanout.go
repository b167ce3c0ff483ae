package kinesis

import (
	"context"
	"fmt"
	"io"

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

// fanOutReader reads a shard through SubscribeToShard subscriptions, one
// after the other. A subscription lives on the reader's own context, not
// Read's, so a Read that ends (for a checkpoint, say) does not end it.
type fanOutReader struct {
	readerBase
	arn     string
	ctx     context.Context
	cancel  context.CancelFunc
	start   types.StartingPosition
	stream  *kinesis.SubscribeToShardEventStream
	ended   bool
	backoff backoff.Backoff
}

func (s *Source) openFanOut(ctx context.Context, base readerBase) (*fanOutReader, error) {
	arn, err := s.consumerARN(ctx)
	if err != nil {
		return nil, err
	}
	r := &fanOutReader{readerBase: base, arn: arn, start: types.StartingPosition{Type: base.from.typ}}
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
// seconds after a restart is refused with ResourceInUseException).
func (r *fanOutReader) subscribe(ctx context.Context) error {
	s := r.src
	for {
		start := r.start
		out, err := s.api.SubscribeToShard(r.ctx, &kinesis.SubscribeToShardInput{ConsumerARN: aws.String(r.arn),
			ShardId: aws.String(r.shard), StartingPosition: &start})
		if err == nil {
			r.stream = out.GetStream()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !kinesisconn.Retryable(err) && kinesisconn.Code(err) != "ResourceInUseException" {
			return fmt.Errorf("kinesis source %s: subscribe to shard as %s: %w", r.shard, s.cfg.Consumer, err)
		}
		s.noteRetry("SubscribeToShard", r.shard, err, r.backoff.Failures())
		if err := backoff.Sleep(ctx, r.backoff.Next()); err != nil {
			return err
		}
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
		select {
		case ev, ok := <-r.stream.Events():
			if !ok {
				r.closed(ctx)
				continue
			}
			if e, isEvent := ev.(*types.SubscribeToShardEventStreamMemberSubscribeToShardEvent); isEvent {
				if err := r.event(&e.Value); err != nil {
					return 0, err
				}
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	return take(r.shard, r.dec, &r.pending, buf)
}

func (r *fanOutReader) event(e *types.SubscribeToShardEvent) error {
	r.backoff.Reset()
	r.push(e.Records)
	if e.ContinuationSequenceNumber != nil {
		r.start = types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: e.ContinuationSequenceNumber}
	} else if r.last != "" {
		r.start = types.StartingPosition{Type: types.ShardIteratorTypeAfterSequenceNumber, SequenceNumber: aws.String(r.last)}
	}
	if e.ContinuationSequenceNumber == nil || len(e.ChildShards) > 0 {
		r.ended = true
		r.stream.Close()
		r.stream = nil
		return r.end(e.ChildShards)
	}
	return nil
}

// closed handles the end of a subscription: after its lifetime (five
// minutes) it is renewed at once; after an error, with backoff.
func (r *fanOutReader) closed(ctx context.Context) {
	err := r.stream.Err()
	r.stream.Close()
	r.stream = nil
	if err != nil && ctx.Err() == nil && r.ctx.Err() == nil {
		r.src.noteRetry("SubscribeToShard events", r.shard, err, r.backoff.Failures())
		backoff.Sleep(ctx, r.backoff.Next())
	}
}

func (r *fanOutReader) Close() error {
	if r.stream != nil {
		r.stream.Close()
	}
	r.cancel()
	return nil
}
