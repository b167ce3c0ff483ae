package s3

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/runnel-dev/runnel/sinks"
)

// encode returns b's object body, its key extension and content type;
// a nil body when no row is left (all went to the error output).
func (s *Sink) encode(b *buffer) ([]byte, string, string, error) {
	switch {
	case b.errors || s.cfg.Format == FormatJSONLines:
		return b.lines.Bytes(), ".jsonl", "application/x-ndjson", nil
	case s.cfg.Format == FormatJSONGzip:
		var out bytes.Buffer
		zw := gzip.NewWriter(&out)
		zw.Write(b.lines.Bytes())
		if err := zw.Close(); err != nil {
			return nil, "", "", fmt.Errorf("gzip: %w", err)
		}
		return out.Bytes(), ".jsonl.gz", "application/gzip", nil
	}
	body, err := s.encodeParquet(b)
	return body, ".parquet", "application/vnd.apache.parquet", err
}

// encodeParquet writes b's rows as one Parquet file, with the sink's
// columns or, when the job does not know them, columns inferred from
// the rows. Rows that do not fit the columns go to the error output.
func (s *Sink) encodeParquet(b *buffer) ([]byte, error) {
	cols := s.cfg.Columns
	if len(cols) == 0 {
		cols = sinks.InferColumns(b.rows)
	}
	rows := b.rows[:0:0]
	for i, r := range b.rows {
		if code, msg := fits(cols, r.Value); code != "" {
			raw, _ := json.Marshal(r.Value)
			s.toErrors(raw, b.arrive[i], code, msg)
			continue
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	schema := sinks.ArrowSchema(cols)
	mem := memory.NewGoAllocator()
	rec := sinks.RecordBatch(mem, schema, cols, rows)
	defer rec.Release()
	var out bytes.Buffer
	w, err := pqarrow.NewFileWriter(schema, &out, parquet.NewWriterProperties(parquet.WithCompression(s.comp), parquet.WithAllocator(mem)),
		pqarrow.NewArrowWriterProperties(pqarrow.WithStoreSchema(), pqarrow.WithAllocator(mem)))
	if err != nil {
		return nil, fmt.Errorf("parquet writer: %w", err)
	}
	if err := w.Write(rec); err != nil {
		w.Close()
		return nil, fmt.Errorf("parquet: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, fmt.Errorf("parquet: %w", err)
	}
	return out.Bytes(), nil
}

// fits says why v does not fit cols ("" when it does): it must be an
// object (unless the columns are the one JSON column "value") whose
// fields are all columns, each of a value its column can hold.
func fits(cols []sinks.Column, v any) (code, msg string) {
	m, ok := v.(map[string]any)
	if !ok {
		if len(cols) == 1 && cols[0].Name == "value" {
			return "", ""
		}
		return "RowNotObject", fmt.Sprintf("the row is a %T, not an object with the Parquet columns", v)
	}
	for k, x := range m {
		i := slices.IndexFunc(cols, func(c sinks.Column) bool { return c.Name == k })
		if i < 0 {
			return "FieldNotInSchema", fmt.Sprintf("field %q is not a column of the Parquet schema", k)
		}
		if !sinks.Fits(cols[i], x) {
			return "FieldTypeMismatch", fmt.Sprintf("field %q: %T does not fit column type %s", k, x, cols[i].Type)
		}
	}
	return "", ""
}
