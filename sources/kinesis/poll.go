package kinesis

import (
	"context"
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

// Kinesis's per-shard read limits: five GetRecords calls and 2 MiB of
// data a second.
const (
	minCallGap      = 200 * time.Millisecond
	readBytesPerSec = 2 << 20
)

// pollReader reads a shard with GetRecords.
type pollReader struct {
	readerBase
	iter *string // nil: the shard has ended
	// next is the earliest time of the next GetRecords call.
	next time.Time
	// backoff and failed (failures other than throttling) are those of
	// the GetRecords calls since the last that succeeded: a series of
	// failures outlives a Read that a checkpoint cut short.
	backoff backoff.Backoff
	failed  int
	// asking is when the endpoint was first asked for the records it
	// has not answered yet (zero when it answered): a checkpoint cuts a
	// Read, and the call in it, short every few hundred milliseconds, so
	// a paused endpoint is noticed over several calls.
	asking time.Time
}

func (s *Source) iterator(ctx context.Context, shard string, from startAt) (*string, error) {
	typ := from.typ
	in := &kinesis.GetShardIteratorInput{StreamName: aws.String(s.cfg.Stream), ShardId: aws.String(shard), ShardIteratorType: typ}
	if from.seq != "" {
		in.StartingSequenceNumber = aws.String(from.seq)
	}
	if typ == types.ShardIteratorTypeAtTimestamp {
		in.Timestamp = aws.Time(from.at)
	}
	var out *kinesis.GetShardIteratorOutput
	err := s.retry(ctx, "GetShardIterator", shard, func(ctx context.Context) (err error) {
		out, err = s.api.GetShardIterator(ctx, in)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("kinesis source %s: get %s iterator: %w", shard, typ, err)
	}
	return out.ShardIterator, nil
}

func (s *Source) openPoll(ctx context.Context, base readerBase) (*pollReader, error) {
	it, err := s.iterator(ctx, base.shard, base.from)
	if err != nil {
		return nil, err
	}
	r := &pollReader{readerBase: base, iter: it, backoff: backoff.Backoff{Max: s.backoffMax}}
	if typ := base.from.typ; typ == types.ShardIteratorTypeAfterSequenceNumber || typ == types.ShardIteratorTypeAtSequenceNumber {
		r.last = base.from.seq
	}
	if r.iter != nil && *r.iter == "" {
		r.iter = nil
	}
	return r, nil
}

func (r *pollReader) Read(ctx context.Context, buf []sources.Record) (int, error) {
	for len(r.pending) == 0 {
		if r.iter == nil {
			return 0, io.EOF
		}
		if err := backoff.Sleep(ctx, time.Until(r.next)); err != nil {
			return 0, err
		}
		if err := r.poll(ctx); err != nil {
			return 0, err
		}
	}
	return take(r.shard, r.dec, &r.pending, buf)
}

// poll makes one GetRecords call and sets the time of the next: after a
// failure a retry can help, the next is the retry, after a backoff.
func (r *pollReader) poll(ctx context.Context) error {
	s := r.src
	for {
		if r.asking.IsZero() {
			r.asking = time.Now()
		}
		var out *kinesis.GetRecordsOutput
		err := s.attempt(ctx, "GetRecords", func(ctx context.Context) (err error) {
			out, err = s.api.GetRecords(ctx, &kinesis.GetRecordsInput{ShardIterator: r.iter, Limit: aws.Int32(int32(s.cfg.MaxRecords))})
			return err
		})
		if ctx.Err() == nil {
			r.asking = time.Time{}
		}
		switch {
		case err == nil:
			s.noteRecovered("GetRecords", r.shard, r.failed)
			r.failed = 0
			r.backoff.Reset()
			r.paced(out)
			r.push(out.Records)
			if out.NextShardIterator == nil || *out.NextShardIterator == "" {
				r.iter = nil
				return r.end(out.ChildShards)
			}
			r.iter = out.NextShardIterator
			return nil
		case kinesisconn.Code(err) == "ExpiredIteratorException":
			// Renew after the last record read (or at the start again
			// when none was).
			from := startAt{typ: types.ShardIteratorTypeAfterSequenceNumber, seq: r.last}
			if r.last == "" {
				from = r.from
			}
			it, err := s.iterator(ctx, r.shard, from)
			if err != nil {
				return err
			}
			r.iter = it
		case kinesisconn.Retryable(err) && ctx.Err() == nil:
			// Read waits for the next try, also when a checkpoint cuts
			// this Read short.
			r.failed += s.noteRetry("GetRecords", r.shard, err, r.failed)
			r.next = time.Now().Add(r.backoff.Next())
			return nil
		default:
			if ctx.Err() != nil {
				if waited := time.Since(r.asking); waited >= s.cfg.CallTimeout {
					r.failed += s.noteRetry("GetRecords", r.shard, fmt.Errorf("GetRecords: %w for %s", ErrNoAnswer, waited.Round(time.Millisecond)), r.failed)
					r.asking = time.Time{}
				}
				return ctx.Err()
			}
			return fmt.Errorf("kinesis source %s: get records: %w", r.shard, err)
		}
	}
}

// paced sets when the next call may go: no sooner than minCallGap, later
// by the time the bytes just read take at the shard's read rate, and
// PollInterval later when the shard had nothing more.
func (r *pollReader) paced(out *kinesis.GetRecordsOutput) {
	size := 0
	for _, rec := range out.Records {
		size += len(rec.Data) + len(deref(rec.PartitionKey))
	}
	gap := max(minCallGap, time.Duration(size)*time.Second/readBytesPerSec)
	if len(out.Records) == 0 && aws.ToInt64(out.MillisBehindLatest) == 0 {
		gap = max(gap, r.src.cfg.PollInterval)
	}
	r.next = time.Now().Add(gap)
}

func (r *pollReader) Close() error { return nil }
