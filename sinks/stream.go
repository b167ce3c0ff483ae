package sinks

import (
	"bytes"
	"context"
	"fmt"
	"strings"
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
		if _, err := s.cfg.Store.Put(ctx, s.cfg.Stream, s.recs); err != nil {
			return fmt.Errorf("stream sink %s: %w", s.cfg.Stream, err)
		}
		rows = rows[n:]
	}
	return nil
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
