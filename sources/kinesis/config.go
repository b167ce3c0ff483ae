package kinesis

import (
	"fmt"
	"time"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/sources"
)

// Start positions of a Kinesis source: the Kinesis shard iterator types.
const (
	StartTrimHorizon    = "trim_horizon"
	StartLatest         = "latest"
	StartAtTimestamp    = "at_timestamp"
	StartAtSequence     = "at_sequence_number"
	StartAfterSequence  = "after_sequence_number"
	defaultPollInterval = time.Second
	maxGetRecordsLimit  = 10000
	defaultCallTimeout  = 10 * time.Second
)

// ErrConfig marks a Kinesis source configuration error.
var ErrConfig = fmt.Errorf("%w: kinesis", sources.ErrConfig)

// Decoder turns record data into a Value; one is used per shard reader.
type Decoder interface {
	Decode(data []byte) (any, error)
}

// Config configures a Kinesis source.
type Config struct {
	Stream string
	// Conn is the endpoint, region and credentials profile.
	kinesisconn.Conn
	// Start is where a shard the job has no position for starts:
	// trim_horizon (default), latest, at_timestamp (with Timestamp), or
	// at_sequence_number / after_sequence_number with Sequences, the
	// sequence number per shard id (a shard not named there starts at
	// trim_horizon). It applies to the shards listed when the job starts;
	// children created by a later reshard are read from their beginning,
	// so nothing written to them is skipped.
	Start     string
	Timestamp time.Time
	Sequences map[string]string
	// Consumer, when set, reads with enhanced fan-out as this registered
	// stream consumer (registered if missing).
	Consumer string
	// PollInterval is the pause after a GetRecords that returned nothing
	// new; default 1s. MaxRecords bounds one GetRecords; default 10,000.
	PollInterval time.Duration
	MaxRecords   int
	// CallTimeout bounds each call to the endpoint; default 10s. An
	// endpoint that takes the connection and does not answer (a paused
	// process, a lost network path) would otherwise hold a shard forever:
	// a call cut short by it counts as a failure to reach the endpoint,
	// retried with backoff. A SubscribeToShard event stream is bounded
	// by the gap between its events instead (ErrNoEvent).
	CallTimeout time.Duration
	// Format decodes record data when NewDecoder is nil: json (default),
	// text or bytes.
	Format     sources.Format
	NewDecoder func() Decoder
}

// Validate checks the configuration without contacting the endpoint.
func (c *Config) Validate() error {
	if c.Stream == "" {
		return fmt.Errorf("%w: stream is required", ErrConfig)
	}
	if err := c.Conn.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	switch c.Start {
	case "", StartTrimHorizon, StartLatest:
	case StartAtTimestamp:
		if c.Timestamp.IsZero() {
			return fmt.Errorf("%w: start at_timestamp needs a timestamp", ErrConfig)
		}
	case StartAtSequence, StartAfterSequence:
		if len(c.Sequences) == 0 {
			return fmt.Errorf("%w: start %s needs sequence numbers by shard id", ErrConfig, c.Start)
		}
		for sh, seq := range c.Sequences {
			if !isDecimal(seq) {
				return fmt.Errorf("%w: sequence number %q of shard %s is not a decimal number", ErrConfig, seq, sh)
			}
		}
	default:
		return fmt.Errorf("%w: start %q: use trim_horizon, latest, at_timestamp, at_sequence_number or after_sequence_number", ErrConfig, c.Start)
	}
	if c.PollInterval < 0 || c.PollInterval > 5*time.Minute {
		return fmt.Errorf("%w: poll_interval %s: give 0 to 5m", ErrConfig, c.PollInterval)
	}
	if c.CallTimeout < 0 {
		return fmt.Errorf("%w: call timeout %s: give a positive duration", ErrConfig, c.CallTimeout)
	}
	if c.MaxRecords < 0 || c.MaxRecords > maxGetRecordsLimit {
		return fmt.Errorf("%w: max_records %d: give 1 to %d", ErrConfig, c.MaxRecords, maxGetRecordsLimit)
	}
	if c.Format != "" {
		if err := c.Format.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// EnsureDefaults fills what is unset.
func (c *Config) EnsureDefaults() {
	if c.Start == "" {
		c.Start = StartTrimHorizon
	}
	if c.PollInterval == 0 {
		c.PollInterval = defaultPollInterval
	}
	if c.MaxRecords == 0 {
		c.MaxRecords = maxGetRecordsLimit
	}
	if c.CallTimeout == 0 {
		c.CallTimeout = defaultCallTimeout
	}
	if c.NewDecoder == nil {
		f := c.Format
		c.NewDecoder = func() Decoder { return sources.NewDecoder(f) }
	}
}

func isDecimal(s string) bool {
	if s == "" || len(s) > 128 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
