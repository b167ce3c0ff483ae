package sinks

import (
	"context"
	"errors"
	"fmt"
)

// Row is one result handed to a sink.
type Row struct {
	// Key is the record's key: the window key for window results, "" for
	// records that were never keyed.
	Key string
	// Value is the record, usually a map[string]any; for window results
	// {"window_start", "window_end", "key", <aggregates>...}.
	Value any
}

// Sink receives a job's results. The runtime calls Write and Close from one
// goroutine per sink.
//
// Write must not keep rows after returning (it may keep the Values). An
// error fails the job. Close flushes what is buffered and releases the
// sink; it is called once, also after a failed Write.
type Sink interface {
	Write(ctx context.Context, rows []Row) error
	Close() error
}

// ErrConfig marks a sink configuration error.
var ErrConfig = errors.New("sinks: invalid configuration")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}
