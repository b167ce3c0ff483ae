package web

import (
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/web/auth"
	"github.com/runnel-dev/runnel/web/kinesis"
)

// authEnv is a real loopback server with auth on, a job "j" reading stream
// "s", and a token per role (plus one limited to other streams).
type authEnv struct {
	ts     *httptest.Server
	srv    *Server
	tokens map[string]auth.Created
	mgr    *jobs.Manager
}

const authJob = `name: j
source: {stream: s, shards: 1}
operators:
  - {id: m, map: "r => r"}
sinks:
  - {id: board, input: m, dashboard: {title: J}}
`

func newAuthEnv(t *testing.T, sec Security) *authEnv {
	t.Helper()
	dir := t.TempDir()
	st := openStore(t, dir)
	mgr := openJobs(t, st, dir)
	if _, err := mgr.Submit([]byte(authJob)); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Open(dir + "/auth")
	if err != nil {
		t.Fatal(err)
	}
	e := &authEnv{tokens: map[string]auth.Created{}, mgr: mgr}
	for _, r := range auth.Roles {
		c, err := tokens.Create(r.String(), r, nil, true)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[r.String()] = c
	}
	for _, r := range auth.Roles {
		c, err := tokens.Create("limited-"+r.String(), r, []string{"other-*"}, true)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens["limited-"+r.String()] = c
	}
	sec.Tokens = tokens
	e.srv = New(Config{Store: st, Logger: quietLog, Jobs: mgr, Security: sec, Groups: openGroups(t, st, dir),
		Kinesis: kinesis.New(st, kinesis.Options{Logger: quietLog, CreateDelay: -1})})
	e.ts = httptest.NewServer(kinesis.H2C(e.srv))
	t.Cleanup(e.ts.Close)
	return e
}

// concrete turns a route pattern into a request path and a body that
// passes the route's own validation where it can.
func concrete(pattern string) (method, path, body string) {
	method, path, ok := strings.Cut(pattern, " ")
	if !ok {
		method, path = "GET", pattern
	}
	path = strings.NewReplacer("{name}", "s", "{id}", "j", "{$}", "").Replace(path)
	switch {
	case strings.HasSuffix(path, "/"):
		path += "x"
	case pattern == "POST /api/v1/streams":
		body = `{"name":"s2","shards":1}`
	case pattern == "POST /api/v1/jobs":
		body = strings.Replace(authJob, "name: j", "name: j2", 1)
	case pattern == "POST /api/v1/jobs/preview", pattern == "PUT /api/v1/jobs/{id}":
		body = authJob
	case strings.HasSuffix(path, "/restart"):
		body = `{"checkpoint":"1"}`
	case pattern == "POST /api/v1/tokens":
		body = `{"name":"t-made","role":"reader"}`
	case pattern == "POST /api/v1/session":
		body = `{"token":"rnl_nothing"}`
	case strings.HasSuffix(path, "/records") && method == "POST":
		body = `{"records":[{"partition_key":"k","data":"x"}]}`
	case strings.HasSuffix(path, "/records"):
		path += "?shard=shardId-000000000000"
	case strings.HasSuffix(path, "/split"):
		body = `{"shard":"shardId-000000000000","new_starting_hash_key":"1"}`
	case strings.HasSuffix(path, "/merge"):
		body = `{"shard":"shardId-000000000000","adjacent_shard":"shardId-000000000001"}`
	case strings.HasSuffix(path, "/shard-count"):
		body = `{"target":1}`
	}
	if path == "/api/v1/tokens/s" {
		path = "/api/v1/tokens/nobody"
	}
	return method, path, body
}

// TestEveryRouteHasARule is the authorisation table test: every route the
// server registers has a rule, and every route answers every role (and a
// caller without credentials) as its rule says. It fails when a route is
// added without a rule.
func TestEveryRouteHasARule(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	registered := map[string]bool{}
	for _, p := range e.srv.mux.patterns {
		registered[p] = true
		if _, ok := rules[p]; !ok {
			t.Errorf("route %q has no authorisation rule: add one to rules in web/security.go", p)
		}
	}
	for p := range rules {
		if !registered[p] {
			t.Errorf("rule %q names no registered route", p)
		}
	}
	callers := []string{"", "reader", "writer", "admin", "limited-reader", "limited-writer", "limited-admin", "bad"}
	patterns := append([]string(nil), e.srv.mux.patterns...)
	sort.Strings(patterns)
	for _, pattern := range patterns {
		ru := rules[pattern]
		if ru.kinesis {
			continue // SigV4: TestKinesisSigV4 and TestKinesisRoles
		}
		method, path, body := concrete(pattern)
		for _, who := range callers {
			req, _ := http.NewRequest(method, e.ts.URL+path, strings.NewReader(body))
			if body != "" {
				req.Header.Set("Content-Type", "application/json")
				if strings.HasPrefix(body, "name:") {
					req.Header.Set("Content-Type", "application/yaml")
				}
			}
			var p *auth.Principal
			switch who {
			case "":
			case "bad":
				req.Header.Set("Authorization", "Bearer rnl_not-a-token")
			default:
				c := e.tokens[who]
				req.Header.Set("Authorization", "Bearer "+c.Secret)
				p = c.Principal()
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var want string
			switch {
			case ru.role == auth.None:
				want = "allowed"
			case who == "" || who == "bad":
				want = "401"
			case !p.Can(ru.role):
				want = "403"
			case !p.Unrestricted() && (ru.unrestricted || ru.stream != "" || ru.job != "" || ru.body != nil):
				want = "403" // limited to other-*, and every such route here names s or j
			default:
				want = "allowed"
			}
			got := "allowed"
			if resp.StatusCode == 401 || resp.StatusCode == 403 {
				got = resp.Status[:3]
			}
			if pattern == "GET /api/v1/session" && (who == "" || who == "bad") {
				want = "401" // a public route that says who is signed in
			}
			if pattern == "POST /api/v1/session" {
				want = "401" // public, but the body's token is not one
			}
			if got != want {
				t.Errorf("%s as %q: got %d (%s), want %s", pattern, who, resp.StatusCode, strings.TrimSpace(string(b)), want)
			}
		}
	}
}

// TestLimitedTokenLists checks that a token limited to streams lists only
// the streams and jobs it may use.
func TestLimitedTokenLists(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	if _, err := e.mgr.Submit([]byte(strings.NewReplacer("name: j", "name: oj", "stream: s", "stream: other-1").Replace(authJob))); err != nil {
		t.Fatal(err)
	}
	get := func(who, path string) string {
		req, _ := http.NewRequest("GET", e.ts.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+e.tokens[who].Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	if l := get("limited-reader", "/api/v1/streams"); strings.Contains(l, `"name":"s"`) || !strings.Contains(l, `"name":"other-1"`) {
		t.Errorf("limited reader's stream list: %s", l)
	}
	if l := get("limited-reader", "/api/v1/jobs"); strings.Contains(l, `"id":"j"`) || !strings.Contains(l, `"id":"oj"`) {
		t.Errorf("limited reader's job list: %s", l)
	}
	if l := get("reader", "/api/v1/jobs"); !strings.Contains(l, `"id":"j"`) || !strings.Contains(l, `"id":"oj"`) {
		t.Errorf("reader's job list: %s", l)
	}
}

// browserCall is a request of TestBrowserDefences's tables.
type browserCall struct {
	name, method, path, body string
	hdr                      map[string]string
}

// TestBrowserDefences replays what a page on another site can make a
// browser send, with auth off (the defences do not depend on it).
func TestBrowserDefences(t *testing.T) {
	e := newAuthEnv(t, Security{AllowedHosts: []string{"runnel.example"}, CORSOrigins: []string{"https://app.example"}})
	send := func(method, path, body string, hdr map[string]string) (int, string, http.Header) {
		resp, b := roundTrip(t, method, e.ts.URL+path, body, hdr)
		return resp.StatusCode, string(b), resp.Header
	}
	job := strings.Replace(authJob, "name: j", "name: evil", 1)
	for _, tc := range []struct {
		browserCall
		status int
		code   string
	}{
		{browserCall{"no-cors text/plain job submit", "POST", "/api/v1/jobs", job, map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}}, 403, "cross_site_request"},
		{browserCall{"text/plain job submit, same origin", "POST", "/api/v1/jobs", job, map[string]string{"Content-Type": "text/plain"}}, 415, "unsupported_media_type"},
		{browserCall{"form post", "POST", "/api/v1/streams", "name=x", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}}, 415, "unsupported_media_type"},
		{browserCall{"same-site page (another port)", "DELETE", "/api/v1/jobs/j", "", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:9999"}}, 403, "cross_site_request"},
		{browserCall{"foreign Origin without Sec-Fetch-Site", "DELETE", "/api/v1/streams/s", "", map[string]string{"Origin": "http://evil.example"}}, 403, "cross_site_request"},
		{browserCall{"null Origin", "DELETE", "/api/v1/streams/s", "", map[string]string{"Origin": "null"}}, 403, "cross_site_request"},
		{browserCall{"DNS rebinding read", "GET", "/api/v1/jobs", "", map[string]string{"Host": "evil.example:7070"}}, 421, "host_not_allowed"},
		{browserCall{"DNS rebinding write", "POST", "/api/v1/jobs", job, map[string]string{"Host": "evil.example", "Content-Type": "application/yaml"}}, 421, "host_not_allowed"},
		{browserCall{"preflight from an unknown origin", "OPTIONS", "/", "", map[string]string{"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}}, 403, "cross_site_request"},
	} {
		st, body, _ := send(tc.method, tc.path, tc.body, tc.hdr)
		if st != tc.status || !strings.Contains(body, `"code":"`+tc.code+`"`) {
			t.Errorf("%s: got %d %s, want %d %s", tc.name, st, body, tc.status, tc.code)
		}
	}
	if _, err := e.mgr.Get("evil"); err == nil {
		t.Fatal("a refused request created a job")
	}
	// The Kinesis API answers another media type as AWS does, running no
	// operation: a page's text/plain post creates no stream.
	st, _, hd := send("POST", "/", `{"StreamName":"evil","ShardCount":1}`, map[string]string{"Content-Type": "text/plain", "X-Amz-Target": "Kinesis_20131202.CreateStream"})
	if et := hd.Get("X-Amzn-Errortype"); st != 400 || (et != "SerializationException" && et != "UnknownOperationException") {
		t.Errorf("Kinesis with text/plain: got %d %q, want 400 and AWS's exception", st, et)
	}
	if _, err := e.srv.store.DescribeStream("evil"); err == nil {
		t.Error("a text/plain Kinesis request created a stream")
	}
	// What must keep working.
	for _, tc := range []browserCall{
		{"same-origin UI post", "POST", "/api/v1/streams", `{"name":"ui1"}`, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin", "Origin": e.ts.URL}},
		{"CLI post (no browser headers)", "POST", "/api/v1/streams", `{"name":"cli1"}`, map[string]string{"Content-Type": "application/json"}},
		{"YAML job", "POST", "/api/v1/jobs", strings.Replace(authJob, "name: j", "name: ok1", 1), map[string]string{"Content-Type": "application/yaml"}},
		{"allowed host name", "GET", "/api/v1/jobs", "", map[string]string{"Host": "runnel.example:7070"}},
		{"localhost", "GET", "/healthz", "", map[string]string{"Host": "localhost:7070"}},
		{"Kinesis JSON 1.1", "POST", "/", `{}`, map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.ListStreams"}},
		{"CORS origin posts cross-site", "POST", "/api/v1/streams", `{"name":"cors1"}`, map[string]string{"Content-Type": "application/json", "Origin": "https://app.example", "Sec-Fetch-Site": "cross-site"}},
	} {
		st, body, _ := send(tc.method, tc.path, tc.body, tc.hdr)
		if st == 403 || st == 415 || st == 421 {
			t.Errorf("%s: refused: %d %s", tc.name, st, body)
		}
	}
	// A CORS preflight from the configured origin, as the AWS SDK for
	// JavaScript sends it before a Kinesis call.
	st, _, h := send("OPTIONS", "/", "", map[string]string{"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
		"Access-Control-Request-Headers": "authorization,content-type,x-amz-date,x-amz-target,x-amz-user-agent,amz-sdk-invocation-id,amz-sdk-request,x-amz-content-sha256"})
	if st != 204 || h.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(h.Get("Access-Control-Allow-Headers"), "authorization") ||
		!strings.Contains(h.Get("Access-Control-Allow-Methods"), "POST") {
		t.Errorf("preflight: %d %v", st, h)
	}
	_, _, h = send("POST", "/", "{}", map[string]string{"Origin": "https://app.example", "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "Kinesis_20131202.ListStreams"})
	if h.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(h.Get("Access-Control-Expose-Headers"), "x-amzn-RequestId") {
		t.Errorf("CORS answer headers: %v", h)
	}
	_, _, h = send("GET", "/api/v1/jobs", "", map[string]string{"Origin": "http://evil.example"})
	if h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("an unconfigured origin got CORS headers: %v", h)
	}
}

// TestSessionCookie signs in as the web UI does and checks the cookie's
// attributes, that it stands in for the token, and that sign-out and
// revocation end it.
func TestSessionCookie(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	post := func(body string) *http.Response {
		req, _ := http.NewRequest("POST", e.ts.URL+"/api/v1/session", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := post(`{"token":"rnl_wrong"}`); resp.StatusCode != 401 {
		t.Fatalf("a wrong token signed in: %d", resp.StatusCode)
	}
	c := e.tokens["reader"]
	resp := post(`{"token":"` + c.Secret + `"}`)
	if resp.StatusCode != 200 {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	sc := resp.Header.Get("Set-Cookie")
	if !strings.Contains(sc, "HttpOnly") || !strings.Contains(sc, "SameSite=Strict") || strings.Contains(sc, c.Secret) {
		t.Fatalf("Set-Cookie %q", sc)
	}
	cookie := resp.Cookies()[0]
	get := func(method, path string) int {
		req, _ := http.NewRequest(method, e.ts.URL+path, nil)
		req.AddCookie(cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get("GET", "/api/v1/jobs"); st != 200 {
		t.Fatalf("GET with the session: %d", st)
	}
	if st := get("DELETE", "/api/v1/jobs/j"); st != 403 {
		t.Fatalf("a reader's session stopped a job: %d", st)
	}
	if st := get("DELETE", "/api/v1/session"); st != 204 {
		t.Fatalf("sign-out: %d", st)
	}
	if st := get("GET", "/api/v1/jobs"); st != 401 {
		t.Fatalf("GET after sign-out: %d", st)
	}
}
