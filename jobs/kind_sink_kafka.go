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
	Brokers  []string   `yaml:"brokers"`
	Topic    string     `yaml:"topic"`
	KeyField string     `yaml:"key_field"`
	TLS      *KafkaTLS  `yaml:"tls"`
	SASL     *KafkaSASL `yaml:"sasl"`
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
		}, kafkaConnFields...),
		Has: func(s *Sink) bool { return s.Kafka != nil },
		Parse: func(p *parser, f fieldMap, s *Sink) {
			if m, ok := p.sub(f, "kafka"); ok {
				k := &KafkaSink{Topic: p.str(m, "topic"), KeyField: p.str(m, "key_field")}
				k.Brokers, k.TLS, k.SASL = p.kafkaConn(m)
				s.Kafka = k
			}
		},
		Validate: func(v *validator, s *Sink, p string) {
			k := s.Kafka
			c := kafkasink.Config{Brokers: k.Brokers, Topic: k.Topic, SASL: k.SASL.conn(), Job: "j", Sink: "s"}
			if err := c.Validate(); err != nil {
				v.add(p+".kafka", CodeInvalid, strings.TrimPrefix(err.Error(), "sinks: invalid configuration: kafka: "), "see docs/connectors.md")
			}
		},
		Build: func(b *builder, s *Sink, cols []sinks.Column) (sinks.Sink, error) {
			k := s.Kafka
			return kafkasink.New(kafkasink.Config{Brokers: k.Brokers, Topic: k.Topic, KeyField: k.KeyField,
				TLS: k.TLS.conn(), SASL: k.SASL.conn(), Job: b.spec.Name, Sink: s.ID})
		},
	})
}
