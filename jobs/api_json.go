package jobs

import (
	"encoding/json"

	"github.com/runnel-dev/runnel/internal/apitime"
	"github.com/runnel-dev/runnel/internal/units"
)

// The API's JSON of the types below writes their times in apitime.Layout
// (time.Time alone would write nanoseconds, or none, and any zone) and,
// beside each byte count, the count humanised for people. Each method
// marshals the type's own fields, with the times shadowed by
// apitime.Time fields of the same JSON name.

// MarshalJSON writes i with its time in apitime.Layout.
func (i Info) MarshalJSON() ([]byte, error) {
	type plain Info
	return json.Marshal(struct {
		plain
		Created apitime.Time `json:"created"`
	}{plain(i), apitime.Time(i.Created)})
}

// MarshalJSON writes c with its time in apitime.Layout and its size
// humanised ("size": "1.5 MiB") beside size_bytes.
func (c CheckpointInfo) MarshalJSON() ([]byte, error) {
	type plain CheckpointInfo
	return json.Marshal(struct {
		plain
		Time  apitime.Time `json:"time"`
		Human string       `json:"size"`
	}{plain(c), apitime.Time(c.Time), units.Bytes(c.Size)})
}

// MarshalJSON writes s with its time in apitime.Layout and its size
// humanised beside size_bytes.
func (s SavepointInfo) MarshalJSON() ([]byte, error) {
	type plain SavepointInfo
	return json.Marshal(struct {
		plain
		Time  apitime.Time `json:"time"`
		Human string       `json:"size"`
	}{plain(s), apitime.Time(s.Time), units.Bytes(s.Size)})
}
