package web

import (
	"encoding/json"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// timeLike is any string that starts as a date and time; apiTime is the
// one shape the API may write them in (internal/apitime).
var (
	timeLike = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}`)
	apiTime  = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$`)
)

var timeJob = viewsJob("tf", "tf-in", 1, `  - id: parse
    map: "r => { if (r.bad) throw new Error('bad record'); return r }"
    on_error: {dead_letter: tf-dead}
`)

// TestEveryJSONAnswerWritesOneTimeFormat walks the JSON answer of every
// API route of a running server (with a stream, records, a job with
// checkpoints, a savepoint, a dead letter, a consumer group with a lease
// and tokens behind them) and fails on any time-like string not in
// apitime.Layout ("2026-12-06T13:40:00.123Z"). A route added later without
// a request here fails the test: every answer is looked at.
func TestEveryJSONAnswerWritesOneTimeFormat(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	admin := e.tokens["admin"].Secret
	checked := map[string]bool{}
	do := func(pattern, method, path, ctype, body string, want int) any {
		t.Helper()
		if body == "" {
			ctype = ""
		}
		resp, b := roundTrip(t, method, e.ts.URL+path, body, map[string]string{"Authorization": "Bearer " + admin, "Content-Type": ctype})
		if resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
		checked[pattern] = true
		if resp.StatusCode == http.StatusNoContent {
			return nil
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Fatalf("%s %s answers %s, not JSON", method, path, ct)
		}
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, b)
		}
		walkTimes(t, method+" "+path, "", v)
		return v
	}
	const js, yaml = "application/json", "application/yaml"

	do("GET /healthz", "GET", "/healthz", "", "", 200)
	do("GET /api/v1/session", "GET", "/api/v1/session", "", "", 200)
	do("POST /api/v1/tokens", "POST", "/api/v1/tokens", js, `{"name":"walker","role":"reader"}`, 201)
	do("GET /api/v1/tokens", "GET", "/api/v1/tokens", "", "", 200)
	do("POST /api/v1/streams", "POST", "/api/v1/streams", js, `{"name":"tf-in","shards":1}`, 201)
	do("POST /api/v1/jobs", "POST", "/api/v1/jobs", yaml, timeJob, 201)
	do("POST /api/v1/streams/{name}/records", "POST", "/api/v1/streams/tf-in/records", js,
		`{"records":[{"key":"a","json":{"page":"/","ts":1700000000000}},{"key":"b","json":{"page":"/x","ts":1700000001000,"bad":true}},{"key":"c","json":{"page":"/x","ts":1700000020000}}]}`, 200)
	testutil.Eventually(t, 30*time.Second, func() bool {
		m := do("GET /api/v1/jobs/{id}/checkpoints", "GET", "/api/v1/jobs/tf/checkpoints", "", "", 200).(map[string]any)
		cps, _ := m["checkpoints"].([]any)
		errs := do("GET /api/v1/jobs/{id}/errors", "GET", "/api/v1/jobs/tf/errors", "", "", 200).(map[string]any)
		el, _ := errs["errors"].([]any)
		return len(cps) >= 2 && len(el) >= 1
	}, "no checkpoints or no error in the history of the job")
	// Sizes come humanised beside the byte counts (the UI shows them).
	humanSize := regexp.MustCompile(`^\d+(\.\d)? (B|KiB|MiB|GiB|TiB)$`)
	cps := do("GET /api/v1/jobs/{id}/checkpoints", "GET", "/api/v1/jobs/tf/checkpoints", "", "", 200).(map[string]any)["checkpoints"].([]any)
	if c := cps[0].(map[string]any); c["size_bytes"] == nil || !humanSize.MatchString(asString(c["size"])) {
		t.Errorf("checkpoint without a humanised size beside size_bytes: %v", c)
	}
	sp := do("POST /api/v1/jobs/{id}/savepoints", "POST", "/api/v1/jobs/tf/savepoints", "", "", 201).(map[string]any)
	if !humanSize.MatchString(asString(sp["size"])) {
		t.Errorf("savepoint without a humanised size: %v", sp)
	}
	// Not a cluster job: the route answers 404 (its times are checked by
	// the cluster view's own test through apitime.Time).
	do("GET /api/v1/jobs/{id}/cluster", "GET", "/api/v1/jobs/tf/cluster", "", "", 404)
	do("GET /api/v1/savepoints", "GET", "/api/v1/savepoints", "", "", 200)
	do("GET /api/v1/jobs", "GET", "/api/v1/jobs", "", "", 200)
	do("GET /api/v1/jobs/{id}", "GET", "/api/v1/jobs/tf", "", "", 200)
	do("GET /api/v1/jobs/{id}/results", "GET", "/api/v1/jobs/tf/results?format=json", "", "", 200)
	do("GET /api/v1/jobs/{id}/output", "GET", "/api/v1/jobs/tf/output?sink=parse-dead-letters", "", "", 200)
	do("GET /api/v1/jobs/{id}/metrics/history", "GET", "/api/v1/jobs/tf/metrics/history?shards=true", "", "", 200)
	do("POST /api/v1/jobs/preview", "POST", "/api/v1/jobs/preview", yaml, timeJob, 200)
	do("GET /api/v1/streams", "GET", "/api/v1/streams", "", "", 200)
	do("GET /api/v1/streams/{name}", "GET", "/api/v1/streams/tf-in", "", "", 200)
	do("GET /api/v1/streams/{name}/records", "GET", "/api/v1/streams/tf-in/records?shard=shardId-000000000000&start=trim_horizon", "", "", 200)
	do("POST /api/v1/streams/{name}/consumer-groups", "POST", "/api/v1/streams/tf-in/consumer-groups", js, `{"name":"g1"}`, 201)
	do("POST /api/v1/streams/{name}/consumer-groups/{group}/workers/{worker}/sync", "POST", "/api/v1/streams/tf-in/consumer-groups/g1/workers/w1/sync", "", "", 200)
	do("GET /api/v1/streams/{name}/consumer-groups", "GET", "/api/v1/streams/tf-in/consumer-groups", "", "", 200)
	do("GET /api/v1/streams/{name}/consumer-groups/{group}", "GET", "/api/v1/streams/tf-in/consumer-groups/g1", "", "", 200)
	do("DELETE /api/v1/jobs/{id}", "DELETE", "/api/v1/jobs/tf?savepoint=true", "", "", 200)
	do("POST /api/v1/jobs/{id}/restart", "POST", "/api/v1/jobs/tf/restart", js, `{"savepoint":"`+sp["name"].(string)+`"}`, 200)
	do("DELETE /api/v1/jobs/{id}", "DELETE", "/api/v1/jobs/tf", "", "", 200)
	do("POST /api/v1/jobs/{id}/resume", "POST", "/api/v1/jobs/tf/resume", "", "", 200)
	do("PUT /api/v1/jobs/{id}", "PUT", "/api/v1/jobs/tf", yaml, timeJob, 200)

	// Every GET route answering JSON was read above.
	var missed []string
	for _, p := range e.srv.mux.patterns {
		if strings.HasPrefix(p, "GET /api/") && !checked[p] && p != "GET /api/v1/jobs/{id}/results/live" {
			missed = append(missed, p)
		}
	}
	sort.Strings(missed)
	if len(missed) > 0 {
		t.Errorf("JSON routes this test does not read (add them): %v", missed)
	}
}

// walkTimes fails on each time-like string in v not in apitime.Layout.
func walkTimes(t *testing.T, where, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case map[string]any:
		for k, x := range v {
			walkTimes(t, where, path+"."+k, x)
		}
	case []any:
		for _, x := range v {
			walkTimes(t, where, path+"[]", x)
		}
	case string:
		if timeLike.MatchString(v) && !apiTime.MatchString(v) {
			t.Errorf("%s: %s = %q, want a time like 2026-12-06T13:40:00.123Z", where, path, v)
		}
	}
}

func asString(v any) string { s, _ := v.(string); return s }
