package sources

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Record is one record read from a shard.
type Record struct {
	// Value is the decoded record (see operators.Record.Value).
	Value any
	// PartitionKey is the producer's partition key, if the source has one.
	PartitionKey string
	// Position identifies the record inside its shard: pass it to Open to
	// resume after it.
	Position string
	// Arrival is when the record arrived, in epoch milliseconds: the
	// stream's arrival timestamp, or the read time for files.
	Arrival int64
}

// Shard is one independently readable part of a source.
type Shard struct {
	ID string
	// Parents are the shards this one continues after a reshard; it is
	// read only after all of them ended.
	Parents []string
	// FromStart asks Open, when it has no position, to read the shard
	// from its first record whatever the configured start: the shard
	// appeared after the job began (a partition added to a Kafka topic),
	// so everything in it is new to the job.
	FromStart bool
}

// Source lists shards and opens readers on them. Implementations are safe
// for concurrent use by the tasks of one job.
type Source interface {
	// Shards returns the shards to read, parents before children where a
	// reshard happened. A shard whose parents are not in the list starts
	// at once.
	Shards(ctx context.Context) ([]Shard, error)
	// Open returns a reader of shard positioned after the position after,
	// or at the source's configured start when after is "".
	Open(ctx context.Context, shard Shard, after string) (Reader, error)
}

// Discoverer is implemented by sources whose shards may grow in number
// while a job runs without a reshard that names parents (partitions added
// to a Kafka topic, a topic that newly matches a regex). The runtime lists
// the shards again every DiscoverEvery and starts the new ones with
// FromStart set; 0 turns discovery off.
type Discoverer interface {
	DiscoverEvery() time.Duration
}

// Bounded is implemented by sources that end on their own (files, a
// generator with a count). A job whose sources are all bounded runs to
// completion.
type Bounded interface {
	Bounded() bool
}

// Reader reads one shard in order. It is used by one goroutine.
type Reader interface {
	// Read fills buf with the next records and returns how many. It
	// blocks until at least one record is available or ctx is done (then
	// it returns ctx.Err()); it never returns 0, nil. At the end of the
	// shard it returns 0, io.EOF. Records returned together with another
	// error are valid and precede it. The caller owns the records.
	Read(ctx context.Context, buf []Record) (int, error)
	// Children lists the shards that continue this one, once Read has
	// returned io.EOF (nil for a bounded source).
	Children() []Shard
	// Close releases the reader.
	Close() error
}

// Resumer is implemented by readers that know, as soon as they are open,
// where they start: ResumePosition, passed to Open as after, opens the
// shard exactly there (a stream shard opened at LATEST, say). The runtime
// records it, so a checkpoint taken before the shard's first record
// resumes at the same place and not at the configured start again. It is
// called once, right after Open.
type Resumer interface {
	ResumePosition() string
}

// ErrConfig marks a source configuration error.
var ErrConfig = errors.New("sources: invalid configuration")

func configErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
}

// IsBounded reports whether s ends on its own.
func IsBounded(s Source) bool {
	b, ok := s.(Bounded)
	return ok && b.Bounded()
}

// RecordError is a record that could not be read or decoded; it names the
// shard and position so the user can find it.
type RecordError struct {
	Shard    string
	Position string
	Err      error
}

func (e *RecordError) Error() string {
	return fmt.Sprintf("read record %s at %s: %v", e.Shard, e.Position, e.Err)
}

func (e *RecordError) Unwrap() error { return e.Err }
