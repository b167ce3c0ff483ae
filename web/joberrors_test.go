package web

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestJobErrorsRoute: GET /api/v1/jobs/{id}/errors answers a job's
// dead-lettered records, newest first, in the contract's shape.
func TestJobErrorsRoute(t *testing.T) {
	job := "name: dl\nsource: {stream: in}\noperators:\n  - id: parse\n    map: \"r => ({p: r.page.toUpperCase()})\"\n    on_error: {dead_letter: bad}\nsinks:\n  - {id: out, stream: {name: out}}\n"
	ts := serverWithJob(t, job)
	putJSON(t, ts.URL, "in", 10) // records 4 and 9 have no page
	var body string
	testutil.Within(20*time.Second, func() bool {
		_, body = callInto(t, "GET", ts.URL+"/api/v1/jobs/dl/errors", "", nil)
		return strings.Contains(body, `"total":2`)
	})
	for _, want := range []string{`"operator":"parse"`, `"dead_letter":{"stream":"bad"`, `"origin":{"stream":"in","shard":"shardId-000000000000","sequence":"`, `"record":{"ts":1700000009000}`} {
		if !strings.Contains(body, want) {
			t.Errorf("errors %s: missing %s", body, want)
		}
	}
	if !regexp.MustCompile(`^\{"total":2,"errors":\[\{"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"`).MatchString(body) {
		t.Errorf("errors %s: want total, then entries with UTC millisecond times", body)
	}
	if i, j := strings.Index(body, "1700000009000"), strings.Index(body, "1700000004000"); i < 0 || j < i {
		t.Errorf("errors %s: want the newest (record 9) first", body)
	}
	if _, b := callInto(t, "GET", ts.URL+"/api/v1/jobs/dl/errors?limit=1", "", nil); strings.Count(b, `"operator"`) != 1 {
		t.Errorf("limit=1: %s", b)
	}
	for path, code := range map[string]int{"/api/v1/jobs/dl/errors?limit=0": 400, "/api/v1/jobs/nope/errors": 404} {
		if got, b := callInto(t, "GET", ts.URL+path, "", nil); got != code {
			t.Errorf("GET %s: %d %s, want %d", path, got, b, code)
		}
	}
}
