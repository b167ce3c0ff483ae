package jobs

import (
	"fmt"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/sinks"
	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

// SinkS3 is the sink kind that writes objects to S3.
const SinkS3 = "s3"

// S3Sink writes results as objects to an S3 bucket, exactly once with
// checkpoints. It has no field in Sink: it lives in the sink's ext map,
// under the kind's name.
type S3Sink struct {
	Endpoint  string `yaml:"endpoint"`
	Region    string `yaml:"region"`
	Profile   string `yaml:"profile"`
	PathStyle bool   `yaml:"path_style"`
	Bucket    string `yaml:"bucket"`
	Prefix    string `yaml:"prefix"`
	Partition string `yaml:"partition"`
	Time      string `yaml:"time"`
	TimeField string `yaml:"time_field"`
	TimeZone  string `yaml:"time_zone"`
	Suffix    string `yaml:"suffix"`
	Format    string `yaml:"format"`
	// Compression is Parquet's codec.
	Compression string `yaml:"compression"`
	// BufferMB is the size limit of an object's rows in MiB.
	BufferMB int64 `yaml:"buffer_mb"`
	// BufferInterval is the age limit of an object; nil: the default.
	BufferInterval *time.Duration `yaml:"buffer_interval"`
	ErrorPrefix    string         `yaml:"error_prefix"`
	StagingPrefix  string         `yaml:"staging_prefix"`
}

var s3Fields = []Field{
	{"", "mapping", "—", "objects in an S3 bucket (AWS or any S3-compatible server), exactly once with checkpoints; see docs/connectors.md"},
	{"endpoint", "string", "AWS's", "S3 endpoint URL, e.g. `http://127.0.0.1:7070` for a local gateway"},
	{"region", "string", "the AWS configuration's; us-east-1 with an endpoint", "region the requests are signed for"},
	{"profile", "string", "the default chain", "named profile of the shared AWS config/credentials files (never keys in the job file)"},
	{"path_style", "bool", "false", "bucket in the URL path, as most S3-compatible servers need"},
	{"bucket", "string", "required", "the bucket"},
	{"prefix", "string", "\"\"", "start of every data object's key"},
	{"partition", "string", "`dt={YYYY}-{MM}-{DD}/hh={hh}/`", "key template after prefix: `{YYYY}` `{MM}` `{DD}` `{hh}` `{mm}` of the row's time, `{field:NAME}` of a field"},
	{"time", "string", "event for window results, else arrival", "`event` (the row's `time_field`) or `arrival` (when the sink got the row)"},
	{"time_field", "string", "window_start", "row field of the event time: epoch milliseconds or RFC 3339"},
	{"time_zone", "string", "UTC", "IANA zone of the key's time"},
	{"suffix", "string", "deterministic", "object names: `deterministic` (job, sink, run, epoch, task, sequence) or `random` (a UUID)"},
	{"format", "string", "parquet", "`parquet`, `jsonl` or `jsonl.gz`"},
	{"compression", "string", "snappy", "Parquet codec: `snappy`, `zstd`, `gzip`, `none`"},
	{"buffer_mb", "int", "5", "close an object when its rows reach this many MiB (1–128)"},
	{"buffer_interval", "duration", "300s", "close an object when its first row is this old (0s–900s); checkpoints close objects too"},
	{"error_prefix", "string", "runnel-errors/", "key prefix of the error documents of rows that cannot be written"},
	{"staging_prefix", "string", "_runnel-staging/", "key prefix of objects written but not yet published; must not overlap prefix"},
}

func init() {
	registerSink(&sinkKind{
		Name:      SinkS3,
		Rank:      120,
		Connector: true,
		Fields:    s3Fields,
		Has:       func(s *Sink) bool { return s3Of(s) != nil },
		Parse: func(p *parser, f fieldMap, s *Sink) {
			if m, ok := p.sub(f, SinkS3); ok {
				*extConfig[S3Sink](&s.ext, SinkS3, true) = *p.parseS3Sink(m)
			}
		},
		Validate: func(v *validator, s *Sink, path string) { v.validateS3Sink(path, s3Of(s)) },
		Build: func(b *builder, s *Sink, cols []sinks.Column) (sinks.Sink, error) {
			return b.buildS3Sink(s3Of(s), s.ID, cols)
		},
	})
}

// s3Of returns a sink's s3 settings; nil when it is of another kind.
func s3Of(s *Sink) *S3Sink { return extConfig[S3Sink](&s.ext, SinkS3, false) }

// parseS3Sink reads sinks[].s3.
func (p *parser) parseS3Sink(m fieldMap) *S3Sink {
	k := &S3Sink{Endpoint: p.str(m, "endpoint"), Region: p.str(m, "region"), Profile: p.str(m, "profile"),
		PathStyle: p.flag(m, "path_style"), Bucket: p.str(m, "bucket"), Prefix: p.str(m, "prefix"),
		Partition: p.str(m, "partition"), Time: p.str(m, "time"), TimeField: p.str(m, "time_field"),
		TimeZone: p.str(m, "time_zone"), Suffix: p.str(m, "suffix"), Format: p.str(m, "format"),
		Compression: p.str(m, "compression"), BufferMB: p.integer(m, "buffer_mb", true),
		ErrorPrefix: p.str(m, "error_prefix"), StagingPrefix: p.str(m, "staging_prefix")}
	if m.has("buffer_interval") {
		d := p.duration(m, "buffer_interval", false)
		k.BufferInterval = &d
	}
	return k
}

// config maps the job file's settings onto the sink's.
func (k *S3Sink) config(job, sink string, cols []sinks.Column) s3sink.Config {
	c := s3sink.Config{Endpoint: k.Endpoint, Region: k.Region, Profile: k.Profile, PathStyle: k.PathStyle,
		Bucket: k.Bucket, Prefix: k.Prefix, Partition: k.Partition, Time: k.Time, TimeField: k.TimeField,
		TimeZone: k.TimeZone, Suffix: k.Suffix, Format: k.Format, Compression: k.Compression,
		BufferBytes: k.BufferMB << 20, ErrorPrefix: k.ErrorPrefix, StagingPrefix: k.StagingPrefix,
		Columns: cols, Job: job, Sink: sink}
	if d := k.BufferInterval; d != nil {
		c.BufferInterval = *d
		if *d == 0 {
			c.BufferInterval = s3sink.NoWait
		}
	}
	c.EnsureDefaults()
	return c
}

// validateS3Sink checks sinks[i].s3.
func (v *validator) validateS3Sink(p string, k *S3Sink) {
	if k.BufferMB > s3sink.MaxBufferBytes>>20 {
		v.add(p+".s3.buffer_mb", CodeInvalid, fmt.Sprintf("%d MiB is more than 128", k.BufferMB), "1 to 128")
		return
	}
	c := k.config("j", "s", nil)
	if err := c.Validate(); err != nil {
		v.add(p+".s3", CodeInvalid, strings.TrimPrefix(err.Error(), "sinks: invalid configuration: s3: "), "see docs/connectors.md")
	}
}

// buildS3Sink makes the sink.
func (b *builder) buildS3Sink(k *S3Sink, id string, cols []sinks.Column) (sinks.Sink, error) {
	ctx, cancel := b.connectCtx()
	defer cancel()
	c := k.config(b.spec.Name, id, cols)
	if b.env.Logger != nil {
		c.Logger = b.env.Logger
	}
	return s3sink.New(ctx, c)
}
