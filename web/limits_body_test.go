package web

import (
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/web/auth"
	"github.com/runnel-dev/runnel/web/kinesis"
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

// TestKinesisBodyPastMaxInFlight: on the Kinesis API a body that outgrows
// --max-inflight while it is read is ProvisionedThroughputExceededException
// (which the SDKs retry), as docs/operations.md says, whether the Kinesis
// handler reads it (auth off) or the authentication layer does first (a
// bearer token limited to streams, whose stream is read from the body).
func TestKinesisBodyPastMaxInFlight(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	tokens, err := auth.Open(dir + "/auth")
	if err != nil {
		t.Fatal(err)
	}
	limited, err := tokens.Create("limited", auth.Writer, []string{"s*"}, false)
	if err != nil {
		t.Fatal(err)
	}
	const limit = 64 << 10
	body := `{"StreamName":"s","PartitionKey":"k","Data":"` + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("a", 3*limit))) + `"}`
	for _, authOn := range []bool{false, true} {
		sec := Security{}
		hdr := map[string]string{"Authorization": "AWS4-HMAC-SHA256 Credential=x/20260101/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=00"}
		if authOn {
			sec = Security{Auth: true, Tokens: tokens}
			hdr["Authorization"] = "Bearer " + limited.Secret
		}
		srv := New(Config{Store: st, Logger: quietLog, Security: sec, Kinesis: kinesis.New(st, kinesis.Options{Logger: quietLog, CreateDelay: -1})})
		ts := httptest.NewServer(NewGuard(Limits{MaxInFlight: limit}, quietLog).Wrap(srv))
		req, err := http.NewRequest("POST", ts.URL+"/", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "Kinesis_20131202.PutRecord")
		req.Header.Set("X-Amz-Date", "20260101T000000Z")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		ts.Close()
		if resp.StatusCode != 400 || resp.Header.Get("X-Amzn-ErrorType") != "ProvisionedThroughputExceededException" || !strings.Contains(string(b), "--max-inflight") {
			t.Errorf("PutRecord of %d bytes past --max-inflight %d (auth on %v): %d %s %s; want ProvisionedThroughputExceededException naming --max-inflight",
				len(body), limit, authOn, resp.StatusCode, resp.Header.Get("X-Amzn-ErrorType"), b)
		}
	}
}
