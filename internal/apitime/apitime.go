// Package apitime is the one time format of Runnel's HTTP API: UTC
// ISO-8601 with milliseconds and a Z, e.g. "2026-12-06T13:40:00.123Z".
// Every time the API writes goes through Format (or the Time type, for
// struct fields), so that clients parse one shape everywhere.
package apitime

import (
	"encoding/json"
	"time"
)

// Layout is the API's time layout (always formatted in UTC).
const Layout = "2006-01-02T15:04:05.000Z"

// Format writes t in Layout, in UTC.
func Format(t time.Time) string { return t.UTC().Format(Layout) }

// FormatMillis writes a Unix time in milliseconds in Layout.
func FormatMillis(ms int64) string { return Format(time.UnixMilli(ms)) }

// Time is a time.Time that marshals to JSON in Layout. The zero Time is
// IsZero, so `omitzero` leaves it out.
type Time time.Time

// MarshalJSON writes t in Layout.
func (t Time) MarshalJSON() ([]byte, error) {
	return []byte(`"` + Format(time.Time(t)) + `"`), nil
}

// UnmarshalJSON reads any RFC 3339 time (Layout is one).
func (t *Time) UnmarshalJSON(b []byte) error {
	var tt time.Time
	if err := json.Unmarshal(b, &tt); err != nil {
		return err
	}
	*t = Time(tt)
	return nil
}

// IsZero reports whether t is the zero time.
func (t Time) IsZero() bool { return time.Time(t).IsZero() }

// Ptr is the Time of *p, nil for nil (for `omitempty` fields).
func Ptr(p *time.Time) *Time {
	if p == nil {
		return nil
	}
	t := Time(*p)
	return &t
}
