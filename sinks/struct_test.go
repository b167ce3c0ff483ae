package sinks

import (
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
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

var explainCol = Column{Name: "explanation", Type: Struct, Fields: []Column{
	{Name: "field", Type: String}, {Name: "direction", Type: String}, {Name: "z", Type: Float64}}}

// structCols are a detect operator's columns as declared today; oldCols
// as a checkpoint taken before the explanation became a struct stored
// them.
var (
	structCols = []Column{{Name: "key", Type: String}, {Name: "score", Type: Float64}, explainCol}
	oldCols    = []Column{{Name: "key", Type: String}, {Name: "score", Type: Float64}, {Name: "explanation", Type: JSON}}
)

func explainRow(n int) Row {
	var e any = map[string]any{"field": "views", "direction": "high", "z": float64(n) + 0.5}
	if n%4 == 3 {
		e = nil // a row without an explanation stays null
	}
	return Row{Value: map[string]any{"key": "k", "score": float64(n) / 10, "explanation": e}}
}

func explainRows(from, to int) []Row {
	var out []Row
	for n := from; n < to; n++ {
		out = append(out, explainRow(n))
	}
	return out
}

// wantExplained is rows [from, to) as the results API serves them: the
// explanation an object, never its JSON text.
func wantExplained(from, to int) []map[string]any {
	var out []map[string]any
	for n := from; n < to; n++ {
		out = append(out, explainRow(n).Value.(map[string]any))
	}
	return out
}

func TestStructColumnArrowAndJSON(t *testing.T) {
	schema := ArrowSchema(structCols)
	st, ok := schema.Field(2).Type.(*arrow.StructType)
	if !ok || st.NumFields() != 3 || st.Field(2).Type.ID() != arrow.FLOAT64 {
		t.Fatalf("explanation is %v, want struct<field: utf8, direction: utf8, z: float64>", schema.Field(2).Type)
	}
	rows := explainRows(0, 5)
	rec := RecordBatch(memory.DefaultAllocator, schema, structCols, rows)
	defer rec.Release()
	if a := rec.Column(2).(*array.Struct); a.NullN() != 1 || !a.IsNull(3) {
		t.Fatalf("nulls %d (row 3 null: %t), want only row 3", a.NullN(), a.IsNull(3))
	}
	if got, want := RowsOf(rec), wantExplained(0, 5); !reflect.DeepEqual(got, want) {
		t.Fatalf("rows:\n got %v\nwant %v", got, want)
	}
	var buf bytes.Buffer
	if err := appendJSONRow(&buf, RowsOf(rec)[0], structCols); err != nil {
		t.Fatal(err)
	}
	if want := `{"key":"k","score":0,"explanation":{"direction":"high","field":"views","z":0.5}}`; buf.String() != want {
		t.Fatalf("JSON row %s, want %s", buf.String(), want)
	}
}

func TestStructColumnFitsAndValidate(t *testing.T) {
	for _, c := range []struct {
		v    any
		fits bool
	}{
		{map[string]any{"field": "views", "z": 1.5}, true},
		{nil, true},
		{map[string]any{"field": "views", "extra": 1.0}, false}, // a field the struct has not
		{map[string]any{"z": "high"}, false},
		{`{"field":"views"}`, false},
		{1.0, false},
	} {
		if got := Fits(explainCol, c.v); got != c.fits {
			t.Errorf("Fits(%v) = %t, want %t", c.v, got, c.fits)
		}
	}
	for _, c := range []struct {
		cols []Column
		want string // "" for valid
	}{
		{structCols, ""},
		{[]Column{{Name: "e", Type: Struct}}, "column e: a struct column needs fields"},
		{[]Column{{Name: "e", Type: String, Fields: explainCol.Fields}}, "column e: a string column has no fields"},
		{[]Column{{Name: "e", Type: Struct, Fields: []Column{{Name: "z", Type: "decimal"}}}}, `column e.z: unknown type "decimal"`},
	} {
		err := validateColumns(c.cols)
		if c.want == "" && err != nil || c.want != "" && (!errors.Is(err, ErrConfig) || !strings.Contains(err.Error(), c.want)) {
			t.Errorf("validate %v: %v, want %q", c.cols, err, c.want)
		}
	}
	if !ColumnsEqual(structCols, []Column{structCols[0], structCols[1], explainCol}) || ColumnsEqual(structCols, oldCols) {
		t.Fatal("ColumnsEqual does not tell struct columns apart")
	}
}

// A dashboard restored from a checkpoint that stored the explanation as
// its JSON text (before it became a struct column) restores into the
// struct column, serves objects, and stores the struct from then on.
func TestDashboardRestoresOldJSONColumnAsStruct(t *testing.T) {
	j := newDashJob(t, DashboardConfig{Columns: oldCols, MaxRows: 6})
	j.write(explainRows(0, 4))
	j.write(explainRows(4, 8)) // trims rows 0 and 1, slicing the first batch
	j.checkpoint(1, nil)
	if s := j.d.Schema(); s.Field(2).Type.ID() != arrow.STRING {
		t.Fatalf("old-style dashboard stores %v", s)
	}
	if got := j.d.JSONRows()[0]["explanation"]; reflect.TypeOf(got) != reflect.TypeFor[string]() {
		t.Fatalf("old-style explanation is %T, want its JSON text", got)
	}

	// The upgrade: the same state, the new columns.
	j.cfg.Columns = structCols
	j.crash()
	if got, want := j.d.JSONRows(), wantExplained(2, 8); !reflect.DeepEqual(got, want) {
		t.Fatalf("restored rows:\n got %v\nwant %v", got, want)
	}
	if !j.d.Schema().Equal(ArrowSchema(structCols)) {
		t.Fatalf("restored schema %v", j.d.Schema())
	}
	var ipcBuf bytes.Buffer
	if err := j.d.WriteIPC(&ipcBuf); err != nil {
		t.Fatal(err)
	}
	var js bytes.Buffer
	if err := j.d.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var served []map[string]any
	if err := json.Unmarshal(js.Bytes(), &served); err != nil {
		t.Fatal(err)
	}
	if e, ok := served[0]["explanation"].(map[string]any); !ok || e["field"] != "views" {
		t.Fatalf("served explanation %#v, want an object", served[0]["explanation"])
	}

	// New rows join the upgraded ones; a later checkpoint restores with
	// one schema throughout.
	j.write(explainRows(8, 10))
	j.checkpoint(2, nil)
	j.crash()
	if got, want := j.d.JSONRows(), wantExplained(4, 10); !reflect.DeepEqual(got, want) {
		t.Fatalf("rows after a second restore:\n got %v\nwant %v", got, want)
	}
}

// A crash after the upgrade but before the next checkpoint restores the
// old checkpoint again, which upgrades the same way.
func TestDashboardUpgradeRepeatsAfterCrash(t *testing.T) {
	j := newDashJob(t, DashboardConfig{Columns: oldCols})
	j.write(explainRows(0, 5))
	j.checkpoint(1, nil)
	j.cfg.Columns = structCols
	j.crash()
	j.write(explainRows(5, 7))
	j.crash()
	if got, want := j.d.JSONRows(), wantExplained(0, 5); !reflect.DeepEqual(got, want) {
		t.Fatalf("rows:\n got %v\nwant %v", got, want)
	}
}

// Stored text that is no JSON object cannot become a struct: the restore
// says so instead of showing nulls.
func TestDashboardUpgradeRefusesNonObjectText(t *testing.T) {
	j := newDashJob(t, DashboardConfig{Columns: oldCols})
	j.write([]Row{{Value: map[string]any{"key": "k", "score": 0.1, "explanation": "views high"}}})
	j.checkpoint(1, nil)
	j.d.Close()
	d, err := NewDashboard(DashboardConfig{Columns: structCols})
	if err != nil {
		t.Fatal(err)
	}
	err = d.OpenState(context.Background(), j.space())
	if !errors.Is(err, errDashCorrupt) || !strings.Contains(err.Error(), `row 0 column explanation: stored json value "\"views high\"" is not a JSON object`) {
		t.Fatalf("open: %v", err)
	}
	// Other changes of columns are still refused.
	d, _ = NewDashboard(DashboardConfig{Columns: []Column{{Name: "key", Type: String}}})
	if err := d.OpenState(context.Background(), j.space()); err == nil || !strings.Contains(err.Error(), "differ from the configured") {
		t.Fatalf("open with other columns: %v", err)
	}
}

// A file sink writes a struct column as a real Parquet struct and a JSON
// lines file writes it as an object.
func TestFileWritesStructColumn(t *testing.T) {
	dir := t.TempDir()
	pq := filepath.Join(dir, "out.parquet")
	s, err := NewFile(FileConfig{Path: pq, Columns: structCols})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, s, explainRows(0, 5))
	got, _, ps := readParquet(t, pq)
	if n := ps.Column(2).Path(); n != "explanation.field" {
		t.Fatalf("Parquet leaf column 2 is %s, want explanation.field (a group, not a string)", n)
	}
	if want := wantExplained(0, 5); !reflect.DeepEqual(got, want) {
		t.Fatalf("Parquet rows:\n got %v\nwant %v", got, want)
	}

	jl := filepath.Join(dir, "out.jsonl")
	s, err = NewFile(FileConfig{Path: jl, Columns: structCols})
	if err != nil {
		t.Fatal(err)
	}
	writeAll(t, s, explainRows(0, 1))
	b, err := os.ReadFile(jl)
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"key":"k","score":0,"explanation":{"direction":"high","field":"views","z":0.5}}` + "\n"; string(b) != want {
		t.Fatalf("JSON lines %s, want %s", b, want)
	}
}
