package s3

import (
	"context"
	"fmt"
	"sort"
	"testing"

	"github.com/runnel-dev/runnel/sinks/internal/sinktest"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
)

const bucket = "results"

var windowCols = sinks.WindowColumns(sinks.Column{Name: "views", Type: sinks.Int64}, sinks.Column{Name: "avg_ms", Type: sinks.Float64})

func row(start int64, key string, views int) sinks.Row {
	return sinks.Row{Key: key, Value: map[string]any{"window_start": float64(start), "window_end": float64(start + 1000),
		"key": key, "views": float64(views), "avg_ms": float64(views) / 2}}
}

func testConfig(srv *testsrv.S3Process) Config {
	return Config{Client: srv.Client(), Bucket: bucket, Prefix: "views/", Columns: windowCols, Job: "j", Sink: "out"}
}

// published returns "key@start=views" for every row of every object
// under prefix, sorted: a duplicate shows twice.
func published(t testing.TB, srv *testsrv.S3Process, prefix string) []string {
	t.Helper()
	return publishedIn(t, srv, bucket, prefix)
}

// publishedIn is published for the objects of bucket b.
func publishedIn(t testing.TB, srv *testsrv.S3Process, b, prefix string) []string {
	t.Helper()
	var out []string
	for _, k := range srv.Objects(t, b, prefix) {
		rows, err := ReadObject(k, srv.Get(t, b, k))
		if err != nil {
			t.Fatalf("read %s: %v", k, err)
		}
		for _, m := range rows {
			out = append(out, fmt.Sprintf("%v@%v=%v", m["key"], num(m["window_start"]), num(m["views"])))
		}
	}
	sort.Strings(out)
	return out
}

// checkRecovered fails t unless the rows published under views/ are
// want (as published gives them) and no staged object is left.
func checkRecovered(t testing.TB, srv *testsrv.S3Process, want ...string) {
	t.Helper()
	if got := published(t, srv, "views/"); !equal(got, want) {
		t.Fatalf("published %v, want %v", got, want)
	}
	if staged := srv.Objects(t, bucket, DefaultStagingPrefix); len(staged) != 0 {
		t.Fatalf("staged objects left after recovery: %v", staged)
	}
}

// objectRows reads the rows of an object of the bucket.
func objectRows(t testing.TB, srv *testsrv.S3Process, key string) []map[string]any {
	t.Helper()
	rows, err := ReadObject(key, srv.Get(t, bucket, key))
	if err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return rows
}

func num(v any) int64 {
	switch x := v.(type) {
	case float64:
		return int64(x)
	case int64:
		return x
	}
	return -1
}

// job opens the sink on a state store restored from the latest
// checkpoint (or a fresh one), as a restarted job does.
type job = sinktest.Job[*Sink]

func newJob(t *testing.T, cfg Config) *job {
	return &job{T: t, Dir: t.TempDir(), Sink: cfg.Sink, New: func() (*Sink, error) { return New(context.Background(), cfg) }}
}
