package sinks

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/apache/arrow-go/v18/parquet/schema"
)

func windowRow(start int64, key string, count int64, sum float64) Row {
	return Row{Key: key, Value: map[string]any{
		"window_start": start, "window_end": start + 10_000, "key": key, "views": count, "total_ms": sum}}
}

var aggCols = WindowColumns(Column{Name: "views", Type: Int64}, Column{Name: "total_ms", Type: Float64})

// wantJSON is the JSON-row form of windowRow.
func wantJSON(start int64, key string, count int64, sum float64) map[string]any {
	return map[string]any{"window_start": start, "window_end": start + 10_000, "key": key, "views": count, "total_ms": sum}
}

func TestInferColumns(t *testing.T) {
	rows := []Row{
		{Value: map[string]any{"zeta": nil, "key": "a", "window_end": int64(2), "b": 1.5, "window_start": int64(1)}},
		{Value: map[string]any{"zeta": true, "a": "x", "c": []any{1.0}}},
	}
	got := InferColumns(rows)
	want := []Column{{Name: "window_start", Type: Timestamp}, {Name: "window_end", Type: Timestamp}, {Name: "key", Type: String},
		{Name: "a", Type: String}, {Name: "b", Type: Float64}, {Name: "c", Type: JSON}, {Name: "zeta", Type: Bool}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestLogPrintsColumnsInOrder(t *testing.T) {
	var out bytes.Buffer
	l := NewLog(&out, "board: ", aggCols)
	if err := l.Write(context.Background(), []Row{windowRow(0, "/a", 3, 1.5)}); err != nil {
		t.Fatal(err)
	}
	want := `board: {"window_start":0,"window_end":10000,"key":"/a","views":3,"total_ms":1.5}` + "\n"
	if out.String() != want {
		t.Fatalf("got  %q\nwant %q", out.String(), want)
	}
}

func writeAll(t *testing.T, s Sink, batches ...[]Row) {
	t.Helper()
	for _, b := range batches {
		if err := s.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func testBatches() ([][]Row, []map[string]any) {
	b1 := []Row{windowRow(0, "/a", 3, 1.5), windowRow(0, "/b", 1, 2)}
	b2 := []Row{windowRow(10_000, "/a", 7, 0.25)}
	// A missing aggregate is a null.
	b2 = append(b2, Row{Key: "/c", Value: map[string]any{"window_start": int64(10_000), "window_end": int64(20_000), "key": "/c", "views": int64(1)}})
	want := []map[string]any{wantJSON(0, "/a", 3, 1.5), wantJSON(0, "/b", 1, 2), wantJSON(10_000, "/a", 7, 0.25),
		{"window_start": int64(10_000), "window_end": int64(20_000), "key": "/c", "views": int64(1), "total_ms": nil}}
	return [][]Row{b1, b2}, want
}

func TestFileJSONLinesReadBack(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.jsonl")
	s, err := NewFile(FileConfig{Path: p, Columns: aggCols})
	if err != nil {
		t.Fatal(err)
	}
	batches, _ := testBatches()
	writeAll(t, s, batches...)
	f, _ := os.Open(p)
	defer f.Close()
	sc := bufio.NewScanner(f)
	var lines []string
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) != 4 || lines[0] != `{"window_start":0,"window_end":10000,"key":"/a","views":3,"total_ms":1.5}` ||
		lines[3] != `{"window_start":10000,"window_end":20000,"key":"/c","views":1}` {
		t.Fatalf("lines %q", lines)
	}
}

func checkSchema(t *testing.T, s *arrow.Schema) {
	t.Helper()
	var names []string
	for _, f := range s.Fields() {
		names = append(names, f.Name)
	}
	if strings.Join(names, ",") != "window_start,window_end,key,views,total_ms" {
		t.Fatalf("columns %v", names)
	}
	ts, ok := s.Field(0).Type.(*arrow.TimestampType)
	if !ok || ts.Unit != arrow.Millisecond || ts.TimeZone != "UTC" {
		t.Fatalf("window_start is %v, want timestamp[ms, UTC]", s.Field(0).Type)
	}
}

func TestFileArrowIPCReadBack(t *testing.T) {
	for _, cols := range [][]Column{aggCols, nil} {
		p := filepath.Join(t.TempDir(), "out.arrow")
		s, err := NewFile(FileConfig{Path: p, Columns: cols})
		if err != nil {
			t.Fatal(err)
		}
		batches, want := testBatches()
		writeAll(t, s, batches...)
		f, _ := os.Open(p)
		r, err := ipc.NewFileReader(f, ipc.WithAllocator(memory.DefaultAllocator))
		if err != nil {
			t.Fatal(err)
		}
		var got []map[string]any
		for i := 0; i < r.NumRecords(); i++ {
			rec, err := r.RecordBatch(i)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, RowsOf(rec)...)
		}
		f.Close()
		if cols != nil {
			checkSchema(t, r.Schema())
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("got  %v\nwant %v", got, want)
			}
		} else if len(got) != 4 || got[3]["total_ms"] != nil || got[0]["views"] != int64(3) {
			t.Fatalf("inferred schema %v rows %v", r.Schema(), got)
		}
	}
}

func TestFileParquetReadBack(t *testing.T) {
	p := filepath.Join(t.TempDir(), "out.parquet")
	s, err := NewFile(FileConfig{Path: p, Columns: aggCols})
	if err != nil {
		t.Fatal(err)
	}
	batches, want := testBatches()
	writeAll(t, s, batches...)
	got, schema, _ := readParquet(t, p)
	checkSchema(t, schema)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %v\nwant %v", got, want)
	}
}

// readParquet reads a Parquet file's rows (see RowsOf), its Arrow schema
// and its Parquet schema.
func readParquet(t *testing.T, path string) ([]map[string]any, *arrow.Schema, *schema.Schema) {
	t.Helper()
	pf, err := file.OpenParquetFile(path, false)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1024}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rr.Release()
	var got []map[string]any
	for rr.Next() {
		got = append(got, RowsOf(rr.RecordBatch())...)
	}
	return got, rr.Schema(), pf.MetaData().Schema
}

func TestEmptyColumnarFileIsValid(t *testing.T) {
	p := filepath.Join(t.TempDir(), "empty.arrow")
	s, _ := NewFile(FileConfig{Path: p})
	writeAll(t, s)
	f, _ := os.Open(p)
	defer f.Close()
	r, err := ipc.NewFileReader(f)
	if err != nil || r.NumRecords() != 0 || r.Schema().NumFields() != 3 {
		t.Fatalf("err %v", err)
	}
}

func TestFileConfigValidate(t *testing.T) {
	for _, c := range []FileConfig{{}, {Path: "x", Format: "xml"}, {Path: "x", Columns: []Column{{Name: "a", Type: "decimal"}}}} {
		if _, err := NewFile(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestDashboardIPCEqualsJSONRows(t *testing.T) {
	d, err := NewDashboard(DashboardConfig{Columns: aggCols, MaxRows: 3})
	if err != nil {
		t.Fatal(err)
	}
	batches, want := testBatches()
	writeAll(t, d, batches...)
	// Only the last 3 rows are kept.
	want = want[1:]
	if n, total := d.Rows(); n != 3 || total != 4 {
		t.Fatalf("retained %d of %d, want 3 of 4", n, total)
	}
	var ipcBuf bytes.Buffer
	if err := d.WriteIPC(&ipcBuf); err != nil {
		t.Fatal(err)
	}
	r, err := ipc.NewReader(&ipcBuf)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	checkSchema(t, r.Schema())
	var fromIPC []map[string]any
	for r.Next() {
		fromIPC = append(fromIPC, RowsOf(r.RecordBatch())...)
	}
	if !reflect.DeepEqual(fromIPC, want) {
		t.Fatalf("IPC rows %v\nwant %v", fromIPC, want)
	}
	if !reflect.DeepEqual(d.JSONRows(), fromIPC) {
		t.Fatalf("JSON rows %v differ from IPC rows %v", d.JSONRows(), fromIPC)
	}
	var js bytes.Buffer
	if err := d.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var decoded []map[string]any
	if err := json.Unmarshal(js.Bytes(), &decoded); err != nil || len(decoded) != 3 || decoded[0]["key"] != "/b" {
		t.Fatalf("WriteJSON %s: %v", js.String(), err)
	}
	if !strings.HasPrefix(js.String(), `[{"window_start":0,"window_end":10000,"key":"/b","views":1,"total_ms":2}`) {
		t.Fatalf("WriteJSON column order: %s", js.String())
	}
}

func TestDashboardLiveSubscription(t *testing.T) {
	d, _ := NewDashboard(DashboardConfig{Columns: aggCols})
	live := d.Subscribe(4)
	slow := d.Subscribe(1)
	batches, _ := testBatches()
	for _, b := range batches {
		if err := d.Write(context.Background(), b); err != nil {
			t.Fatal(err)
		}
	}
	rec := <-live.C()
	if rows := RowsOf(rec); len(rows) != 2 || rows[0]["key"] != "/a" {
		t.Fatalf("first live batch %v", rows)
	}
	rec.Release()
	rec = <-live.C()
	if rec.NumRows() != 2 {
		t.Fatalf("second live batch has %d rows", rec.NumRows())
	}
	rec.Release()
	// slow had room for one batch: the second write dropped it.
	n := 0
	for b := range slow.C() {
		b.Release()
		n++
	}
	if n != 1 || !errors.Is(slow.Err(), ErrSlowSubscriber) {
		t.Fatalf("slow subscriber got %d batches, err %v", n, slow.Err())
	}
	d.Close()
	if _, ok := <-live.C(); ok || live.Err() != nil {
		t.Fatalf("live subscription not closed cleanly at Close: %v", live.Err())
	}
	if n, _ := d.Rows(); n != 4 {
		t.Fatalf("rows not readable after Close: %d", n)
	}
}
