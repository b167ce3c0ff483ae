package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

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

// TLSConfig turns on TLS to the brokers. Files are PEM.
type TLSConfig struct {
	CAFile   string
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the brokers' certificates.
	ServerName string
}

// SASLConfig authenticates to the brokers. The password is never in the
// job file: PasswordEnv names the environment variable of the server
// process that holds it.
type SASLConfig struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism   string
	Username    string
	PasswordEnv string
}

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
	if s := c.SASL; s != nil {
		switch s.Mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return fmt.Errorf("%w: sasl.mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", ErrConfig, s.Mechanism)
		}
		if s.Username == "" || s.PasswordEnv == "" {
			return fmt.Errorf("%w: sasl needs username and password_env (the name of an environment variable)", ErrConfig)
		}
	}
	return nil
}

// ClientOptions are the franz-go options for the brokers, TLS and SASL;
// the Kafka sink uses them too.
func ClientOptions(brokers []string, t *TLSConfig, s *SASLConfig) ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...)}
	if t != nil {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("kafka tls: read ca_file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("kafka tls: ca_file %s holds no PEM certificate", t.CAFile)
			}
		}
		if t.CertFile != "" || t.KeyFile != "" {
			cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("kafka tls: client certificate: %w", err)
			}
			tc.Certificates = []tls.Certificate{cert}
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	if s != nil {
		pass, ok := os.LookupEnv(s.PasswordEnv)
		if !ok {
			return nil, fmt.Errorf("kafka sasl: environment variable %s (password_env) is not set", s.PasswordEnv)
		}
		var m sasl.Mechanism
		switch s.Mechanism {
		case "PLAIN":
			m = plain.Auth{User: s.Username, Pass: pass}.AsMechanism()
		case "SCRAM-SHA-256":
			m = scram.Auth{User: s.Username, Pass: pass}.AsSha256Mechanism()
		case "SCRAM-SHA-512":
			m = scram.Auth{User: s.Username, Pass: pass}.AsSha512Mechanism()
		default:
			return nil, errors.New("kafka sasl: unknown mechanism " + s.Mechanism)
		}
		opts = append(opts, kgo.SASL(m))
	}
	return opts, nil
}
