package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/web/kinesis"
)

// kinesisFlags are runnel serve's flags for the Kinesis endpoint: TLS,
// streams created at start, injected faults.
type kinesisFlags struct {
	tlsCert, tlsKey *string
	selfSigned      *bool
	streams         *string
	inject          *string
}

func addKinesisFlags(fs *flag.FlagSet) *kinesisFlags {
	return &kinesisFlags{
		tlsCert:    fs.String("tls-cert", "", "serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate (chain); needs --tls-key"),
		tlsKey:     fs.String("tls-key", "", "the PEM private key of --tls-cert"),
		selfSigned: fs.Bool("tls-self-signed", false, "serve HTTPS with a self-signed certificate for localhost, 127.0.0.1 and ::1, made once and kept in the data directory (tls-self-signed.pem); its path and PEM are printed at start, for clients to trust"),
		streams:    fs.String("streams", "", "create these streams at start unless they exist: name:shards,... (e.g. orders:4,clicks:1), or @FILE with such entries separated by commas or lines"),
		inject:     fs.String("inject", "", "fail a share of Kinesis calls on purpose, for testing clients: OP:KIND:RATE,... with OP an operation or *, KIND throttle (ProvisionedThroughputExceededException on data calls, LimitExceededException on others) or internal (InternalFailure, 500), or for PutRecords only record-throttle or record-internal (that share of its entries fails with that ErrorCode and is not stored, the call answers 200), RATE in [0,1]; e.g. PutRecords:throttle:0.1,*:internal:0.01,PutRecords:record-throttle:0.2"),
	}
}

// faults parses --inject.
func (k *kinesisFlags) faults() ([]kinesis.Fault, error) {
	f, err := kinesis.ParseFaults(*k.inject)
	if err != nil {
		return nil, fmt.Errorf("%w: --inject: %v", errUsage, err)
	}
	return f, nil
}

type streamSpec struct {
	name   string
	shards int
}

// parseStreamSpecs reads --streams.
func parseStreamSpecs(spec string) ([]streamSpec, error) {
	if file, ok := strings.CutPrefix(spec, "@"); ok {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--streams: %w", err)
		}
		spec = string(b)
	}
	var out []streamSpec
	for _, part := range strings.FieldsFunc(spec, func(r rune) bool { return r == ',' || r == '\n' || r == '\r' }) {
		part = strings.TrimSpace(part)
		if part == "" || strings.HasPrefix(part, "#") {
			continue
		}
		name, n, ok := strings.Cut(part, ":")
		shards, err := strconv.Atoi(n)
		if !ok || err != nil || shards < 1 || shards > streams.MaxShards || name == "" {
			return nil, fmt.Errorf("%w: --streams: %q: want name:shards with shards 1-%d", errUsage, part, streams.MaxShards)
		}
		out = append(out, streamSpec{name, shards})
	}
	return out, nil
}

// createStreams makes the --streams streams that do not exist yet; one
// that exists is left as it is (with a note if its shard count differs).
func (k *kinesisFlags) createStreams(store *streams.Store, log *slog.Logger) error {
	specs, err := parseStreamSpecs(*k.streams)
	if err != nil {
		return err
	}
	for _, s := range specs {
		info, err := store.DescribeStream(s.name)
		if err == nil {
			open := 0
			for _, sh := range info.Shards {
				if sh.Open {
					open++
				}
			}
			if open != s.shards {
				log.Info("--streams: stream exists with another shard count; left as it is", "stream", s.name, "open_shards", open, "asked", s.shards)
			}
			continue
		}
		if !errors.Is(err, streams.ErrStreamNotFound) {
			return fmt.Errorf("--streams: %s: %w", s.name, err)
		}
		if _, err := store.CreateStream(s.name, s.shards, streams.CreateOptions{Attrs: map[string]string{"kinesis.mode": "PROVISIONED"}}); err != nil {
			return fmt.Errorf("--streams: create %s: %w", s.name, err)
		}
		log.Info("stream created at start", "stream", s.name, "shards", s.shards)
	}
	return nil
}

// tlsConfig returns the TLS configuration the flags ask for, or nil for
// plain HTTP.
func (k *kinesisFlags) tlsConfig(data string, log *slog.Logger) (*tls.Config, error) {
	cert, key := *k.tlsCert, *k.tlsKey
	switch {
	case *k.selfSigned && (cert != "" || key != ""):
		return nil, fmt.Errorf("%w: --tls-self-signed or --tls-cert/--tls-key, not both", errUsage)
	case (cert == "") != (key == ""):
		return nil, fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	case *k.selfSigned:
		cert = filepath.Join(data, "tls-self-signed.pem")
		key = filepath.Join(data, "tls-self-signed.key")
		made, err := ensureSelfSigned(cert, key)
		if err != nil {
			return nil, err
		}
		pemBytes, err := os.ReadFile(cert)
		if err != nil {
			return nil, err
		}
		log.Info("TLS with a self-signed certificate: clients must trust it", "cert", cert, "new", made)
		fmt.Fprintf(os.Stdout, "runnel: self-signed certificate for localhost, 127.0.0.1, ::1 (%s):\n%s", cert, pemBytes)
	case cert == "":
		return nil, nil
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}, nil
}

// ensureSelfSigned writes a self-signed certificate and key unless both
// exist; it reports whether it made them.
func ensureSelfSigned(certPath, keyPath string) (bool, error) {
	if _, err := os.Stat(certPath); err == nil {
		if _, err := os.Stat(keyPath); err == nil {
			return false, nil
		}
	}
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return false, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return false, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "runnel (self-signed, local use)"},
		NotBefore:    now.Add(-time.Hour), NotAfter: now.AddDate(2, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:    []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		return false, err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(filepath.Dir(certPath), 0o755); err != nil {
		return false, err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		return false, err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return false, err
	}
	return true, nil
}
