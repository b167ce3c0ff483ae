package s3

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// A template is literal text and placeholders: {YYYY} {MM} {DD} {hh}
// {mm} for the row's time, {field:NAME} for a field of the row.
type template []tmplPart

type tmplPart struct {
	lit   string
	time  string // YYYY, MM, DD, hh, mm
	field string
}

var timeParts = map[string]string{"YYYY": "2006", "MM": "01", "DD": "02", "hh": "15", "mm": "04"}

func parseTemplate(s string) (template, error) {
	var t template
	for s != "" {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			t = append(t, tmplPart{lit: s})
			break
		}
		if i > 0 {
			t = append(t, tmplPart{lit: s[:i]})
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			return nil, fmt.Errorf("unclosed { at offset %d", i)
		}
		name := s[i+1 : i+j]
		switch {
		case timeParts[name] != "":
			t = append(t, tmplPart{time: name})
		case strings.HasPrefix(name, "field:") && len(name) > len("field:"):
			t = append(t, tmplPart{field: strings.TrimPrefix(name, "field:")})
		default:
			return nil, fmt.Errorf("unknown placeholder {%s}: use {YYYY} {MM} {DD} {hh} {mm} or {field:NAME}", name)
		}
		s = s[i+j+1:]
	}
	if strings.HasPrefix(t.literal(), "/") {
		return nil, errors.New("starts with a slash")
	}
	return t, nil
}

func (t template) literal() string {
	if len(t) > 0 {
		return t[0].lit
	}
	return ""
}

// errPartition is why a row has no key; its text goes in the error
// document.
type errPartition struct{ code, msg string }

func (e *errPartition) Error() string { return e.msg }

// render fills in the template for a row at time ts.
func (t template) render(m map[string]any, ts time.Time) (string, error) {
	var b strings.Builder
	for _, p := range t {
		switch {
		case p.lit != "":
			b.WriteString(p.lit)
		case p.time != "":
			b.WriteString(ts.Format(timeParts[p.time]))
		default:
			v, ok := m[p.field]
			if !ok || v == nil {
				return "", &errPartition{"PartitionKeyMissing", fmt.Sprintf("field %q of the key template is missing or null", p.field)}
			}
			b.WriteString(keySegment(v))
		}
	}
	return b.String(), nil
}

// keySegment is v as one path segment: escaped so that it adds no
// slash, and never "." or "..".
func keySegment(v any) string {
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case float64:
		s = strconv.FormatFloat(x, 'f', -1, 64)
	default:
		b, _ := json.Marshal(x)
		s = string(b)
	}
	s = url.PathEscape(s)
	if s == "" || s == "." || s == ".." {
		s = strings.Repeat("%2E", len(s)) + "_"
	}
	return s
}

// rowTime is the time a row's key is made from.
func (s *Sink) rowTime(m map[string]any, arrival time.Time) (time.Time, error) {
	if s.cfg.Time == TimeArrival {
		return arrival.In(s.loc), nil
	}
	switch v := m[s.cfg.TimeField].(type) {
	case float64:
		return time.UnixMilli(int64(v)).In(s.loc), nil
	case int64:
		return time.UnixMilli(v).In(s.loc), nil
	case json.Number:
		if n, err := v.Int64(); err == nil {
			return time.UnixMilli(n).In(s.loc), nil
		}
	case string:
		if ts, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return ts.In(s.loc), nil
		}
	case nil:
		return time.Time{}, &errPartition{"EventTimeMissing", fmt.Sprintf("time field %q is missing or null", s.cfg.TimeField)}
	}
	return time.Time{}, &errPartition{"EventTimeInvalid", fmt.Sprintf("time field %q is neither epoch milliseconds nor an RFC 3339 time", s.cfg.TimeField)}
}
