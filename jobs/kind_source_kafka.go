package jobs

import (
	"strings"
	"time"

	"github.com/runnel-dev/runnel/sources"
	kafkasrc "github.com/runnel-dev/runnel/sources/kafka"
)

// SourceKafka is the source kind that reads Kafka topics.
const SourceKafka = "kafka"

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
	// Metadata names the field that carries each record's Kafka metadata.
	Metadata string  `yaml:"metadata"`
	Decode   *Decode `yaml:"decode"`
	// DiscoverEvery is how often partitions are listed again; nil means
	// the default, 0 turns discovery off.
	DiscoverEvery *time.Duration `yaml:"discover_every"`
}

func init() {
	registerSource(&sourceKind{
		Name:      SourceKafka,
		Rank:      100,
		Connector: true,
		Fields: append([]Field{
			{"", "mapping", "—", "Kafka topics (Apache Kafka, Redpanda, MSK); a partition is a shard; see docs/connectors.md"},
			{"topics", "string or list of strings", "—", "topics to read; or `topic_regex`"},
			{"topic_regex", "string", "—", "Go regular expression matched against whole topic names"},
			{"group", "string", "none", "consumer group the read offsets are committed to, for monitoring only"},
			{"start", "string", "earliest", "`earliest`, `latest` or an RFC 3339 time (the first record at or after it)"},
			{"read_uncommitted", "bool", "false", "also read records of aborted and open transactions"},
			{"metadata", "string", "none", "field added to each record with its topic, partition, offset, timestamp, key and headers"},
			{"discover_every", "duration", "30s", "how often partitions are listed again while the job runs; new ones are read from their first record; `0` turns it off"},
		}, append(kafkaConnFields, decodeFields...)...),
		Has: func(s *Source) bool { return s.Kafka != nil },
		Parse: func(p *parser, f fieldMap, s *Source) {
			m, ok := p.sub(f, "kafka")
			if !ok {
				return
			}
			k := &KafkaSource{Topics: p.names(m, "topics", true), TopicRegex: p.str(m, "topic_regex"), Group: p.str(m, "group"),
				Start: p.str(m, "start"), ReadUncommitted: p.flag(m, "read_uncommitted"), Metadata: p.str(m, "metadata"),
				Decode: p.decode(m)}
			if _, ok := m.m["discover_every"]; ok {
				d := p.duration(m, "discover_every", false)
				k.DiscoverEvery = &d
			}
			k.Brokers, k.TLS, k.SASL = p.kafkaConn(m)
			s.Kafka = k
		},
		Formats: codecFormats,
		Validate: func(v *validator, s *Source) {
			if _, err := kafkaSourceConfig(s); err != nil {
				v.add("source.kafka", CodeInvalid, strings.TrimPrefix(err.Error(), "sources: invalid configuration: kafka: "), "see docs/connectors.md")
			}
			validateDecode(v, "source.kafka", s.Format, s.Kafka.Decode)
		},
		Build: func(b *builder, s *Source) (sources.Source, error) {
			c, err := kafkaSourceConfig(s)
			if err != nil {
				return nil, wrapSourceErr(b, err)
			}
			dec, err := newDecoders(s.Format, s.Kafka.Decode)
			if err != nil {
				return nil, wrapSourceErr(b, err)
			}
			c.NewDecoder = func() kafkasrc.Decoder { return dec() }
			src, err := kafkasrc.New(c, nil)
			return src, wrapSourceErr(b, err)
		},
	})
}

// kafkaSourceConfig maps source.kafka onto the source's configuration.
func kafkaSourceConfig(src *Source) (kafkasrc.Config, error) {
	k := src.Kafka
	c := kafkasrc.Config{Brokers: k.Brokers, Topics: k.Topics, TopicRegex: k.TopicRegex, Group: k.Group,
		ReadUncommitted: k.ReadUncommitted, TLS: k.TLS.conn(), SASL: k.SASL.conn(), Metadata: k.Metadata}
	if d := k.DiscoverEvery; d != nil {
		c.DiscoverEvery = *d
		if *d == 0 {
			c.DiscoverEvery = -1
		}
	}
	if f := sources.Format(src.Format); f == sources.FormatJSON || f == sources.FormatText || f == sources.FormatBytes {
		c.Format = f
	}
	var err error
	c.Start, c.Timestamp, err = connectorStart(k.Start, kafkasrc.StartAtTimestamp, kafkasrc.StartEarliest, kafkasrc.StartLatest)
	if err != nil {
		return c, err
	}
	return c, c.Validate()
}
