package web

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/web/auth"
)

// FuzzAPIRoutes sends every REST route of the server's route table
// arbitrary bodies, content types, query strings and path values, against
// a server with state to act on: a stream "s" with records, a running job
// "run", a stopped job "stopped", a consumer group "g" whose worker "w"
// holds leases, and a token "t1". Whatever a request does to that state
// (deletes it, adds streams, jobs, groups or tokens), it is put back
// before the next, so each input meets the same server. The high bit of
// pick sends the request to a second server over the same parts, with
// auth on and behind a Guard (the front ListenAndServeGuarded puts up), as
// an admin whose token is limited to streams s*: its authorisation reads
// the bodies of the routes that name streams (rule.body) before their
// handlers do.
//
// The house rule it checks: bad input gets a 4xx, never a 5xx (but 503
// unavailable, which a limit may answer) and never a panic; an answer
// that is not 2xx is JSON with an error code of errors.go's table and
// that code's status.
//
// The routes come from the server's own route table (routeMux.patterns),
// so a new route is fuzzed without editing this test. Left out, by
// fuzzSkip: the routes outside /api/ (the UI's files and /metrics read
// neither body nor query and answer HTML or text; POST / is the Kinesis
// API, fuzzed with its own error shapes by web/kinesis's FuzzRequestBody)
// and the live results, a stream of events that does not end.
func FuzzAPIRoutes(f *testing.F) {
	e := newFuzzEnv(f)
	routes := e.routes()
	if len(routes) < 30 {
		f.Fatalf("fuzzing %d routes; the route table has lost some", len(routes))
	}
	for i, r := range routes {
		for _, s := range fuzzSeeds(r) {
			for _, pick := range []uint8{0, 1, 0x80} {
				f.Add(uint8(i), pick, s.ctype, s.query, s.body)
			}
		}
	}
	f.Fuzz(func(t *testing.T, route, pick uint8, ctype, query, body string) {
		pattern := routes[int(route)%len(routes)]
		method, path := fuzzPath(pattern, pick, query)
		query = shortWait(query)
		base, token := e.ts.URL, ""
		if pick&0x80 != 0 {
			base, token = e.authTS.URL, e.adminSecret
		}
		target := base + path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequest(method, target, strings.NewReader(body))
		if err != nil || !validHeaderValue(ctype) || !validRequestTarget(query) {
			return // the client cannot send it, or not as one request
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		e.restore(t)
		what := method + " " + target + " (" + pattern + ", after " + e.last + ")"
		e.last = method + " " + path
		checkAnswer(t, what, ctype, body, resp, b)
	})
}

// checkAnswer fails t unless resp is a 2xx or a JSON error of the table
// whose status is its code's.
func checkAnswer(t *testing.T, what, ctype, body string, resp *http.Response, b []byte) {
	t.Helper()
	if resp.StatusCode < 300 {
		if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && !json.Valid(b) {
			t.Fatalf("%s with %s body %q: %d answer is not JSON: %q", what, ctype, body, resp.StatusCode, b)
		}
		return
	}
	var out struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(b, &out); err != nil || out.Error == nil {
		t.Fatalf("%s with %s body %q: %d answer is not a JSON error: %q", what, ctype, body, resp.StatusCode, b)
	}
	st, ok := errorStatus[out.Error.Code]
	if !ok || st != resp.StatusCode {
		t.Fatalf("%s with %s body %q: %d with code %q, not a code of the table with that status: %s", what, ctype, body, resp.StatusCode, out.Error.Code, b)
	}
	if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("%s with %s body %q: %d: %s", what, ctype, body, resp.StatusCode, b)
	}
}

// validHeaderValue says whether the client can send v as a header value.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
			return false
		}
	}
	return true
}

// validRequestTarget says whether query can go raw into a request line: a
// space or control byte would break the line, and Go's HTTP server (not
// the API) answers that with a bare 400.
func validRequestTarget(query string) bool {
	for i := 0; i < len(query); i++ {
		if c := query[i]; c <= ' ' || c == 0x7f {
			return false
		}
	}
	return true
}

// fuzzSkip says why a route is not fuzzed ("" when it is).
func fuzzSkip(pattern string) string {
	switch {
	case pattern == "GET /api/v1/jobs/{id}/results/live":
		return "a stream of events (SSE) that does not end"
	case !strings.Contains(pattern, " /api/v1/"):
		return "outside the REST API"
	}
	return ""
}

// The fixture's names.
const (
	fzStream  = "s"
	fzRunning = "run"
	fzStopped = "stopped"
	fzGroup   = "g"
	fzWorker  = "w"
	fzToken   = "t1"
	fzAdmin   = "fuzz-admin" // the auth-on server's caller
)

// fuzzPathValues are the values a path parameter takes: the fixture's
// names first, then names of nothing.
var fuzzPathValues = map[string][]string{
	"name":   {fzStream, "nope", fzToken},
	"id":     {fzRunning, fzStopped, "nope"},
	"group":  {fzGroup, "nope"},
	"worker": {fzWorker, "w2"},
	"shard":  {"shardId-000000000000", "shardId-000000000001", "shardId-999999999999"},
}

// fuzzPath makes pattern a request path: pick chooses each parameter's
// value from fuzzPathValues, or (past their number) takes it from the
// query, path-escaped.
func fuzzPath(pattern string, pick uint8, query string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	for i := 0; ; i++ {
		open := strings.IndexByte(path, '{')
		if open < 0 {
			break
		}
		end := strings.IndexByte(path[open:], '}') + open
		param := path[open+1 : end]
		vals := fuzzPathValues[param]
		v := "x"
		if k := (int(pick) >> i) % (len(vals) + 1); k < len(vals) {
			v = vals[k]
		} else if query != "" {
			v = url.PathEscape(query)
		}
		path = path[:open] + v + path[end+1:]
	}
	return method, path
}

// shortWait caps the durations of query's wait at 10ms: a long poll
// (GET .../records and .../output wait up to a minute for data) is slow
// by design, and would only slow the fuzzer down.
func shortWait(query string) string {
	q, _ := url.ParseQuery(query)
	long := false
	for i, v := range q["wait"] {
		if d, err := time.ParseDuration(v); err == nil && d > 10*time.Millisecond {
			q["wait"][i], long = "10ms", true
		}
	}
	if !long {
		return query
	}
	return q.Encode()
}

type fuzzSeed struct{ ctype, query, body string }

// fuzzSeeds are valid requests of a route and near misses.
func fuzzSeeds(pattern string) []fuzzSeed {
	const js, yaml = "application/json", "application/yaml"
	seeds := []fuzzSeed{{"", "", ""}, {js, "", "{"}, {js, "", "[]"}, {js, "", "null"}, {js, "", `{"x":1}`},
		{"text/plain", "", "hello"}, {"application/json; charset=utf-8", "", "{}"}, {js, "a=%zz", "{}"}}
	add := func(ctype, query string, bodies ...string) {
		for _, b := range bodies {
			seeds = append(seeds, fuzzSeed{ctype, query, b})
		}
	}
	_, path, _ := strings.Cut(pattern, " ")
	switch {
	case pattern == "POST /api/v1/streams":
		add(js, "", `{"name":"s2","shards":1}`, `{"name":"s2","shards":0}`, `{"name":"","shards":1}`, `{"name":"s2","shards":1e9}`,
			`{"name":"s2","shards":1,"retention_hours":-1}`)
	case strings.HasSuffix(path, "/records") && strings.HasPrefix(pattern, "POST"):
		add(js, "", `{"records":[{"key":"k","data":"x"}]}`, `{"records":[{"key":"k","json":[1,2]}]}`,
			`{"records":[{"key":"k","data_base64":"AA=="}]}`, `{"records":[{"key":"k","data_base64":"A"}]}`, `{"records":[]}`,
			`{"records":[{"key":"","data":"x"}]}`, `{"records":[{"partition_key":"k","explicit_hash_key":"-1","data":"x"}]}`)
	case strings.HasSuffix(path, "/records"):
		for _, q := range []string{"shard=shardId-000000000000", "shard=shardId-000000000000&from=trim_horizon&limit=5",
			"shard=shardId-000000000000&after=0", "shard=shardId-000000000000&at=-1", "shard=shardId-000000000000&from=latest",
			"shard=shardId-000000000000&timestamp=2026-01-01T00:00:00Z", "shard=shardId-000000000000&limit=-1", "shard=",
			"shard=shardId-000000000000&from=latest&wait=5s", "shard=shardId-000000000000&wait=2m"} {
			add("", q, "")
		}
	case strings.HasSuffix(path, "/split"):
		add(js, "", `{"shard":"shardId-000000000000"}`, `{"shard":"shardId-000000000000","new_starting_hash_key":"1"}`,
			`{"shard":"shardId-000000000000","new_starting_hash_key":"0"}`, `{"shard":"shardId-000000000000","new_starting_hash_key":"340282366920938463463374607431768211456"}`)
	case strings.HasSuffix(path, "/merge"):
		add(js, "", `{"shard":"shardId-000000000000","adjacent_shard":"shardId-000000000001"}`, `{"shard":"shardId-000000000000","adjacent_shard":"shardId-000000000000"}`)
	case strings.HasSuffix(path, "/shard-count"):
		add(js, "", `{"target":2}`, `{"target":0}`, `{"target":-3}`, `{"target":100000}`)
	case pattern == "POST /api/v1/jobs", pattern == "POST /api/v1/jobs/preview", pattern == "PUT /api/v1/jobs/{id}":
		add(yaml, "", fuzzJob("j2", "s2"), fuzzJob("j2", fzStream), fuzzJob(fzRunning, fzStream), "name: j2\n", "name: [\n",
			strings.Replace(fuzzJob("j2", "s2"), "r => r", "r => r.x.y", 1), strings.Replace(fuzzJob("j2", "s2"), "map:", "filter:", 1))
		add(js, "", `{"name":"j2","source":{"stream":"s","shards":1},"sinks":[{"id":"b","dashboard":{}}]}`)
		add(yaml, "records=3", fuzzJob("j2", fzStream))
		add(yaml, "records=0", fuzzJob("j2", fzStream))
		add(yaml, "from=none", fuzzJob(fzRunning, fzStream))
		add(yaml, "from=later", fuzzJob(fzRunning, fzStream))
	case strings.HasSuffix(path, "/restart"):
		add(js, "", `{"checkpoint":"1"}`, `{"checkpoint":1}`, `{"checkpoint":-1}`, `{"checkpoint":{}}`, `{"savepoint":"x"}`,
			`{"checkpoint":"1","savepoint":"x"}`, `{"savepoint":"../../etc"}`)
	case strings.HasPrefix(pattern, "DELETE /api/v1/jobs/"):
		for _, q := range []string{"purge=true", "purge=maybe", "savepoint=true", "savepoint=2"} {
			add("", q, "")
		}
	case strings.HasSuffix(path, "/output"):
		for _, q := range []string{"after=0&limit=5", "after=-1", "limit=0", "sink=board", "sink=nope", "after=2&wait=1s", "wait=-1s"} {
			add("", q, "")
		}
	case strings.HasSuffix(path, "/metrics/history"):
		add("", "shards=true", "")
		add("", "shards=x", "")
	case strings.HasSuffix(path, "/errors"):
		add("", "limit=5", "")
		add("", "limit=-5", "")
	case pattern == "POST /api/v1/tokens":
		add(js, "", `{"name":"t2","role":"reader"}`, `{"name":"t2","role":"writer","streams":["s*"]}`, `{"name":"t2","role":"god"}`,
			`{"name":"","role":"reader"}`, `{"name":"t2","role":"admin","aws":true}`)
	case pattern == "POST /api/v1/session":
		add(js, "", `{"token":"rnl_nothing"}`, `{"token":""}`)
	case pattern == "POST /api/v1/streams/{name}/consumer-groups":
		add(js, "", `{"name":"g2"}`, `{"name":"g2","lease_duration_ms":200,"start":"latest"}`, `{"name":"g2","lease_duration_ms":-1}`,
			`{"name":"a b"}`, `{"name":"g2","start":"at_timestamp"}`)
	case strings.HasSuffix(path, "/checkpoint"), strings.HasSuffix(path, "/release"):
		add(js, "", `{"worker":"w","epoch":1,"sequence_number":"49","sub_sequence_number":2}`, `{"worker":"w","epoch":1}`,
			`{"worker":"w","sequence_number":"9"}`, `{"worker":"w","epoch":1,"sequence_number":"x9"}`, `{"epoch":1,"sequence_number":"9"}`,
			`{"worker":"w","epoch":18446744073709551615,"sequence_number":"99999999999999999999999999"}`)
	}
	return seeds
}

// fuzzJob is a small job file: name reads stream and keeps a dashboard.
func fuzzJob(name, stream string) string {
	return "name: " + name + "\nsource: {stream: " + stream + ", shards: 2}\noperators:\n  - {id: m, map: \"r => r\"}\n" +
		"sinks:\n  - {id: board, input: m, dashboard: {title: J}}\ncheckpoint: {every: 1s}\n"
}

// fuzzEnv is the fuzzed server and the parts whose state it restores.
type fuzzEnv struct {
	srv *Server
	ts  *httptest.Server
	// authTS serves the same parts with auth on, behind a Guard;
	// adminSecret is the token of fzAdmin, an admin limited to s*.
	authTS      *httptest.Server
	adminSecret string
	st          *streams.Store
	mgr         *jobs.Manager
	groups      *consumergroups.Manager
	tokens      *auth.Store
	// last is the previous request, which a failure names: its effects
	// may outlive restore.
	last string
}

func newFuzzEnv(t testing.TB) *fuzzEnv {
	t.Helper()
	dir := t.TempDir()
	e := &fuzzEnv{st: openStore(t, dir)}
	e.mgr = openJobs(t, e.st, dir)
	e.groups = openGroups(t, e.st, dir)
	tokens, err := auth.Open(dir + "/auth")
	if err != nil {
		t.Fatal(err)
	}
	e.tokens = tokens
	e.srv = New(Config{Store: e.st, Logger: quietLog, Jobs: e.mgr, Groups: e.groups, Security: Security{Tokens: tokens}})
	e.ts = httptest.NewServer(e.srv)
	t.Cleanup(e.ts.Close)
	authed := New(Config{Store: e.st, Logger: quietLog, Jobs: e.mgr, Groups: e.groups, Security: Security{Auth: true, Tokens: tokens}})
	e.authTS = httptest.NewServer(NewGuard(Limits{}, quietLog).Wrap(authed))
	t.Cleanup(e.authTS.Close)
	e.restore(t)
	if _, err := e.st.Put(t.Context(), fzStream, []streams.PutRecord{{PartitionKey: "a", Data: []byte(`{"x":1}`)},
		{PartitionKey: "b", Data: []byte(`{"x":2}`)}}); err != nil {
		t.Fatal(err)
	}
	return e
}

// routes are the patterns of the server's route table that are fuzzed,
// sorted.
func (e *fuzzEnv) routes() []string {
	var out []string
	for _, p := range e.srv.mux.patterns {
		if fuzzSkip(p) == "" {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// restore puts the fixture back: what a request deleted is made again,
// what it added is deleted, and the two jobs are in their states.
func (e *fuzzEnv) restore(t testing.TB) {
	t.Helper()
	for _, in := range e.mgr.List() {
		if in.ID == fzRunning || in.ID == fzStopped {
			continue
		}
		e.mgr.Stop(in.ID)
		if err := e.mgr.Delete(in.ID); err != nil {
			t.Fatalf("restore: delete job %s: %v", in.ID, err)
		}
	}
	for _, g := range e.groups.Groups() {
		if g.Stream != fzStream || g.Name != fzGroup {
			if err := e.groups.Delete(g.Stream, g.Name); err != nil {
				t.Fatalf("restore: delete group %s/%s: %v", g.Stream, g.Name, err)
			}
		}
	}
	for _, s := range e.st.ListStreams() {
		if s.Name != fzStream {
			if err := e.st.DeleteStream(s.Name); err != nil {
				t.Fatalf("restore: delete stream %s: %v", s.Name, err)
			}
		}
	}
	for _, tk := range e.tokens.List() {
		if tk.Name != fzToken && tk.Name != fzAdmin {
			if err := e.tokens.Revoke(tk.Name); err != nil {
				t.Fatalf("restore: revoke token %s: %v", tk.Name, err)
			}
		}
	}
	if !slices.ContainsFunc(e.tokens.List(), func(tk auth.Token) bool { return tk.Name == fzToken }) {
		if _, err := e.tokens.Create(fzToken, auth.Reader, nil, false); err != nil {
			t.Fatalf("restore: token: %v", err)
		}
	}
	if !slices.ContainsFunc(e.tokens.List(), func(tk auth.Token) bool { return tk.Name == fzAdmin }) {
		c, err := e.tokens.Create(fzAdmin, auth.Admin, []string{"s*"}, false)
		if err != nil {
			t.Fatalf("restore: token: %v", err)
		}
		e.adminSecret = c.Secret
	}
	if _, err := e.st.DescribeStream(fzStream); err != nil {
		if _, err := e.st.CreateStream(fzStream, 2, streams.CreateOptions{}); err != nil {
			t.Fatalf("restore: stream: %v", err)
		}
	}
	e.restoreJob(t, fzRunning, "running")
	e.restoreJob(t, fzStopped, "stopped")
	if _, err := e.groups.Describe(fzStream, fzGroup); err != nil {
		if _, err := e.groups.Create(consumergroups.Config{Stream: fzStream, Name: fzGroup}); err != nil {
			t.Fatalf("restore: group: %v", err)
		}
		if _, err := e.groups.Sync(fzStream, fzGroup, fzWorker); err != nil {
			t.Fatalf("restore: sync: %v", err)
		}
	}
}

// restoreJob makes job id (the fixture's job file) in state.
func (e *fuzzEnv) restoreJob(t testing.TB, id, state string) {
	t.Helper()
	in, err := e.mgr.Get(id)
	if err != nil {
		if _, err := e.mgr.Submit([]byte(fuzzJob(id, fzStream))); err != nil {
			t.Fatalf("restore: submit %s: %v", id, err)
		}
		in, _ = e.mgr.Get(id)
	}
	switch {
	case in.State == state:
	case state == "running":
		e.mgr.Stop(id)
		if _, err := e.mgr.Resume(id); err != nil {
			t.Fatalf("restore: resume %s (was %s): %v", id, in.State, err)
		}
	default:
		if err := e.mgr.Stop(id); err != nil {
			t.Fatalf("restore: stop %s (was %s): %v", id, in.State, err)
		}
	}
}

// TestFuzzRoutesCoverTheTable: the fuzzer sends every route of the table
// but the ones fuzzSkip names, and those are few.
func TestFuzzRoutesCoverTheTable(t *testing.T) {
	e := newFuzzEnv(t)
	var skipped []string
	for _, p := range e.srv.mux.patterns {
		if why := fuzzSkip(p); why != "" {
			skipped = append(skipped, p)
			t.Logf("not fuzzed: %s: %s", p, why)
		}
	}
	if n := len(e.routes()); n+len(skipped) != len(e.srv.mux.patterns) || len(skipped) > 9 {
		t.Fatalf("fuzzing %d routes and skipping %d of %d", n, len(skipped), len(e.srv.mux.patterns))
	}
}

// TestDeployJobFailingOnARecord: a job is deployed again (from a savepoint)
// just as a record it cannot read makes it fail. The answer is the new
// job, or 409 not_running when the failure came first or under the
// savepoint; it was 500 when the job failed under the savepoint.
func TestDeployJobFailingOnARecord(t *testing.T) {
	e := newFuzzEnv(t)
	for i := range 20 {
		if _, err := e.st.Put(t.Context(), fzStream, []streams.PutRecord{{PartitionKey: "k", Data: []byte("not JSON")}}); err != nil {
			t.Fatal(err)
		}
		code, b := callInto(t, "PUT", e.ts.URL+"/api/v1/jobs/"+fzRunning, fuzzJob(fzRunning, fzStream), nil)
		if code != 200 && !(code == 409 && strings.Contains(b, `"not_running"`)) {
			t.Fatalf("deploy %d: %d %s", i, code, b)
		}
		// The stream starts again without the record.
		e.mgr.Stop(fzRunning)
		if err := e.mgr.Delete(fzRunning); err != nil {
			t.Fatal(err)
		}
		if err := e.st.DeleteStream(fzStream); err != nil {
			t.Fatal(err)
		}
		e.restore(t)
	}
}
