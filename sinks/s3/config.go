package s3

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnel-dev/runnel/sinks"
)

// ErrConfig marks an S3 sink configuration error.
var ErrConfig = fmt.Errorf("%w: s3", sinks.ErrConfig)

// Formats of the objects.
const (
	FormatParquet   = "parquet"
	FormatJSONLines = "jsonl"
	FormatJSONGzip  = "jsonl.gz"
)

// Times a key's time placeholders can come from.
const (
	TimeEvent   = "event"
	TimeArrival = "arrival"
)

// Object name suffixes.
const (
	SuffixDeterministic = "deterministic"
	SuffixRandom        = "random"
)

// Buffer limits, as Firehose has them.
const (
	MinBufferBytes    = 1 << 20
	MaxBufferBytes    = 128 << 20
	MaxBufferInterval = 900 * time.Second
)

// Defaults that EnsureDefaults fills in.
const (
	DefaultPartition      = "dt={YYYY}-{MM}-{DD}/hh={hh}/"
	DefaultBufferBytes    = 5 << 20
	DefaultBufferInterval = 300 * time.Second
	DefaultErrorPrefix    = "runnel-errors/"
	DefaultStagingPrefix  = "_runnel-staging/"
	DefaultTimeField      = sinks.ColWindowStart
	// NoWait is the BufferInterval that closes objects on every Write.
	NoWait time.Duration = -1
)

var compressions = map[string]compress.Compression{
	"snappy": compress.Codecs.Snappy, "zstd": compress.Codecs.Zstd,
	"gzip": compress.Codecs.Gzip, "none": compress.Codecs.Uncompressed,
}

// Config configures an S3 sink. Credentials come from the AWS default
// chain (environment, shared files, instance roles) or, with Profile,
// from that named profile of the shared files; never from here.
type Config struct {
	// Endpoint is the S3 endpoint URL; empty: AWS's for Region.
	Endpoint string
	// Region signs the requests; default us-east-1 when Endpoint is set
	// and the chain names none.
	Region string
	// Profile names a profile of the shared AWS config and credentials
	// files; empty: the default chain.
	Profile string
	// PathStyle addresses the bucket in the path (http://host/bucket/key)
	// instead of the host name, as most S3-compatible servers need.
	PathStyle bool
	Bucket    string
	// Prefix starts every data object's key.
	Prefix string
	// Partition is the key template between Prefix and the object name:
	// {YYYY} {MM} {DD} {hh} {mm} are the row's time, {field:NAME} a field
	// of the row (see the package comment).
	Partition string
	// Time is where the key's time comes from: TimeEvent (the TimeField
	// of the row, epoch milliseconds or RFC 3339) or TimeArrival (when the
	// sink got the row). Default: event when Columns hold TimeField,
	// otherwise arrival.
	Time      string
	TimeField string
	// TimeZone is the IANA zone of the key's time; default UTC.
	TimeZone string
	// Suffix ends each object name: SuffixDeterministic (job, sink, run,
	// epoch, task and sequence) or SuffixRandom (a UUID).
	Suffix string
	// Format is FormatParquet, FormatJSONLines or FormatJSONGzip.
	Format string
	// Compression is Parquet's codec: snappy (default), zstd, gzip, none.
	Compression string
	// BufferBytes and BufferInterval close an object when its rows reach
	// that many bytes (as JSON, before conversion) or when its first row
	// is that old, whichever comes first. A checkpoint also closes every
	// object. BufferInterval 0 is the default; NoWait (Firehose's 0 s)
	// closes the objects at the end of every Write.
	BufferBytes    int64
	BufferInterval time.Duration
	// ErrorPrefix starts the keys of the error documents of rows that
	// cannot be written.
	ErrorPrefix string
	// StagingPrefix starts the keys of objects not yet published.
	StagingPrefix string
	// Columns are the rows' columns when the job knows them (window
	// results); otherwise each Parquet object's columns come from its rows.
	Columns []sinks.Column
	// Job and Sink name the objects.
	Job, Sink string
	// Logger gets the ERROR lines of rows sent to the error output, the
	// WARN lines of retried calls and of calls the server leaves
	// unanswered (sinks.Watchdog).
	Logger *slog.Logger
	// Client, when set, is used instead of one made from the fields above.
	Client *s3.Client
}

// EnsureDefaults fills in the defaults of unset fields.
func (c *Config) EnsureDefaults() {
	if c.Partition == "" {
		c.Partition = DefaultPartition
	}
	if c.TimeField == "" {
		c.TimeField = DefaultTimeField
	}
	if c.Time == "" {
		c.Time = TimeArrival
		if slices.ContainsFunc(c.Columns, func(col sinks.Column) bool { return col.Name == c.TimeField }) {
			c.Time = TimeEvent
		}
	}
	if c.TimeZone == "" {
		c.TimeZone = "UTC"
	}
	if c.Suffix == "" {
		c.Suffix = SuffixDeterministic
	}
	if c.Format == "" {
		c.Format = FormatParquet
	}
	if c.Compression == "" {
		c.Compression = "snappy"
	}
	if c.BufferBytes == 0 {
		c.BufferBytes = DefaultBufferBytes
	}
	if c.BufferInterval == 0 {
		c.BufferInterval = DefaultBufferInterval
	}
	if c.ErrorPrefix == "" {
		c.ErrorPrefix = DefaultErrorPrefix
	}
	if c.StagingPrefix == "" {
		c.StagingPrefix = DefaultStagingPrefix
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate checks the configuration (after EnsureDefaults) without
// contacting the endpoint.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Bucket == "":
		return bad("bucket is required")
	case strings.ContainsAny(c.Bucket, "/ "):
		return bad("bucket %q: a bucket name has no slashes or spaces", c.Bucket)
	case c.Job == "" || c.Sink == "":
		return bad("job and sink names are required")
	case c.BufferBytes < MinBufferBytes || c.BufferBytes > MaxBufferBytes:
		return bad("buffer_size %d bytes: must be 1 MiB to 128 MiB", c.BufferBytes)
	case c.BufferInterval < NoWait || c.BufferInterval > MaxBufferInterval:
		return bad("buffer_interval %s: must be 0s to 900s", c.BufferInterval)
	case c.Time != TimeEvent && c.Time != TimeArrival:
		return bad("time %q: use event or arrival", c.Time)
	case c.Suffix != SuffixDeterministic && c.Suffix != SuffixRandom:
		return bad("suffix %q: use deterministic or random", c.Suffix)
	case c.Format != FormatParquet && c.Format != FormatJSONLines && c.Format != FormatJSONGzip:
		return bad("format %q: use parquet, jsonl or jsonl.gz", c.Format)
	}
	if _, ok := compressions[c.Compression]; !ok {
		return bad("compression %q: use snappy, zstd, gzip or none", c.Compression)
	}
	if _, err := time.LoadLocation(c.TimeZone); err != nil {
		return bad("time_zone %q: %v", c.TimeZone, err)
	}
	if _, err := parseTemplate(c.Partition); err != nil {
		return bad("partition %q: %v", c.Partition, err)
	}
	for name, p := range map[string]string{"prefix": c.Prefix, "error_prefix": c.ErrorPrefix, "staging_prefix": c.StagingPrefix} {
		if strings.HasPrefix(p, "/") || strings.Contains(p, "{") {
			return bad("%s %q: a fixed key prefix without a leading slash", name, p)
		}
	}
	if c.StagingPrefix == "" || strings.HasPrefix(c.Prefix, c.StagingPrefix) || (c.Prefix != "" && strings.HasPrefix(c.StagingPrefix, c.Prefix)) {
		return bad("staging_prefix %q must not be empty nor overlap prefix %q: readers of the prefix would see unpublished objects", c.StagingPrefix, c.Prefix)
	}
	return nil
}
