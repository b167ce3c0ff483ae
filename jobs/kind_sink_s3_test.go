package jobs

import (
	"strings"
	"testing"
	"time"

	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

func init() {
	everyField = append(everyField, "testdata/every-field-s3.yaml")
}

// TestS3SinkSpec maps the job file's s3 settings onto the sink's and
// reports bad ones at their field.
func TestS3SinkSpec(t *testing.T) {
	s, err := Parse([]byte(`name: j
source: {stream: in}
sinks:
  - {id: lake, s3: {bucket: b, buffer_mb: 2, buffer_interval: 0s, format: jsonl.gz}}`))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	c := s3Of(&s.Sinks[0]).config("j", "lake", nil)
	if c.BufferBytes != 2<<20 || c.BufferInterval != s3sink.NoWait || c.Format != s3sink.FormatJSONGzip || c.Partition != s3sink.DefaultPartition {
		t.Fatalf("config %+v", c)
	}
	c = (&S3Sink{Bucket: "b"}).config("j", "lake", nil)
	if c.BufferInterval != 300*time.Second {
		t.Fatalf("default buffer_interval %s", c.BufferInterval)
	}
	for _, tc := range []struct{ yaml, want string }{
		{`{bucket: b, buffer_mb: 129}`, "sinks[0].s3.buffer_mb: 129 MiB is more than 128"},
		{`{bucket: b, buffer_interval: 901s}`, "900s"},
		{`{bucket: b, format: csv}`, "use parquet, jsonl or jsonl.gz"},
		{`{prefix: x/}`, "bucket is required"},
		{`{bucket: b, partition: "{day}/"}`, "unknown placeholder {day}"},
	} {
		s, err := Parse([]byte("name: j\nsource: {stream: in}\nsinks:\n  - {id: lake, s3: " + tc.yaml + "}"))
		if err == nil {
			err = s.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
