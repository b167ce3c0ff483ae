package s3

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
)

func equal(a, b []string) bool { return fmt.Sprint(a) == fmt.Sprint(b) }

// TestExactlyOnceAcrossCrashes crashes the sink at each point of an
// epoch's life: before its checkpoint (rows replayed by the source, not
// the sink; its staged objects must go), after the checkpoint but
// before Commit (OpenState publishes it), and after Commit before the
// next checkpoint forgets it (OpenState must not publish it twice).
func TestExactlyOnceAcrossCrashes(t *testing.T) {
	srv := testsrv.StartS3(t, bucket)
	j := newJob(t, testConfig(srv))
	if err := j.Open(); err != nil {
		t.Fatal(err)
	}
	j.EpochErr(1, true, row(0, "a", 1), row(0, "b", 2))
	// Written but never checkpointed: the source replays these.
	j.S.Write(context.Background(), []sinks.Row{row(1000, "a", 3)})
	j.S.PreCommit(context.Background(), 2)
	j.Crash()
	if err := j.Open(); err != nil {
		t.Fatal(err)
	}
	if staged := srv.Objects(t, bucket, DefaultStagingPrefix); len(staged) != 0 {
		t.Fatalf("staged objects of an epoch that never completed are left: %v", staged)
	}
	// Checkpointed, not committed.
	j.EpochErr(2, false, row(1000, "a", 3))
	if got := published(t, srv, "views/"); !equal(got, []string{"a@0=1", "b@0=2"}) {
		t.Fatalf("before Commit published %v", got)
	}
	j.Crash()
	if err := j.Open(); err != nil {
		t.Fatal(err)
	}
	// Committed, then a crash before the next checkpoint forgets it.
	j.EpochErr(3, true, row(2000, "c", 4))
	j.Crash()
	if err := j.Open(); err != nil {
		t.Fatal(err)
	}
	checkRecovered(t, srv, "a@0=1", "a@1000=3", "b@0=2", "c@2000=4")
	j.Crash()
}

// failCopies makes the client's CopyObject calls fail once n of them
// succeeded, while n >= 0.
func failCopies(cl *s3.Client, n *atomic.Int64) *s3.Client {
	return s3.New(cl.Options(), func(o *s3.Options) {
		o.RetryMaxAttempts = 1
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error {
			return st.Initialize.Add(middleware.InitializeMiddlewareFunc("failCopies",
				func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
					if awsmiddleware.GetOperationName(ctx) == "CopyObject" && n.Load() >= 0 && n.Add(-1) < 0 {
						return middleware.InitializeOutput{}, middleware.Metadata{}, errors.New("injected failure")
					}
					return next.HandleInitialize(ctx, in)
				}), middleware.Before)
		})
	})
}

// TestFailureBetweenStagingAndPublishing fails the publication of a
// checkpointed epoch of three objects after its first object (so the
// epoch is half published), and then restarts the sink from the
// checkpoint: every row is published once, none twice, nothing is left
// staged. It also kills the server between staging and publishing.
func TestFailureBetweenStagingAndPublishing(t *testing.T) {
	srv := testsrv.StartS3(t, bucket)
	var copies atomic.Int64
	copies.Store(1)
	cfg := testConfig(srv)
	cfg.Partition = "{field:key}/"
	cfg.Client = failCopies(srv.Client(), &copies)
	j := newJob(t, cfg)
	if err := j.Open(); err != nil {
		t.Fatal(err)
	}
	if err := j.EpochErr(1, true, row(0, "a", 1), row(0, "b", 2), row(0, "c", 3)); err == nil {
		t.Fatal("Commit with a failing CopyObject succeeded")
	}
	if got := published(t, srv, "views/"); len(got) != 1 {
		t.Fatalf("after the injected failure %v are published, want 1 of 3 objects", got)
	}
	if err := j.S.Write(context.Background(), []sinks.Row{row(1000, "a", 1)}); err == nil {
		t.Fatal("a sink whose commit failed accepted more rows")
	}
	j.Crash()
	copies.Store(-1)
	if err := j.Open(); err != nil {
		t.Fatal(err)
	}
	// Stage, checkpoint, kill the server before Commit.
	j.EpochErr(2, false, row(1000, "d", 4))
	srv.Kill()
	if err := j.S.Commit(context.Background(), 2); err == nil {
		t.Fatal("Commit with the server down succeeded")
	}
	j.Crash()
	srv.Start()
	if err := j.Open(); err != nil {
		t.Fatal(err)
	}
	checkRecovered(t, srv, "a@0=1", "b@0=2", "c@0=3", "d@1000=4")
	j.Crash()
}

// TestFormats writes the same rows in each format and compression and
// reads them back.
func TestFormats(t *testing.T) {
	srv := testsrv.StartS3(t, bucket)
	rows := []sinks.Row{row(0, "a", 1), row(0, "b", 2), row(3_600_000, "a", 3)}
	for _, tc := range []struct{ format, compression, ext string }{
		{FormatParquet, "snappy", ".parquet"}, {FormatParquet, "zstd", ".parquet"}, {FormatParquet, "gzip", ".parquet"},
		{FormatParquet, "none", ".parquet"}, {FormatJSONLines, "", ".jsonl"}, {FormatJSONGzip, "", ".jsonl.gz"},
	} {
		t.Run(tc.format+"-"+tc.compression, func(t *testing.T) {
			cfg := testConfig(srv)
			cfg.Prefix = tc.format + "-" + tc.compression + "/"
			cfg.Format, cfg.Compression = tc.format, tc.compression
			s, err := New(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(context.Background(), rows); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			keys := srv.Objects(t, bucket, cfg.Prefix)
			if len(keys) != 2 || !strings.HasPrefix(keys[0], cfg.Prefix+"dt=1970-01-01/hh=00/j-out-") ||
				!strings.HasPrefix(keys[1], cfg.Prefix+"dt=1970-01-01/hh=01/j-out-") || !strings.HasSuffix(keys[0], tc.ext) {
				t.Fatalf("objects %v: want one per hour, named dt=.../hh=.../j-out-...%s", keys, tc.ext)
			}
			if got := published(t, srv, cfg.Prefix); !equal(got, []string{"a@0=1", "a@3600000=3", "b@0=2"}) {
				t.Fatalf("read back %v", got)
			}
			if tc.format == FormatParquet {
				m := objectRows(t, srv, keys[0])[0]
				if m["avg_ms"] != 0.5 || m["window_end"] != int64(1000) {
					t.Fatalf("parquet row %v: columns lost their types", m)
				}
			}
		})
	}
}

// TestErrorOutput sends rows that cannot be written (no event time, a
// missing key field, a field outside the Parquet columns, a value of the
// wrong type) to the error prefix as Firehose error documents, and the
// good rows to their objects.
func TestErrorOutput(t *testing.T) {
	srv := testsrv.StartS3(t, bucket)
	cfg := testConfig(srv)
	cfg.Partition = "dt={YYYY}-{MM}-{DD}/{field:key}/"
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	bad := []map[string]any{
		{"key": "x", "views": 1.0},
		{"window_start": 0.0, "views": 1.0},
		{"window_start": 0.0, "key": "y", "extra": true},
		{"window_start": 0.0, "key": "z", "views": "many"},
	}
	rows := []sinks.Row{row(0, "a", 1)}
	for _, m := range bad {
		rows = append(rows, sinks.Row{Value: m})
	}
	if err := s.Write(context.Background(), rows); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := published(t, srv, "views/"); !equal(got, []string{"a@0=1"}) {
		t.Fatalf("data objects hold %v", got)
	}
	if s.ErrorRows() != 4 {
		t.Fatalf("ErrorRows = %d, want 4", s.ErrorRows())
	}
	codes := map[string]string{}
	for _, k := range srv.Objects(t, bucket, DefaultErrorPrefix) {
		typ := strings.Split(strings.TrimPrefix(k, DefaultErrorPrefix), "/")[0]
		for _, doc := range objectRows(t, srv, k) {
			for _, f := range []string{"attemptsMade", "arrivalTimestamp", "ErrorCode", "ErrorMessage", "attemptEndingTimestamp", "rawData"} {
				if _, ok := doc[f]; !ok {
					t.Errorf("error document %v lacks %s", doc, f)
				}
			}
			raw, err := base64.StdEncoding.DecodeString(doc["rawData"].(string))
			if err != nil || !json.Valid(raw) {
				t.Errorf("rawData %v is not base64 JSON", doc["rawData"])
			}
			codes[doc["ErrorCode"].(string)] = typ
		}
	}
	want := map[string]string{"EventTimeMissing": "partitioning-failed", "PartitionKeyMissing": "partitioning-failed",
		"FieldNotInSchema": "format-conversion-failed", "FieldTypeMismatch": "format-conversion-failed"}
	if fmt.Sprint(codes) != fmt.Sprint(want) {
		t.Fatalf("error codes and types %v, want %v", codes, want)
	}
}

// TestBufferLimits closes an object when its rows reach the size limit
// and, with NoWait, on every Write.
func TestBufferLimits(t *testing.T) {
	srv := testsrv.StartS3(t, bucket)
	cfg := testConfig(srv)
	cfg.Format, cfg.BufferBytes, cfg.BufferInterval = FormatJSONLines, MinBufferBytes, MaxBufferInterval
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var rows []sinks.Row
	for i := range 30_000 { // about 100 bytes each: 3 MB
		rows = append(rows, row(0, fmt.Sprintf("k%06d", i), i))
	}
	for i := 0; i < len(rows); i += 1000 {
		if err := s.Write(context.Background(), rows[i:i+1000]); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(srv.Objects(t, bucket, "views/")); n < 2 || n > 3 {
		t.Fatalf("%d objects before Close, want 2 or 3 of at least 1 MiB", n)
	}
	s.Close()
	if got := published(t, srv, "views/"); len(got) != len(rows) {
		t.Fatalf("%d rows published, want %d", len(got), len(rows))
	}
	cfg.Prefix, cfg.BufferInterval = "every-write/", NoWait
	s, _ = New(context.Background(), cfg)
	for i := range 3 {
		s.Write(context.Background(), rows[i:i+1])
	}
	if n := len(srv.Objects(t, bucket, "every-write/")); n != 3 {
		t.Fatalf("NoWait: %d objects after 3 writes, want 3", n)
	}
}
