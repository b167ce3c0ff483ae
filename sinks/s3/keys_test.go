package s3

import (
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/sinks"
)

func TestTemplates(t *testing.T) {
	ts := time.Date(2026, 12, 6, 7, 5, 0, 0, time.UTC)
	for _, tc := range []struct {
		tmpl string
		row  map[string]any
		want string
		err  string
	}{
		{DefaultPartition, nil, "dt=2026-12-06/hh=07/", ""},
		{"{YYYY}/{MM}/{DD}/{hh}/{mm}/", nil, "2026/12/06/07/05/", ""},
		{"page={field:page}/", map[string]any{"page": "a/b c"}, "page=a%2Fb%20c/", ""},
		{"n={field:n}/", map[string]any{"n": 42.0}, "n=42/", ""},
		{"{field:p}/", map[string]any{"p": ".."}, "%2E%2E_/", ""},
		{"{field:p}/", map[string]any{}, "", "missing"},
	} {
		tm, err := parseTemplate(tc.tmpl)
		if err != nil {
			t.Fatalf("%s: %v", tc.tmpl, err)
		}
		got, err := tm.render(tc.row, ts)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s on %v: err %v, want %q", tc.tmpl, tc.row, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s on %v = %q, %v; want %q", tc.tmpl, tc.row, got, err, tc.want)
		}
	}
	for _, bad := range []string{"{yyyy}", "{field:}", "dt={YYYY", "/abs/{YYYY}"} {
		if _, err := parseTemplate(bad); err == nil {
			t.Errorf("template %q accepted", bad)
		}
	}
}

func TestValidate(t *testing.T) {
	ok := Config{Bucket: "b", Job: "j", Sink: "s"}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"defaults", func(*Config) {}, ""},
		{"no bucket", func(c *Config) { c.Bucket = "" }, "bucket is required"},
		{"small buffer", func(c *Config) { c.BufferBytes = 1000 }, "1 MiB to 128 MiB"},
		{"big buffer", func(c *Config) { c.BufferBytes = 129 << 20 }, "1 MiB to 128 MiB"},
		{"long interval", func(c *Config) { c.BufferInterval = 901 * time.Second }, "0s to 900s"},
		{"format", func(c *Config) { c.Format = "csv" }, "use parquet, jsonl or jsonl.gz"},
		{"compression", func(c *Config) { c.Compression = "lz4" }, "use snappy, zstd, gzip or none"},
		{"zone", func(c *Config) { c.TimeZone = "Mars/Olympus" }, "time_zone"},
		{"template", func(c *Config) { c.Partition = "{nope}" }, "unknown placeholder"},
		{"overlap", func(c *Config) { c.Prefix = "_runnel-staging/x/" }, "overlap"},
		{"time", func(c *Config) { c.Time = "ingest" }, "use event or arrival"},
	} {
		c := ok
		tc.edit(&c)
		c.EnsureDefaults()
		err := c.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%s: Validate() = %v, want %q", tc.name, err, tc.want)
		}
	}
	c := Config{Columns: sinks.WindowColumns()}
	c.EnsureDefaults()
	if c.Time != TimeEvent {
		t.Errorf("window results default to time %q, want event", c.Time)
	}
}
