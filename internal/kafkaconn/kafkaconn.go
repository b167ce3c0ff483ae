// Package kafkaconn turns the connection settings of a job's Kafka source
// or sink (brokers, TLS, SASL) into franz-go client options.
package kafkaconn

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// TLS turns on TLS to the brokers. Files are PEM.
type TLS struct {
	CAFile   string
	CertFile string
	KeyFile  string
	// ServerName overrides the name checked in the brokers' certificates.
	ServerName string
}

// SASL authenticates to the brokers. The password is never in the
// job file: PasswordEnv names the environment variable of the server
// process that holds it.
type SASL struct {
	// Mechanism is PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	Mechanism   string
	Username    string
	PasswordEnv string
}

// Validate checks the mechanism and that the password comes from the
// environment.
func (s *SASL) Validate() error {
	switch s.Mechanism {
	case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
	default:
		return fmt.Errorf("sasl.mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", s.Mechanism)
	}
	if s.Username == "" || s.PasswordEnv == "" {
		return errors.New("sasl needs username and password_env (the name of an environment variable)")
	}
	return nil
}

// Options are the franz-go options for the brokers, TLS and SASL.
func Options(brokers []string, t *TLS, s *SASL) ([]kgo.Opt, error) {
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
