package apitime

import (
	"encoding/json"
	"testing"
	"time"
)

func TestFormat(t *testing.T) {
	loc := time.FixedZone("X", 3600)
	for _, c := range []struct {
		in   time.Time
		want string
	}{
		{time.Date(2026, 12, 6, 14, 40, 0, 123456789, loc), "2026-12-06T13:40:00.123Z"},
		{time.Date(2026, 12, 6, 13, 40, 0, 0, time.UTC), "2026-12-06T13:40:00.000Z"},
	} {
		if got := Format(c.in); got != c.want {
			t.Errorf("Format(%v) = %q, want %q", c.in, got, c.want)
		}
		b, _ := json.Marshal(struct {
			T Time `json:"t"`
			Z Time `json:"z,omitzero"`
		}{T: Time(c.in)})
		if want := `{"t":"` + c.want + `"}`; string(b) != want {
			t.Errorf("JSON %s, want %s", b, want)
		}
		var back Time
		if err := json.Unmarshal([]byte(`"`+c.want+`"`), &back); err != nil || !time.Time(back).Equal(c.in.Truncate(time.Millisecond)) {
			t.Errorf("round trip of %s: %v %v", c.want, time.Time(back), err)
		}
	}
	if FormatMillis(1700000000001) != "2023-11-14T22:13:20.001Z" {
		t.Errorf("FormatMillis: %s", FormatMillis(1700000000001))
	}
}
