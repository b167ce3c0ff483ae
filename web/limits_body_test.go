package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestBodyPastMaxInFlight: a body that outgrows --max-inflight while it is
// read (its declared length reserved up to the limit, or no length
// declared) gets what docs/operations.md and docs/security.md say a request
// past the limit gets, a retryable 503 unavailable with Retry-After, on
// each way a body is read: a JSON body (a record put, a stream create) and
// a job file (a submit), with a declared length and without.
func TestBodyPastMaxInFlight(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	mgr := openJobs(t, st, dir)
	const limit = 64 << 10
	ts := httptest.NewServer(NewGuard(Limits{MaxInFlight: limit}, quietLog).Wrap(New(Config{Store: st, Jobs: mgr, Logger: quietLog})))
	t.Cleanup(ts.Close)
	if resp, b := roundTrip(t, "POST", ts.URL+"/api/v1/streams", `{"name":"s","shards":1}`, map[string]string{"Content-Type": "application/json"}); resp.StatusCode != 201 {
		t.Fatalf("create stream: %d %s", resp.StatusCode, b)
	}
	big := strings.Repeat("a", 3*limit)
	for _, tc := range []struct{ name, path, ctype, body string }{
		{"record put", "/api/v1/streams/s/records", "application/json", `{"records":[{"key":"k","data":"` + big + `"}]}`},
		{"job submit", "/api/v1/jobs", "application/yaml", "name: j\nsource: {stream: s}\nsinks: [{id: out, log: {}}]\n# " + big + "\n"},
		{"stream create", "/api/v1/streams", "application/json", `{"name":"t","shards":1,"tags":{"k":"` + big + `"}}`},
	} {
		for _, chunked := range []bool{false, true} {
			req, err := http.NewRequest("POST", ts.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.ctype)
			if chunked {
				req.ContentLength = -1 // no declared length: counted as it arrives
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			var out struct{ Error apiError }
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if err != nil || resp.StatusCode != 503 || resp.Header.Get("Retry-After") == "" || out.Error.Code != "unavailable" || !strings.Contains(out.Error.Message, "--max-inflight") {
				t.Errorf("%s of %d bytes (chunked %v) past --max-inflight %d: %d Retry-After %q %+v %v; want 503 unavailable with Retry-After naming --max-inflight",
					tc.name, len(tc.body), chunked, limit, resp.StatusCode, resp.Header.Get("Retry-After"), out.Error, err)
			}
		}
	}
}
