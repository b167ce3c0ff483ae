package sinks

import (
	"bytes"
	"context"
	"fmt"
	"io"
)

// Log prints each row as one line of JSON (columns in order when known,
// otherwise window_start, window_end, key first) to a writer, optionally
// prefixed: the sink of `runnel run`.
type Log struct {
	w       io.Writer
	prefix  string
	columns []Column
	buf     bytes.Buffer
}

// NewLog returns a Log sink writing to w. prefix (e.g. "board: ") starts
// each line; columns, if given, fix the field order.
func NewLog(w io.Writer, prefix string, columns []Column) *Log {
	if columns == nil {
		columns = WindowColumns()
	}
	return &Log{w: w, prefix: prefix, columns: columns}
}

// Write prints rows; one write call per batch.
func (l *Log) Write(ctx context.Context, rows []Row) error {
	l.buf.Reset()
	for _, r := range rows {
		l.buf.WriteString(l.prefix)
		if err := appendJSONRow(&l.buf, r.Value, l.columns); err != nil {
			return fmt.Errorf("log sink: %w", err)
		}
		l.buf.WriteByte('\n')
	}
	_, err := l.w.Write(l.buf.Bytes())
	return err
}

// Close does nothing: the writer belongs to the caller.
func (l *Log) Close() error { return nil }
