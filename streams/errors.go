package streams

import (
	"errors"
	"fmt"
)

// Sentinel errors. Callers test them with errors.Is; the API layers map each
// to their own error codes.
var (
	ErrStreamNotFound  = errors.New("streams: stream not found")
	ErrStreamExists    = errors.New("streams: stream already exists")
	ErrStreamNotActive = errors.New("streams: stream is not active")
	ErrShardNotFound   = errors.New("streams: shard not found")
	ErrShardClosed     = errors.New("streams: shard is closed")
	ErrInvalid         = errors.New("streams: invalid argument")
	ErrCorrupt         = errors.New("streams: corrupt data")
	ErrClosed          = errors.New("streams: store is closed")
	// ErrSeqNotFromStream: a sequence number whose sequence tag is not
	// the stream's (see seq.go). It is an ErrInvalid too.
	ErrSeqNotFromStream = fmt.Errorf("streams: sequence number did not come from this stream: %w", ErrInvalid)
)

// Error is an error about a named thing, carrying the field at fault (for
// validation errors) and a sentinel to classify it.
type Error struct {
	Op    string // what was being done, e.g. "create stream"
	Field string // the offending input field, if any, e.g. "shards"
	Err   error  // one of the sentinels above
	Msg   string // what was wrong and what is allowed
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s: %s", e.Op, e.Field, e.Msg)
	}
	return fmt.Sprintf("%s: %s", e.Op, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

func invalid(op, field, format string, args ...any) error {
	return &Error{Op: op, Field: field, Err: ErrInvalid, Msg: fmt.Sprintf(format, args...)}
}

func notFound(op, stream string) error {
	return &Error{Op: op, Err: ErrStreamNotFound, Msg: fmt.Sprintf("stream %q does not exist", stream)}
}

// CorruptionError reports a damaged region of a shard's log. Damaged bytes
// are never returned as records.
type CorruptionError struct {
	Stream, Shard string
	File          string
	Offset        int64
	Reason        string
}

func (e *CorruptionError) Error() string {
	return fmt.Sprintf("streams: corrupt record in stream %s shard %s at %s offset %d: %s", e.Stream, e.Shard, e.File, e.Offset, e.Reason)
}

func (e *CorruptionError) Unwrap() error { return ErrCorrupt }

// Sentinels for refusals a client can act on.
var (
	// ErrLimitExceeded: the request would pass a limit of the server (the
	// streams or shards it holds). Retrying does not help until the limit is
	// raised or something is deleted.
	ErrLimitExceeded = errors.New("streams: limit exceeded")
	// ErrUnavailable: the request could not be done now but may succeed
	// later without any change by the client (the disk is full). Nothing of
	// the refused request was acknowledged.
	ErrUnavailable = errors.New("streams: temporarily unavailable")
)

// Retriable reports whether sending the same request again later may
// succeed: the store refused it for a passing reason.
func Retriable(err error) bool { return errors.Is(err, ErrUnavailable) }
