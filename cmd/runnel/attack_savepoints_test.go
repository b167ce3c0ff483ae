package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAttackLimitedTokenOtherJobsState: an admin token limited to logs-*
// must not reach a job over other streams through its state. The job
// "sec" counts the records of the stream "secret" by key and is stopped
// with a savepoint; its state holds what it read of "secret". The limited
// token must not see that savepoint, start its own job from it (at submit
// or restart), nor replace the stopped job by submitting one of the same
// name (which would delete its state and checkpoints). An unlimited admin
// token may do all of it.
func TestAttackLimitedTokenOtherJobsState(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	_, admin, lim, srv := startLimitedServe(t)
	call := func(tok, method, path, ct, body string) (int, string) {
		t.Helper()
		return srv.do(method, path, tok, map[string]string{"Content-Type": ct}, body)
	}
	job := func(name, src, sink string) string {
		return fmt.Sprintf("name: %s\nsource: {stream: %s}\noperators:\n  - id: per-key\n    window: {key: \"r => r.k\", tumbling: 1h, aggregate: {n: count}}\nsinks:\n  - {id: out, stream: {name: %s}}\n", name, src, sink)
	}
	if st, b := call(admin, "POST", "/api/v1/jobs", "application/yaml", job("sec", "secret", "secret-out")); st != 201 {
		t.Fatalf("submit sec: %d %s", st, b)
	}
	if st, b := call(admin, "POST", "/api/v1/streams/secret/records", "application/json", `{"records":[{"key":"a","json":{"k":"topsecret"}}]}`); st != 200 {
		t.Fatalf("put: %d %s", st, b)
	}
	st, b := call(admin, "DELETE", "/api/v1/jobs/sec?savepoint=true", "", "")
	if st != 200 {
		t.Fatalf("stop sec with a savepoint: %d %s", st, b)
	}
	var stopped struct {
		Savepoint struct {
			Name string `json:"name"`
		} `json:"savepoint"`
	}
	if err := json.Unmarshal([]byte(b), &stopped); err != nil || stopped.Savepoint.Name == "" {
		t.Fatalf("stop sec: no savepoint in %s (%v)", b, err)
	}
	sp := stopped.Savepoint.Name

	// The limited token's own job, which it may restart.
	if st, b := call(lim, "POST", "/api/v1/jobs", "application/yaml", job("mine", "logs-a", "logs-out")); st != 201 {
		t.Fatalf("limited token submits its own job: %d %s", st, b)
	}
	if st, b := call(lim, "DELETE", "/api/v1/jobs/mine", "", ""); st != 200 {
		t.Fatalf("limited token stops its own job: %d %s", st, b)
	}

	if st, b := call(lim, "GET", "/api/v1/savepoints", "", ""); st != 200 || strings.Contains(b, sp) {
		t.Errorf("limited token lists savepoints: %d %s; want 200 without %s", st, b, sp)
	}
	for _, c := range []struct{ what, method, path, ct, body, want string }{
		{"submit from the savepoint", "POST", "/api/v1/jobs?savepoint=" + sp, "application/yaml", job("mine2", "logs-a", "logs-out"), "savepoint"},
		{"restart its own job from the savepoint", "POST", "/api/v1/jobs/mine/restart", "application/json", `{"savepoint":"` + sp + `"}`, "savepoint"},
		{"replace the stopped job", "POST", "/api/v1/jobs?replace=true", "application/yaml", job("sec", "logs-a", "logs-out"), "job name"},
	} {
		st, b := call(lim, c.method, c.path, c.ct, c.body)
		if st != 403 || !strings.Contains(b, "forbidden") || !strings.Contains(b, c.want) {
			t.Errorf("limited token may %s: %d %s; want 403 forbidden naming the %s", c.what, st, b, c.want)
		}
	}
	if st, b := call(admin, "GET", "/api/v1/jobs/sec", "", ""); st != 200 || !strings.Contains(b, `"state":"stopped"`) || !strings.Contains(b, "secret-out") {
		t.Errorf("job sec after the limited token's attempts: %d %s; want it stopped, writing secret-out", st, b)
	}
	if st, b := call(admin, "GET", "/api/v1/jobs/mine2", "", ""); st != 404 {
		t.Errorf("job mine2, refused to the limited token: %d %s, want 404", st, b)
	}

	// The unlimited admin token may use the savepoint and the name.
	if st, b := call(admin, "GET", "/api/v1/savepoints", "", ""); st != 200 || !strings.Contains(b, sp) {
		t.Errorf("admin lists savepoints: %d %s; want %s in it", st, b, sp)
	}
	if st, b := call(admin, "POST", "/api/v1/jobs/mine/restart", "application/json", `{"savepoint":"`+sp+`"}`); st != 200 {
		t.Errorf("admin restarts mine from %s: %d %s", sp, st, b)
	}
	if st, b := call(admin, "POST", "/api/v1/jobs?replace=true", "application/yaml", job("sec", "logs-a", "logs-out")); st != 201 {
		t.Errorf("admin replaces sec: %d %s", st, b)
	}
}

// createToken creates a token in data with `runnel tokens create` and
// returns it.
func createToken(t *testing.T, data, name string, args ...string) string {
	t.Helper()
	out, e, code := runCLI(t, nil, append([]string{"tokens", "create", name, "--data", data}, args...)...)
	if code != 0 {
		t.Fatalf("tokens create %s %v: %d %s", name, args, code, e)
	}
	return strings.TrimSpace(strings.SplitN(out, "\n", 2)[0])
}

// startLimitedServe creates, in a new data directory, an unlimited admin
// token and an admin token limited to the streams logs-*, and starts
// runnel serve --auth on it.
func startLimitedServe(t *testing.T) (data, admin, lim string, srv *serveProc) {
	t.Helper()
	data = t.TempDir()
	admin = createToken(t, data, "boss", "--role", "admin")
	lim = createToken(t, data, "logs", "--role", "admin", "--streams", "logs-*")
	return data, admin, lim, startServe(t, data, "", "--auth")
}

// TestAttackLimitedTokenFailureStreams: every stream a job writes counts
// against a limited token's grants, the streams its operators send failed
// records to included. A function operator's on_failure stream gets a
// record whose error message the job's JavaScript chooses, so a token
// limited to logs-* could otherwise write into any stream.
func TestAttackLimitedTokenFailureStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	_, admin, lim, srv := startLimitedServe(t)
	fn := func(name, failures string) string {
		return fmt.Sprintf(`name: %s
source: {stream: logs-a}
operators:
  - id: handle
    function:
      handler: "(batch, ctx) => { throw new Error('anything at all') }"
      maximum_retry_attempts: 0
      on_failure: %s
sinks:
  - {id: out, input: handle, stream: {name: logs-out}}
`, name, failures)
	}
	deadLetter := `name: dl
source: {stream: logs-a}
operators:
  - {id: m, map: "r => { throw new Error('x') }", on_error: {dead_letter: victim}}
sinks:
  - {id: out, stream: {name: logs-out}}
`
	h := map[string]string{"Content-Type": "application/yaml"}
	for _, c := range []struct{ what, path, body string }{
		{"function on_failure", "/api/v1/jobs", fn("f", "victim")},
		{"function on_failure, preview", "/api/v1/jobs/preview", fn("f", "victim")},
		{"dead_letter", "/api/v1/jobs", deadLetter},
	} {
		st, b := srv.do("POST", c.path, lim, h, c.body)
		if st != 403 || !strings.Contains(b, `stream \"victim\"`) {
			t.Errorf("limited token, job writing %s to victim: %d %s; want 403 naming the stream", c.what, st, b)
		}
	}
	if st, b := srv.do("POST", "/api/v1/jobs", lim, h, fn("f", "logs-failed")); st != 201 {
		t.Errorf("limited token, function with on_failure logs-failed: %d %s", st, b)
	}
	if st, b := srv.do("GET", "/api/v1/streams/victim", admin, nil, ""); st != 404 {
		t.Errorf("stream victim: %d %s, want 404 (never created)", st, b)
	}
}

// TestAttackLimitedTokenConnectors: a token limited to logs-* runs jobs
// over Runnel streams only. A file source would read any file of the files
// root (other jobs' output), a Kinesis source any stream the server's own
// AWS credentials reach (or the server's own streams, through its Kinesis
// API); neither is named by the token's grants, so both are refused at
// submit, preview and deploy, and a job of an unlimited token that uses
// them is not the limited token's to see or stop.
func TestAttackLimitedTokenConnectors(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	data, admin, lim, srv := startLimitedServe(t)
	if err := os.WriteFile(filepath.Join(data, "files", "payroll.jsonl"), []byte(`{"name":"a","salary":1}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	h := map[string]string{"Content-Type": "application/yaml"}
	fileJob := "name: %s\nsource: {file: payroll.jsonl}\nsinks:\n  - {id: out, stream: {name: logs-out}}\n"
	kinesisJob := "name: %s\nsource: {kinesis: {stream: secret, endpoint: '" + srv.URL + "', region: us-east-1}}\nsinks:\n  - {id: out, stream: {name: logs-out}}\n"
	fileSink := "name: %s\nsource: {stream: logs-a}\nsinks:\n  - {id: out, file: {path: leak.jsonl}}\n"
	for _, c := range []struct{ what, job, want string }{
		{"file source", fileJob, "file source"},
		{"kinesis source", kinesisJob, "kinesis source"},
		{"file sink", fileSink, "file sink"},
	} {
		for _, r := range []struct{ method, path string }{{"POST", "/api/v1/jobs"}, {"POST", "/api/v1/jobs/preview"}} {
			st, b := srv.do(r.method, r.path, lim, h, fmt.Sprintf(c.job, "lj"))
			if st != 403 || !strings.Contains(b, c.want) {
				t.Errorf("limited token, %s %s with a %s: %d %s; want 403 naming the %s", r.method, r.path, c.what, st, b, c.want)
			}
		}
	}
	// Its own job may not be deployed over with a file source either.
	own := "name: own\nsource: {stream: logs-a}\nsinks:\n  - {id: out, stream: {name: logs-out}}\n"
	if st, b := srv.do("POST", "/api/v1/jobs", lim, h, own); st != 201 {
		t.Fatalf("limited token submits a stream job: %d %s", st, b)
	}
	if st, b := srv.do("PUT", "/api/v1/jobs/own?from=none", lim, h, fmt.Sprintf(fileJob, "own")); st != 403 || !strings.Contains(b, "file source") {
		t.Errorf("limited token deploys a file source over its job: %d %s; want 403", st, b)
	}
	// An unlimited admin's file job is not the limited token's.
	if st, b := srv.do("POST", "/api/v1/jobs", admin, h, fmt.Sprintf(fileJob, "payroll")); st != 201 {
		t.Fatalf("admin submits a file job: %d %s", st, b)
	}
	if st, b := srv.do("GET", "/api/v1/jobs", lim, nil, ""); st != 200 || strings.Contains(b, "payroll") || !strings.Contains(b, `"own"`) {
		t.Errorf("limited token lists jobs: %d %s; want own and not payroll", st, b)
	}
	if st, b := srv.do("DELETE", "/api/v1/jobs/payroll", lim, nil, ""); st != 403 {
		t.Errorf("limited token stops the admin's file job: %d %s; want 403", st, b)
	}
}
