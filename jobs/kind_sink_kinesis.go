package jobs

import (
	"slices"
	"strings"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/sinks"
	kinesissink "github.com/runnel-dev/runnel/sinks/kinesis"
)

// SinkKinesis is the sink kind that writes results to a Kinesis stream.
const SinkKinesis = "kinesis"

// KinesisSink writes results to a Kinesis stream, at least once.
type KinesisSink struct {
	Stream    string `yaml:"stream"`
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	Profile   string `yaml:"profile"`
	KeyField  string `yaml:"key_field"`
	IDField   string `yaml:"id_field"`
	Aggregate bool   `yaml:"aggregate"`
}

func init() {
	registerSink(&sinkKind{
		Name:      SinkKinesis,
		Rank:      110,
		Connector: true,
		Fields: slices.Concat([]Field{{"", "mapping", "—", "a Kinesis stream, at least once with a deterministic record id; see docs/connectors.md"}},
			kinesisConnFields,
			[]Field{
				{"key_field", "string", "the row's key", "row field used as the partition key"},
				{"id_field", "string", "runnel_id", "field the record id is written to"},
				{"aggregate", "bool", "false", "pack records into KPL aggregated records"},
			}),
		Has: func(s *Sink) bool { return extConfig[KinesisSink](&s.ext, SinkKinesis, false) != nil },
		Parse: func(p *parser, f fieldMap, s *Sink) {
			if m, ok := p.sub(f, SinkKinesis); ok {
				*extConfig[KinesisSink](&s.ext, SinkKinesis, true) = KinesisSink{Stream: p.str(m, "stream"), Endpoint: p.str(m, "endpoint"),
					Region: p.str(m, "region"), Profile: p.str(m, "profile"), KeyField: p.str(m, "key_field"),
					IDField: p.str(m, "id_field"), Aggregate: p.flag(m, "aggregate")}
			}
		},
		Validate: func(v *validator, s *Sink, p string) {
			c := kinesisSinkConfig(extConfig[KinesisSink](&s.ext, SinkKinesis, false), "j", "s")
			if err := c.Validate(); err != nil {
				v.add(p+".kinesis", CodeInvalid, strings.TrimPrefix(err.Error(), "sinks: invalid configuration: kinesis: "), "see docs/connectors.md")
			}
		},
		Build: func(b *builder, s *Sink, _ []sinks.Column) (sinks.Sink, error) {
			ctx, cancel := b.connectCtx()
			defer cancel()
			c := kinesisSinkConfig(extConfig[KinesisSink](&s.ext, SinkKinesis, false), b.spec.Name, s.ID)
			c.Logger = b.env.Logger
			return kinesissink.New(ctx, c)
		},
	})
}

func kinesisSinkConfig(k *KinesisSink, job, sink string) kinesissink.Config {
	return kinesissink.Config{Stream: k.Stream, Conn: kinesisconn.Conn{Endpoint: k.Endpoint, Region: k.Region, Profile: k.Profile},
		KeyField: k.KeyField, IDField: k.IDField, Aggregate: k.Aggregate, Job: job, Sink: sink}
}
