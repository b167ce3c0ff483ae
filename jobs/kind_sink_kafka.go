package jobs

import (
	"strings"

	"github.com/runnel-dev/runnel/sinks"
	kafkasink "github.com/runnel-dev/runnel/sinks/kafka"
)

// SinkKafka is the sink kind that writes results to a Kafka topic.
const SinkKafka = "kafka"

// KafkaSink writes results to a topic, exactly once with checkpoints.
type KafkaSink struct {
	Brokers  []string `yaml:"brokers"`
	Topic    string   `yaml:"topic"`
	KeyField string   `yaml:"key_field"`
	// Headers maps header names to row fields.
	Headers        map[string]string `yaml:"headers"`
	Partitioner    string            `yaml:"partitioner"`
	PartitionField string            `yaml:"partition_field"`
	TLS            *KafkaTLS         `yaml:"tls"`
	SASL           *KafkaSASL        `yaml:"sasl"`
}

func init() {
	registerSink(&sinkKind{
		Name:      SinkKafka,
		Rank:      100,
		Connector: true,
		Fields: append([]Field{
			{"", "mapping", "—", "a Kafka topic, exactly once through transactions; see docs/connectors.md"},
			{"topic", "string", "required", "an existing topic"},
			{"key_field", "string", "the row's key", "row field used as the record key"},
			{"headers", "mapping of strings", "none", "record headers: `NAME: FIELD`, the row field's value (a string as is, other values as JSON)"},
			{"partitioner", "string", "murmur2", "`murmur2` (Kafka's Java client's hash of the key), `sarama` (FNV-1a), `round_robin`, or `field`"},
			{"partition_field", "string", "—", "with `partitioner: field`: the row field holding the partition number"},
		}, kafkaConnFields...),
		Has: func(s *Sink) bool { return s.Kafka != nil },
		Parse: func(p *parser, f fieldMap, s *Sink) {
			if m, ok := p.sub(f, "kafka"); ok {
				k := &KafkaSink{Topic: p.str(m, "topic"), KeyField: p.str(m, "key_field"), Headers: p.stringMap(m, "headers"),
					Partitioner: p.str(m, "partitioner"), PartitionField: p.str(m, "partition_field")}
				k.Brokers, k.TLS, k.SASL = p.kafkaConn(m)
				s.Kafka = k
			}
		},
		Validate: func(v *validator, s *Sink, p string) {
			k := s.Kafka
			c := kafkasink.Config{Brokers: k.Brokers, Topic: k.Topic, SASL: k.SASL.conn(), Job: "j", Sink: "s",
				Headers: k.Headers, Partitioner: k.Partitioner, PartitionField: k.PartitionField}
			if err := c.Validate(); err != nil {
				v.add(p+".kafka", CodeInvalid, strings.TrimPrefix(err.Error(), "sinks: invalid configuration: kafka: "), "see docs/connectors.md")
			}
		},
		Build: func(b *builder, s *Sink, cols []sinks.Column) (sinks.Sink, error) {
			k := s.Kafka
			return kafkasink.New(kafkasink.Config{Brokers: k.Brokers, Topic: k.Topic, KeyField: k.KeyField,
				Headers: k.Headers, Partitioner: k.Partitioner, PartitionField: k.PartitionField,
				TLS: k.TLS.conn(), SASL: k.SASL.conn(), Job: b.spec.Name, Sink: s.ID, Logger: b.env.Logger})
		},
	})
}
