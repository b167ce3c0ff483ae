package s3

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/state"
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

func getObject(t testing.TB, srv *testsrv.S3Process, key string) []byte {
	t.Helper()
	out, err := srv.Client().GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decode reads an object's rows, whatever its format.
func decode(t testing.TB, key string, body []byte) []map[string]any {
	t.Helper()
	switch {
	case strings.HasSuffix(key, ".parquet"):
		return readParquet(t, body)
	case strings.HasSuffix(key, ".gz"):
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		if body, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
	}
	var rows []map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return rows
		} else if err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		rows = append(rows, m)
	}
}

func readParquet(t testing.TB, body []byte) []map[string]any {
	t.Helper()
	pf, err := file.NewParquetReader(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parquet: %v", err)
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var rows []map[string]any
	for rr.Next() {
		rows = append(rows, sinks.RowsOf(rr.RecordBatch())...)
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		t.Fatal(err)
	}
	return rows
}

// published returns "key@start=views" for every row of every object
// under prefix, sorted: a duplicate shows twice.
func published(t testing.TB, srv *testsrv.S3Process, prefix string) []string {
	t.Helper()
	var out []string
	for _, k := range srv.Objects(t, bucket, prefix) {
		for _, m := range decode(t, k, getObject(t, srv, k)) {
			out = append(out, fmt.Sprintf("%v@%v=%v", m["key"], num(m["window_start"]), num(m["views"])))
		}
	}
	sort.Strings(out)
	return out
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
type job struct {
	t    *testing.T
	dir  string
	cfg  Config
	db   *state.DB
	sink *Sink
}

func (j *job) start() error {
	j.t.Helper()
	db, _, _, err := state.Restore(j.dir, state.Latest, state.Options{})
	if errors.Is(err, state.ErrNoCheckpoint) {
		db, err = state.Open(j.dir, state.Options{})
	}
	if err != nil {
		j.t.Fatal(err)
	}
	sp, err := db.Namespace(j.cfg.Sink, "sink")
	if err != nil {
		j.t.Fatal(err)
	}
	s, err := New(context.Background(), j.cfg)
	if err != nil {
		j.t.Fatal(err)
	}
	j.db, j.sink = db, s
	return s.OpenState(context.Background(), sp)
}

// crash drops the sink and the store without a final checkpoint.
func (j *job) crash() {
	j.sink.Close()
	j.db.Close()
}

// epoch writes rows, pre-commits, checkpoints, and (if commit) commits.
func (j *job) epoch(e uint64, commit bool, rows ...sinks.Row) error {
	j.t.Helper()
	ctx := context.Background()
	if err := j.sink.Write(ctx, rows); err != nil {
		j.t.Fatal(err)
	}
	if err := j.sink.PreCommit(ctx, e); err != nil {
		j.t.Fatal(err)
	}
	if _, err := j.db.Checkpoint(e, nil); err != nil {
		j.t.Fatal(err)
	}
	if commit {
		return j.sink.Commit(ctx, e)
	}
	return nil
}
