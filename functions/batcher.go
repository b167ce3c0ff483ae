package functions

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sources"
)

// Batching is how records are gathered into a function's batches: what
// Lambda's event source mapping does before it invokes.
type Batching struct {
	// Size is the most records one invocation gets (Lambda's BatchSize).
	Size int
	// Window is how long a batch may wait to fill once it has a record
	// (MaximumBatchingWindowInSeconds); 0 hands on what one read returns.
	Window time.Duration
	// Parallel is the parallelization factor: a read gathers up to
	// Size×Parallel records, which the operator splits into lanes.
	Parallel int
	// Filter drops records before batching; their positions still pass.
	Filter *Filter
	// Tumbling, when set, cuts batches at tumbling windows of the records'
	// arrival times, and has the source hand on an empty batch when a
	// window has ended on the wall clock, so the operator closes it.
	Tumbling time.Duration
	// now is the clock (tests); nil is time.Now.
	now func() time.Time
}

// windowGrace is how long after a tumbling window's end on the wall clock
// the source waits before it hands on the empty batch that closes it: a
// record put just before the end may still be on its way.
const windowGrace = time.Second

// Batch is the value of one record the batching source hands on: one
// invocation's worth of records of a shard (before the operator splits it
// into lanes), or none — an empty batch moves the shard's position past
// filtered records, or lets the operator close a tumbling window that
// ended.
type Batch struct {
	Shard   string
	Records []Record
	// Window is the start (epoch ms) of the tumbling window of Records,
	// when windows are on.
	Window int64
}

// Record is one record of a batch.
type Record struct {
	PartitionKey string
	// SequenceNumber is the record's position in its shard (the stream's
	// sequence number).
	SequenceNumber string
	// Arrival is the approximate arrival time, epoch milliseconds.
	Arrival int64
	// Data is the decoded record (see operators.Record.Value).
	Data any
}

// Batched wraps src so that every record it hands on is a *Batch: the
// operator built by New expects exactly that. Positions stay those of the
// underlying records, so checkpoints resume after the last record of the
// last batch handed on; records read ahead and not yet handed on are read
// again after a restore.
func Batched(src sources.Source, b Batching) sources.Source {
	if b.Size <= 0 {
		b.Size = DefaultBatchSize
	}
	b.Parallel = max(b.Parallel, 1)
	if b.now == nil {
		b.now = time.Now
	}
	return &batchSource{inner: src, cfg: b}
}

type batchSource struct {
	inner sources.Source
	cfg   Batching
}

func (s *batchSource) Shards(ctx context.Context) ([]sources.Shard, error) {
	return s.inner.Shards(ctx)
}

func (s *batchSource) Open(ctx context.Context, sh sources.Shard, after string) (sources.Reader, error) {
	r, err := s.inner.Open(ctx, sh, after)
	if err != nil {
		return nil, err
	}
	br := &batchReader{inner: r, cfg: &s.cfg, shard: sh.ID, lastPos: after}
	if rs, ok := r.(sources.Resumer); ok && after == "" {
		br.resume = rs.ResumePosition()
		br.lastPos = br.resume
	}
	br.handed = br.lastPos
	br.buf = make([]sources.Record, s.cfg.Size*s.cfg.Parallel)
	return br, nil
}

// Bounded passes on the underlying source's.
func (s *batchSource) Bounded() bool { return sources.IsBounded(s.inner) }

// SkippedRecords and DeadLetteredRecords pass on the underlying source's
// counts of bad records.
func (s *batchSource) SkippedRecords() int64 {
	if c, ok := s.inner.(sources.BadRecordCounter); ok {
		return c.SkippedRecords()
	}
	return 0
}

func (s *batchSource) DeadLetteredRecords() int64 {
	if c, ok := s.inner.(sources.BadRecordCounter); ok {
		return c.DeadLetteredRecords()
	}
	return 0
}

// batchReader gathers one shard's records into batches.
type batchReader struct {
	inner sources.Reader
	cfg   *Batching
	shard string
	buf   []sources.Record
	// queue holds records read (and passing the filter) not yet handed
	// on; since is when its first record was read.
	queue []Record
	since time.Time
	// lastPos is the position of the last record read, filtered or not;
	// handed is the position of the last batch handed on.
	lastPos, handed string
	resume          string
	eof             bool
	// nextTick is when an empty batch closes the tumbling window that
	// ended last (zero: not computed yet).
	nextTick time.Time
}

func (r *batchReader) ResumePosition() string { return r.resume }
func (r *batchReader) Children() []sources.Shard {
	return r.inner.Children()
}
func (r *batchReader) Close() error { return r.inner.Close() }

// Read hands on one batch. It reads from the shard until a batch is
// complete: full, cut by a tumbling window, or its batching window
// passed.
func (r *batchReader) Read(ctx context.Context, buf []sources.Record) (int, error) {
	expired := false
	for {
		if b, ok := r.cut(expired); ok {
			buf[0] = b
			return 1, nil
		}
		if r.eof {
			return 0, io.EOF
		}
		expired = false
		rctx, cancel := ctx, context.CancelFunc(func() {})
		if d, ok := r.deadline(); ok {
			rctx, cancel = context.WithDeadline(ctx, d)
		}
		room := max(len(r.buf)-len(r.queue), 1)
		n, err := r.inner.Read(rctx, r.buf[:room])
		cancel()
		r.take(n)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			r.eof = true
		case ctx.Err() != nil:
			return 0, ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && rctx.Err() != nil:
			expired = true
		default:
			return 0, err
		}
	}
}

// take filters the n records just read into the queue.
func (r *batchReader) take(n int) {
	for i := range r.buf[:n] {
		sr := &r.buf[i]
		r.lastPos = sr.Position
		rec := Record{PartitionKey: sr.PartitionKey, SequenceNumber: sr.Position, Arrival: sr.Arrival, Data: sr.Value}
		*sr = sources.Record{}
		if !r.cfg.Filter.Empty() && !r.cfg.Filter.Match(filterView(&rec)) {
			continue
		}
		if len(r.queue) == 0 {
			r.since = r.cfg.now()
		}
		r.queue = append(r.queue, rec)
	}
}

// filterView is the record as filter patterns see it: Lambda's Kinesis
// record fields, with data decoded.
func filterView(rec *Record) map[string]any {
	data, err := operators.ValueOf(rec.Data).Export()
	if err != nil {
		data = nil
	}
	return map[string]any{
		"partitionKey":                rec.PartitionKey,
		"sequenceNumber":              rec.SequenceNumber,
		"approximateArrivalTimestamp": float64(rec.Arrival) / 1000,
		"data":                        data,
	}
}

// window returns the tumbling window start of an arrival time.
func (r *batchReader) window(arrival int64) int64 {
	size := r.cfg.Tumbling.Milliseconds()
	if size <= 0 {
		return 0
	}
	w := arrival - arrival%size
	if arrival < 0 && arrival%size != 0 {
		w -= size
	}
	return w
}

// deadline is when the read in progress must stop: the batching window
// of the queued records, or the next tumbling window's close.
func (r *batchReader) deadline() (time.Time, bool) {
	var d time.Time
	if len(r.queue) > 0 && r.cfg.Window > 0 {
		d = r.since.Add(r.cfg.Window)
	}
	if r.cfg.Tumbling > 0 && r.lastPos != "" {
		if r.nextTick.IsZero() {
			r.nextTick = r.tickAfter(r.cfg.now())
		}
		if d.IsZero() || r.nextTick.Before(d) {
			d = r.nextTick
		}
	}
	return d, !d.IsZero()
}

// tickAfter returns the wall-clock moment, after t, at which the tumbling
// window running at t is closed.
func (r *batchReader) tickAfter(t time.Time) time.Time {
	end := r.window(t.UnixMilli()) + r.cfg.Tumbling.Milliseconds()
	return time.UnixMilli(end).Add(windowGrace)
}

// cut returns the next batch when one is complete. expired says the
// last read ran into deadline.
func (r *batchReader) cut(expired bool) (sources.Record, bool) {
	now := r.cfg.now()
	tick := r.cfg.Tumbling > 0 && !r.nextTick.IsZero() && !now.Before(r.nextTick)
	if tick {
		r.nextTick = r.tickAfter(now)
	}
	if len(r.queue) == 0 {
		if r.lastPos != r.handed || (tick && r.lastPos != "") || (r.eof && r.lastPos != r.handed) {
			// Filtered records passed, or a window ended: an empty batch
			// carries the position (and the clock) to the operator.
			r.handed = r.lastPos
			return sources.Record{Value: &Batch{Shard: r.shard}, Position: r.lastPos, Arrival: now.UnixMilli()}, true
		}
		return sources.Record{}, false
	}
	limit := min(len(r.queue), len(r.buf))
	n := 1
	w := r.window(r.queue[0].Arrival)
	for n < limit && (r.cfg.Tumbling <= 0 || r.window(r.queue[n].Arrival) <= w) {
		n++
	}
	complete := n == len(r.buf) || n < len(r.queue) || r.cfg.Window <= 0 || r.eof || expired || tick ||
		!now.Before(r.since.Add(r.cfg.Window))
	if !complete {
		return sources.Record{}, false
	}
	b := &Batch{Shard: r.shard, Records: r.queue[:n:n], Window: w}
	pos := r.lastPos
	if n < len(r.queue) {
		pos = r.queue[n-1].SequenceNumber
		r.queue = append([]Record(nil), r.queue[n:]...)
		r.since = now
	} else {
		r.queue = nil
	}
	r.handed = pos
	return sources.Record{Value: b, Position: pos, Arrival: b.Records[0].Arrival}, true
}
