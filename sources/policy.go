package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"unicode/utf8"

	"github.com/runnel-dev/runnel/streams"
)

// ErrorMode is what a source does with a record it cannot hand on: one
// whose bytes do not decode in the source's format (or, with JSON, are
// nested deeper than MaxJSONDepth), or whose event time cannot be read.
type ErrorMode string

// Error modes of an ErrorPolicy.
const (
	// Fail fails the job with the record's shard and position (default).
	Fail ErrorMode = "fail"
	// Skip drops the record and counts it.
	Skip ErrorMode = "skip"
	// DeadLetter drops the record, counts it, and appends a dead letter
	// (the shape operators' dead letters have) to a stream.
	DeadLetter ErrorMode = "dead_letter"
)

// MaxJSONDepth is how deeply a JSON record of a job may nest: as deep as
// the JS bridge converts (operators/js). A value inside more than this
// many arrays and objects is a decode error.
const MaxJSONDepth = 64

// BadRecords applies a source's error policy and counts what it dropped.
// It is shared by the source's shard tasks (safe for concurrent use).
//
// A dead letter is appended when the record is read, with a durable Put:
// at least once (a record read again after a crash, before the job's next
// checkpoint, is dead-lettered again).
type BadRecords struct {
	Mode ErrorMode
	// Store and Stream receive dead letters (DeadLetter mode).
	Store  *streams.Store
	Stream string
	// Job names the job in dead letters, Source the source node in
	// records' origins ("SOURCE/SHARD@POSITION").
	Job, Source string

	skipped, dead atomic.Int64
}

// Validate checks the policy.
func (b *BadRecords) Validate() error {
	switch b.Mode {
	case "", Fail, Skip:
	case DeadLetter:
		if b.Store == nil {
			return configErr("source dead letters need a store")
		}
		if err := streams.ValidateStreamName(b.Stream); err != nil {
			return configErr("source dead letters: %v", err)
		}
	default:
		return configErr("source error policy %q: use fail, skip or dead_letter", string(b.Mode))
	}
	return nil
}

// Drops reports whether bad records are dropped (Skip or DeadLetter)
// rather than failing the job; a nil BadRecords fails.
func (b *BadRecords) Drops() bool {
	return b != nil && (b.Mode == Skip || b.Mode == DeadLetter)
}

// Origin is the origin of a record of shard at position, as the runtime
// names it.
func (b *BadRecords) Origin(shard, position string) string {
	return b.Source + "/" + shard + "@" + position
}

// Handle applies the policy to a bad record: nil when it was dropped (and
// dead-lettered), else the error to fail the job with. origin is
// "SOURCE/SHARD@POSITION"; record is its bytes or value.
func (b *BadRecords) Handle(ctx context.Context, origin, partitionKey string, record any, cause error) error {
	if !b.Drops() {
		return cause
	}
	if b.Mode == Skip {
		b.skipped.Add(1)
		return nil
	}
	letter, err := json.Marshal(map[string]any{"error": cause.Error(), "job": b.Job, "operator": "source",
		"origin": origin, "record": letterRecord(record)})
	if err != nil {
		return fmt.Errorf("dead letter of %s: %w (the record: %w)", origin, err, cause)
	}
	if partitionKey == "" {
		partitionKey = origin
	}
	if _, err := b.Store.Put(ctx, b.Stream, []streams.PutRecord{{PartitionKey: partitionKey, Data: letter}}); err != nil {
		return fmt.Errorf("dead letter of %s to stream %s: %w (the record: %w)", origin, b.Stream, err, cause)
	}
	b.dead.Add(1)
	return nil
}

// letterRecord is the "record" of a dead letter: JSON bytes stay JSON,
// other bytes become a string (invalid UTF-8 replaced), values stay.
func letterRecord(v any) any {
	var raw []byte
	switch x := v.(type) {
	case json.RawMessage:
		raw = x
	case []byte:
		raw = x
	default:
		if _, err := json.Marshal(v); err != nil {
			return fmt.Sprint(v)
		}
		return v
	}
	if json.Valid(raw) {
		return json.RawMessage(raw)
	}
	if utf8.Valid(raw) {
		return string(raw)
	}
	return string([]rune(string(raw)))
}

// SkippedRecords counts records dropped under Skip.
func (b *BadRecords) SkippedRecords() int64 {
	if b == nil {
		return 0
	}
	return b.skipped.Load()
}

// DeadLetteredRecords counts records dead-lettered under DeadLetter.
func (b *BadRecords) DeadLetteredRecords() int64 {
	if b == nil {
		return 0
	}
	return b.dead.Load()
}

// BadRecordCounter is a source that drops bad records under a policy and
// counts them (the runtime reports the counts on the source node).
type BadRecordCounter interface {
	SkippedRecords() int64
	DeadLetteredRecords() int64
}

// errTooDeep is the error of a record nested too deeply.
var errTooDeep = errors.New("nested deeper than the limit")

// CheckJSON reports whether data is one JSON value in which no value sits
// inside more than maxDepth arrays and objects (the rule of the JS
// bridge's decoder).
func CheckJSON(data []byte, maxDepth int) error {
	if !json.Valid(data) {
		_, err := DecodeJSON(data) // for a message naming the offset
		if err == nil {
			err = errors.New("invalid JSON")
		}
		return err
	}
	return checkDepth(data, maxDepth)
}

// checkDepth scans valid JSON: a container opened, or a value started,
// while more than limit containers are open is an error.
func checkDepth(data []byte, limit int) error {
	open := 0
	for i := 0; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '[', '{':
			if open > limit {
				return fmt.Errorf("offset %d: %w of %d", i, errTooDeep, limit)
			}
			open++
			j := i + 1
			for j < len(data) && (data[j] == ' ' || data[j] == '\t' || data[j] == '\n' || data[j] == '\r') {
				j++
			}
			if j < len(data) && data[j] != ']' && data[j] != '}' && open > limit {
				return fmt.Errorf("offset %d: %w of %d", j, errTooDeep, limit)
			}
		case ']', '}':
			open--
		}
	}
	return nil
}
