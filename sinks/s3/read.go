package s3

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/runnel-dev/runnel/sinks"
)

// ReadObject decodes an object the sink wrote, by its key's extension:
// .parquet (read with pqarrow; timestamps as epoch milliseconds, as in
// JSON rows), .jsonl or .jsonl.gz. Tests and tools read results back
// with it.
func ReadObject(key string, body []byte) ([]map[string]any, error) {
	switch {
	case strings.HasSuffix(key, ".parquet"):
		return readParquet(body)
	case strings.HasSuffix(key, ".gz"):
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if body, err = io.ReadAll(zr); err != nil {
			return nil, err
		}
	case !strings.HasSuffix(key, ".jsonl"):
		return nil, fmt.Errorf("%s: not .parquet, .jsonl or .jsonl.gz", key)
	}
	var rows []map[string]any
	dec := json.NewDecoder(bytes.NewReader(body))
	for {
		var m map[string]any
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return rows, nil
		} else if err != nil {
			return rows, err
		}
		rows = append(rows, m)
	}
}

func readParquet(body []byte) ([]map[string]any, error) {
	pf, err := file.NewParquetReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	fr, err := pqarrow.NewFileReader(pf, pqarrow.ArrowReadProperties{BatchSize: 1 << 16}, memory.DefaultAllocator)
	if err != nil {
		return nil, err
	}
	rr, err := fr.GetRecordReader(context.Background(), nil, nil)
	if err != nil {
		return nil, err
	}
	defer rr.Release()
	var rows []map[string]any
	for rr.Next() {
		rows = append(rows, sinks.RowsOf(rr.RecordBatch())...)
	}
	if err := rr.Err(); err != nil && !errors.Is(err, io.EOF) {
		return rows, err
	}
	return rows, nil
}
