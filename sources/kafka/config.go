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
	// Format decodes record values: json (default), text or bytes.
	Format sources.Format
	TLS    *TLSConfig
	SASL   *SASLConfig
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
	return nil
}
