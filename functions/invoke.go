package functions

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Invoker calls the function once with a batch. One goroutine uses an
// Invoker at a time; each lane of each shard has its own.
//
// An error is the function's (a thrown exception, a timeout): the batch
// failed, and retries and bisection apply. A *FatalError ends the job
// instead (the function cannot run at all).
type Invoker interface {
	Invoke(ctx context.Context, in *Invocation) (*Result, error)
	Close() error
}

// Invocation is one call of the function.
type Invocation struct {
	Shard   string
	Records []Record
	// Attempt counts the calls of this batch so far, this one included
	// (Lambda's approximateInvokeCount).
	Attempt int
	// Window is set when the function keeps tumbling-window state.
	Window *Window
}

// Window is the tumbling window an invocation belongs to, with the state
// the previous invocation of the window returned.
type Window struct {
	Start, End int64 // epoch milliseconds
	State      any
	// Final marks the last invocation of the window: it has no records,
	// and the state it returns is dropped.
	Final bool
}

// Result is what the function returned.
type Result struct {
	// Records are put to the operator's output (a stream sink writes each
	// with its partition key).
	Records []Output
	// Failures are the itemIdentifiers of batchItemFailures: sequence
	// numbers of records of the batch. Used only with
	// Config.ReportItemFailures.
	Failures []string
	// State is the window state to carry to the next invocation.
	State any
}

// Output is a record the function returns.
type Output struct {
	PartitionKey string
	Data         any
}

// FatalError is an invoker's error that retrying cannot help and that no
// record caused (the function's runtime is broken): it fails the job.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

// Failure conditions of an on-failure record (Lambda's
// requestContext.condition).
const (
	ConditionRetriesExhausted = "RetryAttemptsExhausted"
	ConditionRecordAge        = "RecordAgeExceeded"
)

// failed is a run of records given up on.
type failed struct {
	records   []Record
	condition string
	err       error
	attempts  int
}

// lane runs the batches of one lane: invocations with retries, bisection
// and partial failures, as Lambda's event source mapping does.
type lane struct {
	o     *Operator
	inv   Invoker
	shard string
	win   *Window // the window's state, carried between invocations
	outs  []Output
	fails []failed
}

// run processes recs until each record succeeded or was given up on.
// retries is what is left of Config.MaxRetries (negative: unlimited).
//
// A failed call is, with Config.Bisect, split rather than retried, and a
// split costs no retry: after a partial failure (batchItemFailures past
// the first record) the rest of the batch, from the first failed record
// on, is called again as one batch; after a whole failure (a thrown
// call, a timeout, batchItemFailures naming the first record or none of
// the batch) the batch is halved and each half runs on its own. Only a
// single record that fails as a whole is retried, with a pause, and its
// attempts count against retries. Without Bisect, every failed call
// costs a retry, and a partial failure's retry calls only the rest.
// It returns only errors that end the job (a FatalError, the context).
func (l *lane) run(ctx context.Context, recs []Record, retries int) error {
	c := l.o.cfg
	attempts := 0
	var last error
	for len(recs) > 0 {
		if c.MaxRecordAge > 0 {
			cutoff := c.now().Add(-c.MaxRecordAge).UnixMilli()
			n := 0
			for n < len(recs) && recs[n].Arrival < cutoff {
				n++
			}
			if n > 0 {
				l.giveUp(recs[:n], ConditionRecordAge, last, attempts)
				recs = recs[n:]
				continue
			}
		}
		attempts++
		called := len(recs)
		err := l.invoke(ctx, &recs, attempts)
		if err == nil {
			return nil
		}
		if fatal := (*FatalError)(nil); errors.As(err, &fatal) || ctx.Err() != nil {
			return err
		}
		last = err
		l.o.stats.Errors.Add(1)
		if c.Bisect && len(recs) < called {
			// A partial failure with bisection on: Lambda bisects the
			// batch at the returned sequence number and retries only
			// the rest, as a batch of its own. A split is not a retry:
			// the rest starts with the retries its batch had left, its
			// own attempt count, and no pause.
			l.o.stats.Bisections.Add(1)
			attempts = 0
			continue
		}
		if c.Bisect && len(recs) > 1 {
			l.o.stats.Bisections.Add(1)
			mid := len(recs) / 2
			if err := l.run(ctx, recs[:mid], retries); err != nil {
				return err
			}
			return l.run(ctx, recs[mid:], retries)
		}
		if retries == 0 {
			l.giveUp(recs, ConditionRetriesExhausted, err, attempts)
			return nil
		}
		if retries > 0 {
			retries--
		}
		l.o.stats.Retries.Add(1)
		if err := sleep(ctx, c.backoff(attempts)); err != nil {
			return err
		}
	}
	return nil
}

// invoke calls the function once on *recs. On success it keeps the
// outputs and state; with a partial failure it keeps them too and leaves
// in *recs the records from the first failed one on, returning the error
// that says so. A failure that names the first record, or no record of
// the batch, failed the call as a whole: like a thrown call, its outputs
// and state are dropped, since the retry calls the function with the
// same records again.
func (l *lane) invoke(ctx context.Context, recs *[]Record, attempt int) error {
	in := &Invocation{Shard: l.shard, Records: *recs, Attempt: attempt}
	if l.win != nil {
		in.Window = &Window{Start: l.win.Start, End: l.win.End, State: l.win.State}
	}
	l.o.stats.Invocations.Add(1)
	l.o.stats.Records.Add(int64(len(*recs)))
	res, err := l.inv.Invoke(ctx, in)
	if err != nil {
		return err
	}
	if res == nil {
		res = &Result{}
	}
	first, ferr := l.firstFailure(res, *recs)
	if ferr != nil && first == 0 {
		return ferr
	}
	l.outs = append(l.outs, res.Records...)
	if l.win != nil {
		l.win.State = res.State
	}
	if ferr == nil {
		return nil
	}
	*recs = (*recs)[first:]
	return ferr
}

// firstFailure returns the index of the first record batchItemFailures
// names (len(recs) when none). An identifier that names no record of the
// batch fails the whole batch, as Lambda does.
func (l *lane) firstFailure(res *Result, recs []Record) (int, error) {
	if !l.o.cfg.ReportItemFailures || len(res.Failures) == 0 {
		return len(recs), nil
	}
	first := len(recs)
	for _, id := range res.Failures {
		i := 0
		for i < len(recs) && recs[i].SequenceNumber != id {
			i++
		}
		if i == len(recs) {
			return 0, fmt.Errorf("batchItemFailures names itemIdentifier %q, which is not a sequence number of the batch: the whole batch failed", id)
		}
		first = min(first, i)
	}
	return first, fmt.Errorf("batchItemFailures: record %s and after failed", recs[first].SequenceNumber)
}

// giveUp sends recs to the on-failure destination.
func (l *lane) giveUp(recs []Record, condition string, err error, attempts int) {
	l.o.stats.FailedRecords.Add(int64(len(recs)))
	if err == nil {
		err = errors.New("records older than maximum_record_age before the function was called")
	}
	l.fails = append(l.fails, failed{records: recs, condition: condition, err: err, attempts: attempts})
}

// backoff is the pause before retry n (1-based).
func (c *Config) backoff(n int) time.Duration {
	if c.Backoff != nil {
		return c.Backoff(n)
	}
	d := 100 * time.Millisecond << min(n-1, 4)
	return min(d, time.Second)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
