package agent

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
)

// parser turns one record's text into a JSON object's fields.
type parser interface {
	// parse returns the record's fields, or an error saying why the text
	// does not fit the format.
	parse(text string, t *tracked) (map[string]any, error)
}

func newParser(f *Flow) parser {
	switch f.Format {
	case "json":
		return jsonParser{}
	case "csv":
		return csvParser{}
	case "regex":
		return regexParser{f}
	}
	return textParser{}
}

type textParser struct{}

func (textParser) parse(text string, _ *tracked) (map[string]any, error) {
	return map[string]any{"message": text}, nil
}

type jsonParser struct{}

func (jsonParser) parse(text string, _ *tracked) (map[string]any, error) {
	var m map[string]any
	if err := json.Unmarshal([]byte(text), &m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	if m == nil {
		return nil, fmt.Errorf("not a JSON object: null")
	}
	return m, nil
}

type csvParser struct{}

func (csvParser) parse(text string, t *tracked) (map[string]any, error) {
	r := csv.NewReader(strings.NewReader(text))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	row, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("not a CSV row: %v", err)
	}
	cols := t.flow.cfg.CSVColumns
	if len(cols) == 0 {
		cols = t.header
	}
	if len(row) != len(cols) {
		return nil, fmt.Errorf("CSV row has %d fields, the header %d", len(row), len(cols))
	}
	m := make(map[string]any, len(row))
	for i, v := range row {
		m[cols[i]] = v
	}
	return m, nil
}

// parseHeader reads a CSV header line.
func parseHeader(line string) ([]string, error) {
	r := csv.NewReader(strings.NewReader(line))
	return r.Read()
}

type regexParser struct{ f *Flow }

func (p regexParser) parse(text string, _ *tracked) (map[string]any, error) {
	m := p.f.pattern.FindStringSubmatch(text)
	if m == nil {
		return nil, fmt.Errorf("does not match pattern %q", p.f.Pattern)
	}
	out := map[string]any{}
	for i, n := range p.f.pattern.SubexpNames() {
		if n != "" {
			out[n] = m[i]
		}
	}
	return out, nil
}
