package jobs

// The connection settings the kafka source and the kafka sink share.

import (
	"strings"

	"github.com/runnel-dev/runnel/internal/kafkaconn"
	"go.yaml.in/yaml/v3"
)

// KafkaTLS turns on TLS to the brokers (PEM files).
type KafkaTLS struct {
	CAFile     string `yaml:"ca_file"`
	CertFile   string `yaml:"cert_file"`
	KeyFile    string `yaml:"key_file"`
	ServerName string `yaml:"server_name"`
}

// KafkaSASL authenticates; the password comes from the server's
// environment variable PasswordEnv, never from the job file.
type KafkaSASL struct {
	Mechanism   string `yaml:"mechanism"`
	Username    string `yaml:"username"`
	PasswordEnv string `yaml:"password_env"`
}

// kafkaConnFields documents the connection keys under a kafka kind.
var kafkaConnFields = []Field{
	{"brokers", "string or list of strings", "required", "seed brokers, `host:port`"},
	{"tls", "mapping", "—", "TLS to the brokers; `{}` for the system's CAs"},
	{"tls.ca_file", "string", "system CAs", "PEM file of the CAs to trust"},
	{"tls.cert_file", "string", "—", "PEM client certificate (with `key_file`)"},
	{"tls.key_file", "string", "—", "PEM client key"},
	{"tls.server_name", "string", "the broker's host", "name checked in the brokers' certificates"},
	{"sasl", "mapping", "—", "SASL login"},
	{"sasl.mechanism", "string", "required", "`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`"},
	{"sasl.username", "string", "required", ""},
	{"sasl.password_env", "string", "required", "name of the server's environment variable holding the password (never the password)"},
}

// kafkaConn parses the connection keys of a kafka mapping.
func (p *parser) kafkaConn(f fieldMap) ([]string, *KafkaTLS, *KafkaSASL) {
	brokers := p.names(f, "brokers", true)
	var t *KafkaTLS
	var s *KafkaSASL
	if f.has("tls") {
		if m, ok := p.optionalMapping(f, "tls"); ok {
			t = &KafkaTLS{CAFile: p.str(m, "ca_file"), CertFile: p.str(m, "cert_file"), KeyFile: p.str(m, "key_file"), ServerName: p.str(m, "server_name")}
		}
	}
	if f.has("sasl") {
		if m, ok := p.sub(f, "sasl"); ok {
			s = &KafkaSASL{Mechanism: p.str(m, "mechanism"), Username: p.str(m, "username"), PasswordEnv: p.str(m, "password_env")}
		}
	}
	return brokers, t, s
}

func (t *KafkaTLS) conn() *kafkaconn.TLS {
	if t == nil {
		return nil
	}
	return &kafkaconn.TLS{CAFile: t.CAFile, CertFile: t.CertFile, KeyFile: t.KeyFile, ServerName: t.ServerName}
}

func (s *KafkaSASL) conn() *kafkaconn.SASL {
	if s == nil {
		return nil
	}
	return &kafkaconn.SASL{Mechanism: s.Mechanism, Username: s.Username, PasswordEnv: s.PasswordEnv}
}

// stringMap parses a mapping of free names to single values, such as a
// Kafka sink's headers: {NAME: FIELD}. A missing key gives nil.
func (p *parser) stringMap(f fieldMap, key string) map[string]string {
	if f.m[key] == nil {
		return nil
	}
	path := join(f.path, key)
	n := resolve(f.m[key])
	if n == nil || n.Kind != yaml.MappingNode {
		p.problem(orNode(n, f.m[key]), path, CodeType, "must be a mapping of NAME: FIELD", "e.g. {trace-id: trace}")
		return nil
	}
	p.record(n, path)
	out := map[string]string{}
	for _, kv := range p.pairs(n, path) {
		v := resolve(kv.v)
		if v == nil || v.Kind != yaml.ScalarNode || strings.TrimSpace(v.Value) == "" {
			p.problem(orNode(v, kv.v), join(path, kv.key), CodeType, "must be the name of a row field", "")
			continue
		}
		p.record(v, join(path, kv.key))
		out[kv.key] = v.Value
	}
	return out
}
