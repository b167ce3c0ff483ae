package codec

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"slices"
	"strconv"
	"unicode/utf8"
)

type csvSpec struct {
	columns []string
	numbers []bool
	comma   rune
}

func newCSV(c *CSV) (*csvSpec, error) {
	if c == nil || len(c.Columns) == 0 {
		return nil, configErr("format csv needs csv.columns")
	}
	s := &csvSpec{columns: c.Columns, numbers: make([]bool, len(c.Columns)), comma: ','}
	seen := map[string]bool{}
	for _, col := range c.Columns {
		if col == "" || seen[col] {
			return nil, configErr("csv.columns: %q is empty or repeated", col)
		}
		seen[col] = true
	}
	for _, n := range c.Numbers {
		i := slices.Index(c.Columns, n)
		if i < 0 {
			return nil, configErr("csv.numbers: %q is not one of the columns", n)
		}
		s.numbers[i] = true
	}
	if c.Delimiter != "" {
		r, size := utf8.DecodeRuneInString(c.Delimiter)
		if size != len(c.Delimiter) || r == '"' || r == '\n' || r == '\r' || r == utf8.RuneError {
			return nil, configErr("csv.delimiter %q: give one character other than a quote or newline", c.Delimiter)
		}
		s.comma = r
	}
	return s, nil
}

type csvDecoder struct{ spec *csvSpec }

// Decode reads one row (a trailing newline is allowed).
func (d *csvDecoder) Decode(data []byte) (any, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.Comma = d.spec.comma
	r.FieldsPerRecord = -1
	row, err := r.Read()
	if err == io.EOF {
		return nil, fmt.Errorf("csv: empty record")
	}
	if err != nil {
		return nil, fmt.Errorf("csv: %w", err)
	}
	if _, err := r.Read(); err != io.EOF {
		return nil, fmt.Errorf("csv: a record holds one row, this one more")
	}
	if len(row) != len(d.spec.columns) {
		return nil, fmt.Errorf("csv: %d fields, want %d (%v)", len(row), len(d.spec.columns), d.spec.columns)
	}
	out := make(map[string]any, len(row))
	for i, f := range row {
		col := d.spec.columns[i]
		switch {
		case f == "" && d.spec.numbers[i]:
			out[col] = nil
		case d.spec.numbers[i]:
			v, err := strconv.ParseFloat(f, 64)
			if err != nil {
				return nil, fmt.Errorf("csv: column %s: %q is not a number", col, f)
			}
			out[col] = v
		default:
			out[col] = f
		}
	}
	return out, nil
}
