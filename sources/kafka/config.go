package kafka

import (
	"fmt"
	"regexp"
	"time"

	"github.com/runnel-dev/runnel/internal/kafkaconn"
	"github.com/runnel-dev/runnel/sources"
)

// Start positions of a Kafka source.
const (
	StartEarliest    = "earliest"
	StartLatest      = "latest"
	StartAtTimestamp = "at_timestamp"
)

// DefaultDiscoverEvery is the default of Config.DiscoverEvery.
const DefaultDiscoverEvery = 30 * time.Second

// ErrConfig marks a Kafka source configuration error.
var ErrConfig = fmt.Errorf("%w: kafka", sources.ErrConfig)

// Config configures a Kafka source.
type Config struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// Topics are read whole; or TopicRegex selects topics by name (a Go
	// regular expression matched against the whole name).
	Topics     []string
	TopicRegex string
	// Group, when set, receives the offsets handed to the job as its
	// committed offsets (for monitoring; the job resumes from its own
	// checkpoints).
	Group string
	// Start is where a partition without a checkpointed position starts:
	// earliest (default), latest, or at_timestamp (the first record at or
	// after Timestamp).
	Start     string
	Timestamp time.Time
	// ReadUncommitted also returns records of aborted or open
	// transactions; by default only committed records are read.
	ReadUncommitted bool
	// Format decodes record values when NewDecoder is nil: json
	// (default), text or bytes.
	Format sources.Format
	// NewDecoder, when set, makes each reader's decoder (sources/codec's
	// csv, avro and protobuf, say).
	NewDecoder func() Decoder
	// Metadata, when set, names a field added to each record with the
	// record's Kafka metadata: topic, partition, offset, timestamp (epoch
	// ms), key and headers (an object of strings; a repeated header keeps
	// its last value). A value that is not an object is wrapped as
	// {"value": v, METADATA: {...}}.
	Metadata string
	// DiscoverEvery is how often the topics' partitions are listed
	// again while the job runs, so that partitions added to a topic (or
	// topics newly matching TopicRegex) are read from their first record;
	// 0 means DefaultDiscoverEvery, a negative value turns it off.
	DiscoverEvery time.Duration
	TLS           *TLSConfig
	SASL          *SASLConfig
}

// Decoder turns a record value into a Value; one is used per reader.
type Decoder interface {
	Decode(data []byte) (any, error)
}

// TLSConfig and SASLConfig are the connection settings shared with the
// Kafka sink.
type (
	TLSConfig  = kafkaconn.TLS
	SASLConfig = kafkaconn.SASL
)

// Validate checks the configuration without contacting a broker.
func (c *Config) Validate() error {
	if len(c.Brokers) == 0 {
		return fmt.Errorf("%w: brokers: give at least one host:port", ErrConfig)
	}
	if (len(c.Topics) == 0) == (c.TopicRegex == "") {
		return fmt.Errorf("%w: give exactly one of topics or topic_regex", ErrConfig)
	}
	if c.TopicRegex != "" {
		if _, err := regexp.Compile(c.TopicRegex); err != nil {
			return fmt.Errorf("%w: topic_regex: %v", ErrConfig, err)
		}
	}
	switch c.Start {
	case "", StartEarliest, StartLatest:
	case StartAtTimestamp:
		if c.Timestamp.IsZero() {
			return fmt.Errorf("%w: start at_timestamp needs a timestamp", ErrConfig)
		}
	default:
		return fmt.Errorf("%w: start %q: use earliest, latest or at_timestamp", ErrConfig, c.Start)
	}
	if c.Format != "" {
		if err := c.Format.Validate(); err != nil {
			return err
		}
	}
	if c.SASL != nil {
		if err := c.SASL.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	if c.Metadata == "value" {
		return fmt.Errorf("%w: metadata: %q is the field of wrapped values; choose another name", ErrConfig, c.Metadata)
	}
	return nil
}
