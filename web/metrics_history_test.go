package web

import (
	"strings"
	"testing"
)

// TestMetricsHistoryRoute: GET /api/v1/jobs/{id}/metrics/history answers
// the interval and the points (none before the first sample), and the
// jobs list has the rate, uptime, error and parallelism columns, and the
// streams list the records, bytes and readers columns.
func TestMetricsHistoryRoute(t *testing.T) {
	ts := serverWithJob(t, e2eJob)
	if code, b := callInto(t, "GET", ts.URL+"/api/v1/jobs/views/metrics/history?shards=true", "", nil); code != 200 || !strings.HasPrefix(b, `{"interval_ms":5000,"points":[`) {
		t.Fatalf("history: %d %s", code, b)
	}
	for path, code := range map[string]int{"/api/v1/jobs/views/metrics/history?shards=maybe": 400, "/api/v1/jobs/nope/metrics/history": 404} {
		if got, b := callInto(t, "GET", ts.URL+path, "", nil); got != code {
			t.Errorf("GET %s: %d %s, want %d", path, got, b, code)
		}
	}
	// The list is read before any record: the records below lack the
	// field the job's map reads, so they fail the job.
	_, b := callInto(t, "GET", ts.URL+"/api/v1/jobs", "", nil)
	for _, want := range []string{`"in_per_s":`, `"out_per_s":`, `"uptime_s":`, `"errors":0,"parallelism":3`} {
		if !strings.Contains(b, want) {
			t.Errorf("jobs list %s: missing %s", b, want)
		}
	}
	putJSON(t, ts.URL, "clicks", 7)
	_, b = callInto(t, "GET", ts.URL+"/api/v1/streams", "", nil)
	if !strings.Contains(b, `"records":7,"bytes":`) || !strings.Contains(b, `"readers":["views"]`) {
		t.Errorf("streams list %s: want 7 records and reader views", b)
	}
}
