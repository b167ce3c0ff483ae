package jobs

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/sources"
	kinesissrc "github.com/runnel-dev/runnel/sources/kinesis"
)

// SourceKinesis is the source kind that reads a Kinesis data stream (AWS
// or another Runnel).
const SourceKinesis = "kinesis"

// KinesisSource reads a Kinesis stream; a Kinesis shard is a shard.
type KinesisSource struct {
	Stream   string `yaml:"stream"`
	Endpoint string `yaml:"endpoint"`
	Region   string `yaml:"region"`
	Profile  string `yaml:"profile"`
	// Start is trim_horizon (default), latest, at_sequence_number,
	// after_sequence_number or an RFC 3339 time.
	Start string `yaml:"start"`
	// SequenceNumbers are "SHARD=SEQUENCE" for the sequence starts.
	SequenceNumbers []string      `yaml:"sequence_numbers"`
	Consumer        string        `yaml:"consumer"`
	PollInterval    time.Duration `yaml:"poll_interval"`
	MaxRecords      int           `yaml:"max_records"`
	Decode          *Decode       `yaml:"decode"`
}

// kinesisConnFields documents the endpoint keys of the kinesis kinds.
var kinesisConnFields = []Field{
	{"stream", "string", "required", "the Kinesis stream"},
	{"endpoint", "string", "AWS's for the region", "`http(s)://host:port` of any Kinesis endpoint (another Runnel)"},
	{"region", "string", "AWS_REGION or the profile's", "AWS region"},
	{"profile", "string", "the default chain", "named profile of the shared AWS files whose credentials to use (never keys in the job file)"},
}

func init() {
	registerSource(&sourceKind{
		Name:      SourceKinesis,
		Rank:      110,
		Connector: true,
		Fields: slices.Concat([]Field{{"", "mapping", "—", "a Kinesis stream (AWS or another Runnel); a Kinesis shard is a shard; see docs/connectors.md"}},
			kinesisConnFields,
			[]Field{
				{"start", "string", "trim_horizon", "`trim_horizon`, `latest`, `at_sequence_number`, `after_sequence_number` or an RFC 3339 time"},
				{"sequence_numbers", "list of strings", "—", "`SHARD=SEQUENCE` per shard, for the sequence starts (other shards: trim_horizon)"},
				{"consumer", "string", "none (polling)", "enhanced fan-out (SubscribeToShard) as this stream consumer, registered if missing"},
				{"poll_interval", "duration", "1s", "polling: pause when a shard has nothing new"},
				{"max_records", "int", "10000", "polling: records per GetRecords"},
			}, decodeFields),
		Has: func(s *Source) bool { return extConfig[KinesisSource](&s.ext, SourceKinesis, false) != nil },
		Parse: func(p *parser, f fieldMap, s *Source) {
			m, ok := p.sub(f, SourceKinesis)
			if !ok {
				return
			}
			k := extConfig[KinesisSource](&s.ext, SourceKinesis, true)
			*k = KinesisSource{Stream: p.str(m, "stream"), Endpoint: p.str(m, "endpoint"), Region: p.str(m, "region"),
				Profile: p.str(m, "profile"), Start: p.str(m, "start"), SequenceNumbers: p.names(m, "sequence_numbers", true),
				Consumer: p.str(m, "consumer"), PollInterval: p.duration(m, "poll_interval", true),
				MaxRecords: int(p.integer(m, "max_records", true)), Decode: p.decode(m)}
		},
		Formats: codecFormats,
		Validate: func(v *validator, s *Source) {
			k := extConfig[KinesisSource](&s.ext, SourceKinesis, false)
			if k.Stream == "" {
				v.required("source.kinesis.stream", "e.g. kinesis: {stream: clicks, region: eu-west-1}")
			}
			if _, err := kinesisSourceConfig(k, s.Format); err != nil {
				v.add("source.kinesis", CodeInvalid, strings.TrimPrefix(err.Error(), "sources: invalid configuration: kinesis: "), "see docs/connectors.md")
			}
			validateDecode(v, "source.kinesis", s.Format, k.Decode)
		},
		Build: func(b *builder, s *Source) (sources.Source, error) {
			k := extConfig[KinesisSource](&s.ext, SourceKinesis, false)
			c, err := kinesisSourceConfig(k, s.Format)
			if err != nil {
				return nil, wrapSourceErr(b, err)
			}
			dec, err := newDecoders(s.Format, k.Decode)
			if err != nil {
				return nil, wrapSourceErr(b, err)
			}
			c.NewDecoder = func() kinesissrc.Decoder { return dec() }
			ctx, cancel := b.connectCtx()
			defer cancel()
			src, err := kinesissrc.New(ctx, c, nil)
			return src, wrapSourceErr(b, err)
		},
	})
}

// kinesisSourceConfig maps source.kinesis onto the source's configuration.
func kinesisSourceConfig(k *KinesisSource, format string) (kinesissrc.Config, error) {
	c := kinesissrc.Config{Stream: k.Stream, Conn: kinesisconn.Conn{Endpoint: k.Endpoint, Region: k.Region, Profile: k.Profile},
		Consumer: k.Consumer, PollInterval: k.PollInterval, MaxRecords: k.MaxRecords}
	if f := sources.Format(format); f == sources.FormatJSON || f == sources.FormatText || f == sources.FormatBytes {
		c.Format = f
	}
	var err error
	c.Start, c.Timestamp, err = connectorStart(k.Start, kinesissrc.StartAtTimestamp,
		kinesissrc.StartTrimHorizon, kinesissrc.StartLatest, kinesissrc.StartAtSequence, kinesissrc.StartAfterSequence)
	if err != nil {
		return c, err
	}
	for _, sn := range k.SequenceNumbers {
		shard, seq, ok := strings.Cut(sn, "=")
		if !ok {
			return c, fmt.Errorf("sequence_numbers: %q is not SHARD=SEQUENCE", sn)
		}
		if c.Sequences == nil {
			c.Sequences = map[string]string{}
		}
		c.Sequences[shard] = seq
	}
	return c, c.Validate()
}
