package jobs

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// connectorStart maps a connector source's start key onto its
// configuration's: "" or one of the positions named stays as it is; any
// other value must be an RFC 3339 time, which is the start atTimestamp
// from that time.
func connectorStart(start, atTimestamp string, named ...string) (string, time.Time, error) {
	if start == "" || slices.Contains(named, start) {
		return start, time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, start)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("start %q: use %s or an RFC 3339 time", start, strings.Join(named, ", "))
	}
	return atTimestamp, t, nil
}
