package jobs

// The job-file kinds that reach outside systems: the kafka source and the
// kafka and postgres sinks. Each kind's fields, parsing, validation and
// build live here, so the kinds move as one piece when kinds get a
// registry.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/kafkaconn"
	"github.com/runnel-dev/runnel/sinks"
	kafkasink "github.com/runnel-dev/runnel/sinks/kafka"
	pgsink "github.com/runnel-dev/runnel/sinks/postgres"
	"github.com/runnel-dev/runnel/sources"
	kafkasrc "github.com/runnel-dev/runnel/sources/kafka"
)

// Connector kinds, as returned by Source.Kind and Sink.Kind.
const (
	SourceKafka  = "kafka"
	SinkKafka    = "kafka"
	SinkPostgres = "postgres"
)

// KafkaSource reads Kafka topics; a partition is a shard.
type KafkaSource struct {
	Brokers    []string `yaml:"brokers"`
	Topics     []string `yaml:"topics"`
	TopicRegex string   `yaml:"topic_regex"`
	Group      string   `yaml:"group"`
	// Start is earliest (default), latest, or an RFC 3339 time.
	Start           string     `yaml:"start"`
	ReadUncommitted bool       `yaml:"read_uncommitted"`
	TLS             *KafkaTLS  `yaml:"tls"`
	SASL            *KafkaSASL `yaml:"sasl"`
}

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

// KafkaSink writes results to a topic, exactly once with checkpoints.
type KafkaSink struct {
	Brokers  []string   `yaml:"brokers"`
	Topic    string     `yaml:"topic"`
	KeyField string     `yaml:"key_field"`
	TLS      *KafkaTLS  `yaml:"tls"`
	SASL     *KafkaSASL `yaml:"sasl"`
}

// PostgresSink writes results into a table, exactly once with checkpoints.
type PostgresSink struct {
	DSN         string   `yaml:"dsn"`
	Table       string   `yaml:"table"`
	Key         []string `yaml:"key"`
	CreateTable bool     `yaml:"create_table"`
}

var kafkaConnFields = func(prefix string) []Field {
	return []Field{
		{prefix + ".brokers", "string or list of strings", "required", "seed brokers, `host:port`"},
		{prefix + ".tls", "mapping", "—", "TLS to the brokers; `{}` for the system's CAs"},
		{prefix + ".tls.ca_file", "string", "system CAs", "PEM file of the CAs to trust"},
		{prefix + ".tls.cert_file", "string", "—", "PEM client certificate (with `key_file`)"},
		{prefix + ".tls.key_file", "string", "—", "PEM client key"},
		{prefix + ".tls.server_name", "string", "the broker's host", "name checked in the brokers' certificates"},
		{prefix + ".sasl", "mapping", "—", "SASL login"},
		{prefix + ".sasl.mechanism", "string", "required", "`PLAIN`, `SCRAM-SHA-256`, `SCRAM-SHA-512`"},
		{prefix + ".sasl.username", "string", "required", ""},
		{prefix + ".sasl.password_env", "string", "required", "name of the server's environment variable holding the password (never the password)"},
	}
}

var connectorFields = slicesConcat(
	[]Field{
		{"source.kafka", "mapping", "—", "Kafka topics (Apache Kafka, Redpanda, MSK); a partition is a shard; see docs/connectors.md"},
		{"source.kafka.topics", "string or list of strings", "—", "topics to read; or `topic_regex`"},
		{"source.kafka.topic_regex", "string", "—", "Go regular expression matched against whole topic names"},
		{"source.kafka.group", "string", "none", "consumer group the read offsets are committed to, for monitoring only"},
		{"source.kafka.start", "string", "earliest", "`earliest`, `latest` or an RFC 3339 time (the first record at or after it)"},
		{"source.kafka.read_uncommitted", "bool", "false", "also read records of aborted and open transactions"},
	},
	kafkaConnFields("source.kafka"),
	[]Field{
		{"sinks[].kafka", "mapping", "—", "a Kafka topic, exactly once through transactions; see docs/connectors.md"},
		{"sinks[].kafka.topic", "string", "required", "an existing topic"},
		{"sinks[].kafka.key_field", "string", "the row's key", "row field used as the record key"},
	},
	kafkaConnFields("sinks[].kafka"),
	[]Field{
		{"sinks[].postgres", "mapping", "—", "a PostgreSQL table, exactly once with a progress row; see docs/connectors.md"},
		{"sinks[].postgres.dsn", "string", "required", "libpq connection string or URL without a password (PGPASSWORD or ~/.pgpass)"},
		{"sinks[].postgres.table", "string", "required", "`TABLE` or `SCHEMA.TABLE`"},
		{"sinks[].postgres.key", "string or list of strings", "none (insert)", "columns of an upsert: a row replaces the row with the same key"},
		{"sinks[].postgres.create_table", "bool", "false", "create the table from the results' columns if missing"},
	},
)

func slicesConcat(fs ...[]Field) []Field {
	var out []Field
	for _, f := range fs {
		out = append(out, f...)
	}
	return out
}

// flag parses a bool field.
func (p *parser) flag(f fieldMap, key string) bool {
	n, path := p.scalar(f, key)
	if n == nil {
		return false
	}
	switch n.Value {
	case "true":
		return true
	case "false":
		return false
	}
	p.problem(n, path, CodeType, fmt.Sprintf("%q is not true or false", n.Value), "")
	return false
}

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
		if m, ok := p.mapping(f.m["sasl"], join(f.schema, "sasl"), join(f.path, "sasl")); ok {
			s = &KafkaSASL{Mechanism: p.str(m, "mechanism"), Username: p.str(m, "username"), PasswordEnv: p.str(m, "password_env")}
		}
	}
	return brokers, t, s
}

// connectorSource parses source.kafka.
func (p *parser) connectorSource(f fieldMap, src *Source) {
	if !f.has("kafka") {
		return
	}
	m, ok := p.mapping(f.m["kafka"], "source.kafka", join(f.path, "kafka"))
	if !ok {
		return
	}
	k := &KafkaSource{Topics: p.names(m, "topics", true), TopicRegex: p.str(m, "topic_regex"), Group: p.str(m, "group"),
		Start: p.str(m, "start"), ReadUncommitted: p.flag(m, "read_uncommitted")}
	k.Brokers, k.TLS, k.SASL = p.kafkaConn(m)
	src.Kafka = k
}

// connectorSink parses sinks[].kafka and sinks[].postgres.
func (p *parser) connectorSink(f fieldMap, path string, s *Sink) {
	if f.has("kafka") {
		if m, ok := p.mapping(f.m["kafka"], "sinks[].kafka", join(path, "kafka")); ok {
			k := &KafkaSink{Topic: p.str(m, "topic"), KeyField: p.str(m, "key_field")}
			k.Brokers, k.TLS, k.SASL = p.kafkaConn(m)
			s.Kafka = k
		}
	}
	if f.has("postgres") {
		if m, ok := p.mapping(f.m["postgres"], "sinks[].postgres", join(path, "postgres")); ok {
			s.Postgres = &PostgresSink{DSN: p.str(m, "dsn"), Table: p.str(m, "table"), Key: p.names(m, "key", true),
				CreateTable: p.flag(m, "create_table")}
		}
	}
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

// kafkaSourceConfig maps source.kafka onto the source's configuration.
func kafkaSourceConfig(src *Source) (kafkasrc.Config, error) {
	k := src.Kafka
	c := kafkasrc.Config{Brokers: k.Brokers, Topics: k.Topics, TopicRegex: k.TopicRegex, Group: k.Group,
		ReadUncommitted: k.ReadUncommitted, Format: sources.Format(src.Format), TLS: k.TLS.conn(), SASL: k.SASL.conn()}
	switch k.Start {
	case "", kafkasrc.StartEarliest, kafkasrc.StartLatest:
		c.Start = k.Start
	default:
		t, err := time.Parse(time.RFC3339Nano, k.Start)
		if err != nil {
			return c, fmt.Errorf("start %q: use earliest, latest or an RFC 3339 time", k.Start)
		}
		c.Start, c.Timestamp = kafkasrc.StartAtTimestamp, t
	}
	return c, c.Validate()
}

// validateConnectorSource checks source.kafka.
func (v *validator) validateConnectorSource(src *Source) {
	if src.Kafka == nil {
		return
	}
	if _, err := kafkaSourceConfig(src); err != nil {
		v.add("source.kafka", CodeInvalid, strings.TrimPrefix(err.Error(), "sources: invalid configuration: kafka: "), "see docs/connectors.md")
	}
}

// validateConnectorSink checks sinks[i].kafka and sinks[i].postgres.
func (v *validator) validateConnectorSink(p string, s *Sink) {
	if k := s.Kafka; k != nil {
		c := kafkasink.Config{Brokers: k.Brokers, Topic: k.Topic, SASL: k.SASL.conn(), Job: "j", Sink: "s"}
		if err := c.Validate(); err != nil {
			v.add(p+".kafka", CodeInvalid, strings.TrimPrefix(err.Error(), "sinks: invalid configuration: kafka: "), "see docs/connectors.md")
		}
	}
	if pg := s.Postgres; pg != nil {
		c := pgsink.Config{DSN: pg.DSN, Table: pg.Table, Key: pg.Key, Job: "j", Sink: "s"}
		if err := c.Validate(); err != nil {
			v.add(p+".postgres", CodeInvalid, strings.TrimPrefix(err.Error(), "sinks: invalid configuration: postgres: "), "see docs/connectors.md")
		}
	}
}

// connectorSink builds a kafka or postgres sink; nil when s is neither.
func (b *builder) connectorSink(s *Sink, cols []sinks.Column) (sinks.Sink, error) {
	switch {
	case s.Kafka != nil:
		k := s.Kafka
		return kafkasink.New(kafkasink.Config{Brokers: k.Brokers, Topic: k.Topic, KeyField: k.KeyField,
			TLS: k.TLS.conn(), SASL: k.SASL.conn(), Job: b.spec.Name, Sink: s.ID})
	case s.Postgres != nil:
		pg := s.Postgres
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		return pgsink.New(ctx, pgsink.Config{DSN: pg.DSN, Table: pg.Table, Key: pg.Key, CreateTable: pg.CreateTable,
			Columns: cols, Job: b.spec.Name, Sink: s.ID})
	}
	return nil, nil
}

func (b *builder) kafkaSource(s *Source) (sources.Source, error) {
	c, err := kafkaSourceConfig(s)
	if err != nil {
		return nil, err
	}
	return kafkasrc.New(c, nil)
}
