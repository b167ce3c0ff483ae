package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/runnel-dev/runnel/streams"
)

// StreamConfig configures a sink writing results into a Runnel stream.
type StreamConfig struct {
	Store  *streams.Store
	Stream string
	// Columns fix the order of fields in each JSON record; nil puts
	// window_start, window_end, key first and the rest alphabetically.
	Columns []Column
	// Logger gets a WARN line for each put a plain Write tries again;
	// default slog.Default().
	Logger *slog.Logger
}

// Validate checks the configuration (not that the stream exists).
func (c StreamConfig) Validate() error {
	if c.Store == nil {
		return configErr("stream sink: no store")
	}
	if err := streams.ValidateStreamName(c.Stream); err != nil {
		return configErr("stream sink: %v", err)
	}
	return validateColumns(c.Columns)
}

// maxPut is the most records per Put, as Kinesis's PutRecords allows.
const maxPut = 500

// noKey is the partition key of rows without a key (Kinesis keys must not
// be empty).
const noKey = "-"

// Stream writes one JSON record per row into a stream, partition key = the
// row's key (the window key), so results of one key stay in order in one
// shard.
//
// Without checkpoints (OpenState never called) Write returns once the
// records are durable. In a checkpointed job it is Transactional: Write
// only stages records, PreCommit stores them in the job's state under the
// checkpoint's epoch and Commit appends them (see txn_stream.go for the
// exactly-once guarantee and its assumption).
type Stream struct {
	cfg  StreamConfig
	cols []Column
	buf  bytes.Buffer
	recs []streams.PutRecord
	res  []streams.PutResult
	// txn is set by OpenState; nil means plain, immediate appends.
	txn *streamTxn
	// put, when set, replaces the store's Put for staged records (tests
	// cut commits short with it).
	put func(ctx context.Context, recs []streams.PutRecord) error
}

// NewStream validates cfg and returns the sink.
func NewStream(cfg StreamConfig) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cols := cfg.Columns
	if cols == nil {
		cols = WindowColumns()
	}
	return &Stream{cfg: cfg, cols: cols}, nil
}

// Write appends rows to the stream, or stages them for the next
// checkpoint once OpenState was called.
func (s *Stream) Write(ctx context.Context, rows []Row) error {
	if t := s.txn; t != nil {
		if err := t.log.Err(); err != nil {
			return err
		}
		var err error
		t.staged, err = s.encode(t.staged, rows)
		return err
	}
	for len(rows) > 0 {
		n := min(len(rows), maxPut)
		var err error
		if s.recs, err = s.encode(s.recs[:0], rows[:n]); err != nil {
			return err
		}
		if err := s.putAll(ctx, s.recs); err != nil {
			return fmt.Errorf("stream sink %s: %w", s.cfg.Stream, err)
		}
		rows = rows[n:]
	}
	return nil
}

// PutRetryFor is how long a plain Write keeps putting records the stream
// refused for a while (streams.Retriable: a shard's disk is full) before
// it fails the sink.
const PutRetryFor = 30 * time.Second

// putAll puts recs, trying again while the stream refuses them for a
// while. After a put that stored some records and not others
// (streams.PartialPutError), it puts again only those not stored, in
// their order: the records of one key route to one shard, whose part of a
// put is stored or refused whole, so each key's records still reach the
// stream in order, each once. It may reorder recs.
func (s *Stream) putAll(ctx context.Context, recs []streams.PutRecord) error {
	wait, deadline := 50*time.Millisecond, time.Now().Add(PutRetryFor)
	for {
		var err error
		s.res, err = s.cfg.Store.PutInto(ctx, s.cfg.Stream, recs, s.res[:0])
		if err == nil {
			return nil
		}
		left, ferr := notStored(recs, err)
		if ferr != nil {
			return ferr
		}
		recs = left
		if time.Now().After(deadline) {
			return fmt.Errorf("%d records still refused after %v: %w", len(recs), PutRetryFor, err)
		}
		log := s.cfg.Logger
		if log == nil {
			log = slog.Default()
		}
		log.Warn("stream sink: the stream refused records for now; putting them again", "stream", s.cfg.Stream,
			"records", len(recs), "in", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// notStored returns the records of a failed put to put again, in their
// order (packed into recs' front), and err when trying again cannot help:
// a record was refused for a reason other than a passing one, or may have
// been stored although refused (streams.ErrMaybeStored).
func notStored(recs []streams.PutRecord, err error) ([]streams.PutRecord, error) {
	retriable := func(err error) bool { return streams.Retriable(err) && !errors.Is(err, streams.ErrMaybeStored) }
	var pe *streams.PartialPutError
	if !errors.As(err, &pe) {
		if retriable(err) {
			return recs, nil // refused whole: nothing was stored
		}
		return nil, err
	}
	left := recs[:0]
	for i, r := range pe.Results {
		if r.Err == nil {
			continue
		}
		if !retriable(r.Err) {
			return nil, err
		}
		left = append(left, recs[i])
	}
	return left, nil
}

// encode appends one record per row to recs.
func (s *Stream) encode(recs []streams.PutRecord, rows []Row) ([]streams.PutRecord, error) {
	for _, r := range rows {
		s.buf.Reset()
		if err := appendJSONRow(&s.buf, r.Value, s.cols); err != nil {
			return recs, fmt.Errorf("stream sink %s: %w", s.cfg.Stream, err)
		}
		key := r.Key
		if key == "" {
			if m, ok := r.Value.(map[string]any); ok {
				key, _ = m[ColKey].(string)
			}
		}
		if key == "" {
			key = noKey
		}
		key = clipKey(key)
		recs = append(recs, streams.PutRecord{PartitionKey: key, Data: bytes.Clone(s.buf.Bytes())})
	}
	return recs, nil
}

// Close does nothing: every plain Write is already durable, and rows
// staged since the last PreCommit belong to no checkpoint (a restart
// replays them).
func (s *Stream) Close() error { return nil }

// clipKey keeps the first streams.MaxKeyLen characters of a key, and
// replaces invalid UTF-8, so any window key makes a valid partition key.
func clipKey(k string) string {
	k = strings.ToValidUTF8(k, "\uFFFD")
	if utf8.RuneCountInString(k) <= streams.MaxKeyLen {
		return k
	}
	return string([]rune(k)[:streams.MaxKeyLen])
}
