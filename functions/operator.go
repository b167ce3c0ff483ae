package functions

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/state"
)

// Config is a function's event-source-mapping settings: what happens
// around each invocation.
type Config struct {
	// Job and Operator name the function in errors and on-failure records.
	Job, Operator string
	// NewInvoker makes the invoker of one lane.
	NewInvoker func() (Invoker, error)
	// Size is the most records per invocation (as Batching.Size).
	Size int
	// Parallel is the parallelization factor, 1–10: concurrent
	// invocations per shard, records of a partition key always in the
	// same lane, in order.
	Parallel int
	// MaxRetries is how often a failed batch is called again before it
	// goes to the on-failure destination; negative: until it succeeds or
	// its records are older than MaxRecordAge.
	MaxRetries int
	// MaxRecordAge, when positive, gives up on records older than this
	// (by arrival) instead of calling the function with them.
	MaxRecordAge time.Duration
	// Bisect splits a failed batch, without costing a retry: a batch that
	// failed as a whole in two halves, each processed on its own, down to
	// single records, before retries apply; with ReportItemFailures, a
	// partial failure at its first failed record, the rest called again
	// as a batch of its own (Lambda's BisectBatchOnFunctionError).
	Bisect bool
	// ReportItemFailures honours batchItemFailures in the result.
	ReportItemFailures bool
	// Tumbling, when set, gives the function a tumbling window's state
	// (Parallel must be 1).
	Tumbling time.Duration
	// OnFailure says records given up on go to the on-failure side
	// output (Destination); without it they fail the job.
	OnFailure bool
	// Backoff is the pause before retry n (nil: 100ms doubling to 1s).
	Backoff func(n int) time.Duration
	// Log receives an ERROR for every batch given up on (nil: slog's
	// default).
	Log *slog.Logger
	now func() time.Time
}

// DefaultBatchSize is Lambda's default batch size for Kinesis.
const DefaultBatchSize = 100

// MaxParallel is the largest parallelization factor (Lambda's).
const MaxParallel = 10

// DestinationOutput is the side output of on-failure records.
func DestinationOutput(operator string) string { return operators.DeadLetterOutput(operator) }

// Validate checks the settings and fills defaults.
func (c *Config) Validate() error {
	if c.NewInvoker == nil {
		return errors.New("functions: no invoker")
	}
	if c.Size <= 0 {
		c.Size = DefaultBatchSize
	}
	c.Parallel = max(c.Parallel, 1)
	if c.Parallel > MaxParallel {
		return fmt.Errorf("functions: parallelization factor %d is above %d", c.Parallel, MaxParallel)
	}
	if c.Tumbling > 0 && c.Parallel > 1 {
		return errors.New("functions: tumbling windows need parallelization factor 1")
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.now == nil {
		c.now = time.Now
	}
	return nil
}

// Stats counts an instance's work.
type Stats struct {
	Invocations, Records, Errors, Retries, Bisections atomic.Int64
	// FailedRecords went to the on-failure destination (or failed the
	// job without one).
	FailedRecords atomic.Int64
}

// Operator runs a function over the batches of one shard (a job runs one
// instance per shard task). It expects every record to hold a *Batch
// (the source is Batched). The function's returned records go to the
// main output, keyed by their partition key; on-failure records, one per
// run of records given up on, to DestinationOutput.
type Operator struct {
	cfg       *Config
	stats     *Stats
	invokers  []Invoker
	onFailure operators.Emitter
	sp        *state.Space
	// win is the open tumbling window (nil: none); closed is the end of
	// the last closed one, before which no window opens again.
	win    *Window
	closed int64
}

// New makes an operator instance; cfg must have been validated.
func New(cfg *Config) (*Operator, error) {
	o := &Operator{cfg: cfg, stats: &Stats{}}
	for range cfg.Parallel {
		inv, err := cfg.NewInvoker()
		if err != nil {
			o.Close()
			return nil, err
		}
		o.invokers = append(o.invokers, inv)
	}
	return o, nil
}

// Stats returns the instance's counters: calls, function errors, records
// given up on (as the dead-lettered records of the operator's one stage).
// The runtime adds them up over a job's instances for its status.
func (o *Operator) Stats() (in, out int64, stages []js.StageStats) {
	return o.stats.Records.Load(), 0, []js.StageStats{{Operator: o.cfg.Operator, Errors: o.stats.Errors.Load(), DeadLettered: o.stats.FailedRecords.Load()}}
}

// Batches returns the calls made (all in goja).
func (o *Operator) Batches() (native, goja int64) { return 0, o.stats.Invocations.Load() }

// SideOutputNames lists the on-failure output.
func (o *Operator) SideOutputNames() []string { return []string{DestinationOutput(o.cfg.Operator)} }

// SetSideOutput wires the on-failure output.
func (o *Operator) SetSideOutput(name string, out operators.Emitter) {
	if name == DestinationOutput(o.cfg.Operator) {
		o.onFailure = out
	}
}

// Close closes the invokers.
func (o *Operator) Close() error {
	var first error
	for _, inv := range o.invokers {
		if err := inv.Close(); err != nil && first == nil {
			first = err
		}
	}
	o.invokers = nil
	return first
}

// Process invokes the function on each batch.
func (o *Operator) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	for i := range in.Records {
		b, ok := in.Records[i].Value.(*Batch)
		if !ok {
			return fmt.Errorf("function %s: record %s is not a batch (%T): the source must be functions.Batched", o.cfg.Operator, in.Records[i].Origin, in.Records[i].Value)
		}
		if err := o.batch(ctx, b, out); err != nil {
			return err
		}
	}
	return nil
}

func (o *Operator) batch(ctx context.Context, b *Batch, out operators.Emitter) error {
	if o.cfg.Tumbling > 0 {
		return o.windowed(ctx, b, out)
	}
	if len(b.Records) == 0 {
		return nil
	}
	lanes := o.split(b)
	var wg sync.WaitGroup
	errs := make([]error, len(lanes))
	for i, l := range lanes {
		if l == nil {
			continue
		}
		run := func() {
			for recs := range chunks(l.recs, o.cfg.Size) {
				if errs[i] = l.run(ctx, recs, o.cfg.MaxRetries); errs[i] != nil {
					return
				}
			}
		}
		if len(lanes) == 1 {
			run()
			continue
		}
		wg.Add(1)
		go func() { defer wg.Done(); run() }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("function %s: %w", o.cfg.Operator, err)
	}
	for _, l := range lanes {
		if l != nil {
			if err := o.deliver(&l.lane, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// laneRecs is a lane with the records it takes from a batch.
type laneRecs struct {
	lane
	recs []Record
}

// split deals a batch's records into lanes by partition key hash; nil
// lanes got none.
func (o *Operator) split(b *Batch) []*laneRecs {
	lanes := make([]*laneRecs, len(o.invokers))
	for _, r := range b.Records {
		i := 0
		if len(lanes) > 1 {
			h := fnv.New32a()
			h.Write([]byte(r.PartitionKey))
			i = int(h.Sum32() % uint32(len(lanes)))
		}
		if lanes[i] == nil {
			lanes[i] = &laneRecs{lane: lane{o: o, inv: o.invokers[i], shard: b.Shard}}
		}
		lanes[i].recs = append(lanes[i].recs, r)
	}
	return lanes
}

// chunks yields recs in runs of at most n.
func chunks(recs []Record, n int) func(func([]Record) bool) {
	return func(yield func([]Record) bool) {
		for len(recs) > 0 {
			k := min(n, len(recs))
			if !yield(recs[:k:k]) {
				return
			}
			recs = recs[k:]
		}
	}
}

// deliver emits a lane's outputs and its on-failure records.
func (o *Operator) deliver(l *lane, out operators.Emitter) error {
	for _, r := range l.outs {
		out.Emit(operators.Record{Key: r.PartitionKey, Value: r.Data, EventTime: o.cfg.now().UnixMilli(), Origin: l.shard})
	}
	for _, f := range l.fails {
		rec := onFailureRecord(o.cfg, l.shard, f, o.cfg.now())
		first, last := f.records[0].SequenceNumber, f.records[len(f.records)-1].SequenceNumber
		if !o.cfg.OnFailure || o.onFailure == nil {
			return fmt.Errorf("function %s: shard %s records %s to %s failed (%s after %d attempts) and there is no on_failure destination: %w",
				o.cfg.Operator, l.shard, first, last, f.condition, f.attempts, f.err)
		}
		o.cfg.Log.Error("function batch sent to its on-failure destination", "job", o.cfg.Job, "operator", o.cfg.Operator,
			"shard", l.shard, "start", first, "end", last, "records", len(f.records), "condition", f.condition, "attempts", f.attempts, "error", f.err)
		o.onFailure.Emit(operators.Record{Key: l.shard, Value: rec, EventTime: o.cfg.now().UnixMilli(), Origin: l.shard + "@" + first})
	}
	return nil
}

// onFailureRecord is Lambda's on-failure record of a Kinesis batch, with
// the function's error.
func onFailureRecord(c *Config, shard string, f failed, now time.Time) map[string]any {
	first, last := f.records[0], f.records[len(f.records)-1]
	ms := func(t int64) string { return time.UnixMilli(t).UTC().Format("2006-01-02T15:04:05.000Z") }
	return map[string]any{
		"version":   "1.0",
		"timestamp": now.UTC().Format("2006-01-02T15:04:05.000Z"),
		"requestContext": map[string]any{
			"function":               c.Job + "/" + c.Operator,
			"condition":              f.condition,
			"approximateInvokeCount": int64(f.attempts),
		},
		"responseContext": map[string]any{
			"functionError": "Unhandled",
			"errorMessage":  f.err.Error(),
		},
		"KinesisBatchInfo": map[string]any{
			"shardId":                         shard,
			"startSequenceNumber":             first.SequenceNumber,
			"endSequenceNumber":               last.SequenceNumber,
			"approximateArrivalOfFirstRecord": ms(first.Arrival),
			"approximateArrivalOfLastRecord":  ms(last.Arrival),
			"batchSize":                       int64(len(f.records)),
		},
	}
}

// windowed runs a batch of a function with tumbling windows: one lane,
// the window's state carried from invocation to invocation, and a final
// invocation (no records, isFinalInvokeForWindow) when the window ends —
// when a batch of a later window arrives, or an empty batch after the
// window's end on the wall clock.
func (o *Operator) windowed(ctx context.Context, b *Batch, out operators.Emitter) error {
	size := o.cfg.Tumbling.Milliseconds()
	if o.win != nil {
		ended := len(b.Records) == 0 && !o.cfg.now().Before(time.UnixMilli(o.win.End).Add(windowGrace))
		if ended || len(b.Records) > 0 && b.Window >= o.win.End {
			if err := o.closeWindow(ctx, b.Shard, out); err != nil {
				return err
			}
		}
	}
	if len(b.Records) == 0 {
		return nil
	}
	if o.win == nil {
		// Records of a window already closed (they arrived at its very
		// end) go into the next one.
		start := max(b.Window, o.closed)
		o.win = &Window{Start: start, End: start + size}
	}
	l := &lane{o: o, inv: o.invokers[0], shard: b.Shard, win: o.win}
	for recs := range chunks(b.Records, o.cfg.Size) {
		if err := l.run(ctx, recs, o.cfg.MaxRetries); err != nil {
			return fmt.Errorf("function %s: %w", o.cfg.Operator, err)
		}
	}
	return o.deliver(l, out)
}

// closeWindow makes the window's final invocation and forgets its state.
func (o *Operator) closeWindow(ctx context.Context, shard string, out operators.Emitter) error {
	w := o.win
	l := &lane{o: o, inv: o.invokers[0], shard: shard}
	in := &Invocation{Shard: shard, Attempt: 1, Window: &Window{Start: w.Start, End: w.End, State: w.State, Final: true}}
	var err error
	for attempt := 1; ; attempt++ {
		in.Attempt = attempt
		o.stats.Invocations.Add(1)
		var res *Result
		if res, err = l.inv.Invoke(ctx, in); err == nil {
			if res != nil {
				l.outs = res.Records
			}
			break
		}
		if fatal := (*FatalError)(nil); errors.As(err, &fatal) || ctx.Err() != nil {
			return fmt.Errorf("function %s: %w", o.cfg.Operator, err)
		}
		o.stats.Errors.Add(1)
		if o.cfg.MaxRetries >= 0 && attempt > o.cfg.MaxRetries {
			// The final invocation has no records to send anywhere: its
			// failure fails the job, which retries it from the checkpoint.
			return fmt.Errorf("function %s: final invocation of window %s failed after %d attempts: %w",
				o.cfg.Operator, time.UnixMilli(w.Start).UTC().Format(time.RFC3339), attempt, err)
		}
		o.stats.Retries.Add(1)
		if err := sleep(ctx, o.cfg.backoff(attempt)); err != nil {
			return err
		}
	}
	o.win, o.closed = nil, w.End
	return o.deliver(l, out)
}

// windowKey is where the open window's state is kept in checkpoints.
var windowKey = []byte("window")

// savedWindow is the checkpointed form of the window state.
type savedWindow struct {
	Open   bool  `json:"open"`
	Start  int64 `json:"start"`
	End    int64 `json:"end"`
	State  any   `json:"state"`
	Closed int64 `json:"closed"`
}

// OpenState restores the open tumbling window.
func (o *Operator) OpenState(sp *state.Space) error {
	o.sp = sp
	if o.cfg.Tumbling <= 0 {
		return nil
	}
	b, ok, err := sp.Get(windowKey)
	if err != nil || !ok {
		return err
	}
	var s savedWindow
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("function %s: restore window state: %w", o.cfg.Operator, err)
	}
	o.closed = s.Closed
	if s.Open {
		o.win = &Window{Start: s.Start, End: s.End, State: s.State}
	}
	return nil
}

// SnapshotState writes the open tumbling window to the checkpoint.
func (o *Operator) SnapshotState() error {
	if o.cfg.Tumbling <= 0 || o.sp == nil {
		return nil
	}
	s := savedWindow{Closed: o.closed}
	if o.win != nil {
		s.Open, s.Start, s.End, s.State = true, o.win.Start, o.win.End, o.win.State
	}
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("function %s: window state is not JSON: %w", o.cfg.Operator, err)
	}
	return o.sp.Set(windowKey, b)
}
