package agent

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Config is the agent's YAML configuration file.
type Config struct {
	// Server is a Runnel server's URL; the agent uses its Kinesis API.
	Server string `yaml:"server"`
	// Kinesis names an AWS Kinesis (or compatible) endpoint instead.
	Kinesis *KinesisTarget `yaml:"kinesis"`
	// Checkpoint is the checkpoint file (default: the config file's path
	// with ".checkpoints" appended).
	Checkpoint string `yaml:"checkpoint"`
	// ScanInterval is how often files are globbed and read.
	ScanInterval Duration `yaml:"scan_interval"` // default 250ms
	// RotateWait is how long a file that left the glob (rotated) stays
	// open after its last growth or the rotation being noticed, whichever
	// is later.
	RotateWait Duration `yaml:"rotate_wait"` // default 5s
	// MetricsAddr, when set, serves Prometheus metrics at /metrics.
	MetricsAddr string `yaml:"metrics_addr"`
	// Host is the value of the host field (default: the hostname).
	Host string `yaml:"host"`
	// Producer settings shared by every flow.
	Aggregate          bool     `yaml:"aggregate"`
	Linger             Duration `yaml:"linger"`               // default 100ms
	MaxBufferedRecords int      `yaml:"max_buffered_records"` // default 10,000
	RateLimit          *bool    `yaml:"rate_limit"`           // pace to the per-shard limits; default on for kinesis, off for server
	Flows              []Flow   `yaml:"flows"`
}

// KinesisTarget is an AWS endpoint; credentials come from
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN.
type KinesisTarget struct {
	Region   string `yaml:"region"`
	Endpoint string `yaml:"endpoint"` // default: the region's AWS endpoint
}

// Flow sends the lines of the files matching Files to Stream.
type Flow struct {
	Files  string `yaml:"files"`
	Stream string `yaml:"stream"`
	// Format is json, csv, text or regex.
	Format string `yaml:"format"`
	// Pattern is the regex with named groups (format regex).
	Pattern string `yaml:"pattern"`
	// CSVColumns names the CSV columns; without it the file's first line
	// is the header.
	CSVColumns []string `yaml:"csv_columns"`
	// MultilineStart starts a record at each line it matches; other lines
	// join the record before them.
	MultilineStart string `yaml:"multiline_start"`
	// MultilineTimeout sends a record whose next line has not come.
	MultilineTimeout Duration `yaml:"multiline_timeout"` // default 1s
	// PartitionKey takes the key from this field of the parsed record
	// (default: file path and offset, which spreads records over shards).
	PartitionKey string `yaml:"partition_key"`
	// HostField and FileField name the added fields ("-" omits one).
	HostField string `yaml:"host_field"` // default host
	FileField string `yaml:"file_field"` // default file
	// Fields are constant fields added to every record.
	Fields map[string]string `yaml:"fields"`
	// StartAt is where a file first seen is read from: beginning or end.
	StartAt string `yaml:"start_at"` // default beginning

	pattern   *regexp.Regexp
	multiline *regexp.Regexp
}

// Duration is a time.Duration written as "250ms" in YAML.
type Duration time.Duration

// UnmarshalYAML parses a Go duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration (such as 250ms or 5s)", n.Line, n.Value)
	}
	*d = Duration(v)
	return nil
}

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read agent config: %w", err)
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	if c.Checkpoint == "" {
		c.Checkpoint = path + ".checkpoints"
	}
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("agent config %s: %w", path, err)
	}
	return &c, nil
}

// EnsureDefaults fills unset settings.
func (c *Config) EnsureDefaults() {
	if c.ScanInterval <= 0 {
		c.ScanInterval = Duration(250 * time.Millisecond)
	}
	if c.RotateWait <= 0 {
		c.RotateWait = Duration(5 * time.Second)
	}
	if c.Linger <= 0 {
		c.Linger = Duration(100 * time.Millisecond)
	}
	if c.MaxBufferedRecords <= 0 {
		c.MaxBufferedRecords = 10_000
	}
	if c.Host == "" {
		c.Host, _ = os.Hostname()
	}
	for i := range c.Flows {
		f := &c.Flows[i]
		if f.Format == "" {
			f.Format = "text"
		}
		if f.HostField == "" {
			f.HostField = "host"
		}
		if f.FileField == "" {
			f.FileField = "file"
		}
		if f.MultilineTimeout <= 0 {
			f.MultilineTimeout = Duration(time.Second)
		}
		if f.StartAt == "" {
			f.StartAt = "beginning"
		}
	}
}

// Validate checks the configuration; errors name the offending key.
func (c *Config) Validate() error {
	if (c.Server == "") == (c.Kinesis == nil) {
		return fmt.Errorf("give server (a Runnel URL) or kinesis (region and endpoint), one of them")
	}
	if c.Kinesis != nil && c.Kinesis.Region == "" {
		return fmt.Errorf("kinesis.region is required")
	}
	if c.Checkpoint == "" {
		return fmt.Errorf("checkpoint: a file path is required")
	}
	if len(c.Flows) == 0 {
		return fmt.Errorf("flows: at least one flow is required")
	}
	for i := range c.Flows {
		f := &c.Flows[i]
		where := fmt.Sprintf("flows[%d]", i)
		if f.Files == "" || f.Stream == "" {
			return fmt.Errorf("%s: files and stream are required", where)
		}
		switch f.Format {
		case "json", "csv", "text":
			if f.Pattern != "" {
				return fmt.Errorf("%s.pattern: only with format regex", where)
			}
		case "regex":
			re, err := regexp.Compile(f.Pattern)
			if err != nil || f.Pattern == "" {
				return fmt.Errorf("%s.pattern: a regular expression with named groups is required: %v", where, err)
			}
			named := false
			for _, n := range re.SubexpNames() {
				named = named || n != ""
			}
			if !named {
				return fmt.Errorf("%s.pattern: has no named groups such as (?P<name>...)", where)
			}
			f.pattern = re
		default:
			return fmt.Errorf("%s.format: %q is not json, csv, text or regex", where, f.Format)
		}
		if f.MultilineStart != "" {
			re, err := regexp.Compile(f.MultilineStart)
			if err != nil {
				return fmt.Errorf("%s.multiline_start: %v", where, err)
			}
			f.multiline = re
		}
		if f.StartAt != "beginning" && f.StartAt != "end" {
			return fmt.Errorf("%s.start_at: %q is not beginning or end", where, f.StartAt)
		}
		if len(f.CSVColumns) > 0 && f.Format != "csv" {
			return fmt.Errorf("%s.csv_columns: only with format csv", where)
		}
	}
	return nil
}
