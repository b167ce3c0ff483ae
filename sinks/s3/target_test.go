package s3

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
)

// A job restored with its sink's bucket or prefix changed (a deploy from
// a savepoint with a new job file) publishes the checkpoint's staged
// objects where they were staged for, once, whether or not the first run
// published them; the new place gets only the new run's rows, and no
// staged object is left in either bucket.
func TestRestorePublishesToStagedTarget(t *testing.T) {
	const other = "other"
	srv := testsrv.StartS3(t, bucket, other)
	for _, c := range []struct {
		name      string
		bucket    string
		prefix    string
		committed bool
	}{
		{"bucket-committed", other, "b1/", true},
		{"bucket-staged", other, "b2/", false},
		{"prefix-committed", bucket, "p1/", true},
		{"prefix-staged", bucket, "p2/", false},
	} {
		cfg := testConfig(srv)
		cfg.Prefix, cfg.Sink = "old-"+c.prefix, "s-"+c.name
		j := &job{T: t, Dir: t.TempDir(), Sink: cfg.Sink, New: func() (*Sink, error) { return New(context.Background(), cfg) }}
		if err := j.Open(); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		j.Epoch(1, c.committed, row(0, "a", 1), row(0, "b", 2))
		j.Crash()
		cfg.Bucket, cfg.Prefix = c.bucket, "new-"+c.prefix
		if err := j.Open(); err != nil {
			t.Errorf("%s: OpenState: %v", c.name, err)
			continue
		}
		j.Epoch(2, true, row(1000, "c", 3))
		j.Crash()
		if got, want := publishedIn(t, srv, bucket, "old-"+c.prefix), []string{"a@0=1", "b@0=2"}; !equal(got, want) {
			t.Errorf("%s: old place holds %v, want %v", c.name, got, want)
		}
		if got, want := publishedIn(t, srv, c.bucket, "new-"+c.prefix), []string{"c@1000=3"}; !equal(got, want) {
			t.Errorf("%s: new place holds %v, want %v", c.name, got, want)
		}
		for _, b := range []string{bucket, other} {
			if staged := srv.Objects(t, b, DefaultStagingPrefix+"j/"+cfg.Sink+"/"); len(staged) != 0 {
				t.Errorf("%s: staged objects left in %s: %v", c.name, b, staged)
			}
		}
	}
}

// Objects staged for a bucket deleted since cannot be published: OpenState
// fails with sinks.ErrStagedTargetGone naming the bucket, and nothing is
// published in the new one.
func TestRestoreStagedBucketGone(t *testing.T) {
	const gone = "gone"
	srv := testsrv.StartS3(t, bucket, gone)
	cfg := testConfig(srv)
	cfg.Bucket = gone
	j := &job{T: t, Dir: t.TempDir(), Sink: cfg.Sink, New: func() (*Sink, error) { return New(context.Background(), cfg) }}
	if err := j.Open(); err != nil {
		t.Fatal(err)
	}
	j.Epoch(1, false, row(0, "a", 1))
	j.Crash()
	ctx, cl := context.Background(), srv.Client()
	for _, k := range srv.Objects(t, gone, "") {
		if _, err := cl.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(gone), Key: aws.String(k)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cl.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(gone)}); err != nil {
		t.Fatal(err)
	}
	cfg.Bucket = bucket
	err := j.Open()
	j.Crash()
	if !errors.Is(err, sinks.ErrStagedTargetGone) || !strings.Contains(err.Error(), `"gone"`) {
		t.Fatalf("OpenState: %v, want ErrStagedTargetGone naming bucket gone", err)
	}
	if got := publishedIn(t, srv, bucket, ""); len(got) != 0 {
		t.Fatalf("bucket %s holds %v, want nothing", bucket, got)
	}
}
