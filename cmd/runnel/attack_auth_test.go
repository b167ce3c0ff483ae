package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Attacks on authentication and the browser defences, against the real
// binary on loopback.

// serveProc is a runnel serve process started with extra flags.
type serveProc struct {
	*testbin.Server
	t *testing.T
}

func startServe(t *testing.T, data, addr string, extra ...string) *serveProc {
	t.Helper()
	return &serveProc{testbin.Start(t, testbin.Options{Data: data, Addr: addr, LogLevel: "info", Flags: extra}), t}
}

// do sends a request with the headers hdr and, when not "", the bearer
// token, and returns the status and body.
func (p *serveProc) do(method, path, token string, hdr map[string]string, body string) (int, string) {
	p.t.Helper()
	req := p.Request(method, path, "", strings.NewReader(body))
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	st, _, b := p.Send(req)
	return st, string(b)
}

// pwnJob is what an attacker's page submits: a job whose file sink writes
// where the attacker says.
func pwnJob(name, path string) string {
	return fmt.Sprintf(`name: %s
source: {generator: {rate: 10}}
sinks:
  - {id: out, file: {path: %q}}
`, name, path)
}

// TestAttackCrossOriginJobSubmit replays a page on another site posting a
// job file with fetch(..., {mode: 'no-cors', headers: {'Content-Type':
// 'text/plain'}}): the browser sends it without a preflight, with Origin
// and Sec-Fetch-Site saying where it came from. No job may be created and
// nothing written, with auth off (the default on loopback).
func TestAttackCrossOriginJobSubmit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	dir := t.TempDir()
	p := startServe(t, filepath.Join(dir, "data"), freeAddr(t))
	target := filepath.Join(dir, "pwned.jsonl")
	for _, tc := range []struct {
		name string
		hdr  map[string]string
	}{
		{"modern browser", map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}},
		{"browser without Sec-Fetch", map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://evil.example"}},
		{"page on another loopback port", map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"}},
		{"form post", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}},
	} {
		st, body := p.do("POST", "/api/v1/jobs", "", tc.hdr, pwnJob("pwn", target))
		if st == http.StatusCreated || (st != 403 && st != 415) {
			t.Errorf("%s: POST /api/v1/jobs answered %d %s; want 403 or 415", tc.name, st, body)
		}
	}
	if st, _ := p.do("GET", "/api/v1/jobs/pwn", "", nil, ""); st != 404 {
		t.Fatalf("the cross-site submission created job pwn (GET answered %d)", st)
	}
	if _, err := os.Stat(target); err == nil {
		t.Fatal("the cross-site submission wrote the attacker's file")
	}
	// A DNS-rebound page (Host: the attacker's name) cannot read either.
	req, _ := http.NewRequest("GET", p.URL+"/api/v1/jobs", nil)
	req.Host = "rebind.evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMisdirectedRequest {
		t.Fatalf("a rebound Host read the jobs list: %d", resp.StatusCode)
	}
	// The CLI, which sends the right content type, still submits.
	job := filepath.Join(dir, "ok.yaml")
	os.WriteFile(job, []byte("name: ok\nsource: {generator: {rate: 10}}\nsinks:\n  - {id: board, dashboard: {title: ok}}\n"), 0o644)
	out, err := exec.Command(runnelBinary(t), "jobs", "submit", job, "--server", p.URL).CombinedOutput()
	if err != nil {
		t.Fatalf("runnel jobs submit: %v\n%s", err, out)
	}
}

// runCLI runs the binary and returns stdout, stderr and the exit code.
func runCLI(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	return testbin.Run(t, "", env, args...)
}

// TestAuthTokensCLI drives tokens end to end: created offline on the data
// directory of a running --auth server, used by the CLI, roles enforced,
// revoked offline and refused.
func TestAuthTokensCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	data := t.TempDir()
	p := startServe(t, data, freeAddr(t), "--auth")
	if !strings.Contains(p.Logs(), "no tokens yet") {
		t.Errorf("no warning about an empty token store:\n%s", p.Logs())
	}
	out, e, code := runCLI(t, nil, "tokens", "create", "boss", "--role", "admin", "--data", data)
	if code != 0 {
		t.Fatalf("tokens create: %d %s", code, e)
	}
	admin := strings.Split(out, "\n")[0]
	if !strings.HasPrefix(admin, "rnl_") || strings.Count(strings.TrimSpace(out), "\n") != 0 {
		t.Fatalf("tokens create printed %q; want the token alone", out)
	}
	b, _ := os.ReadFile(filepath.Join(data, "auth", "tokens.json"))
	if strings.Contains(string(b), admin) {
		t.Fatal("tokens.json holds the token itself")
	}
	env := []string{"RUNNEL_SERVER=" + p.URL}
	// Without a token: 401, and the CLI says what to do.
	if _, e, code := runCLI(t, env, "streams", "list"); code == 0 || !strings.Contains(e, "RUNNEL_TOKEN") {
		t.Fatalf("streams list without a token: %d %q", code, e)
	}
	if st, body := p.do("GET", "/api/v1/streams", "", nil, ""); st != 401 || !strings.Contains(body, `"unauthenticated"`) {
		t.Fatalf("GET without a token: %d %s", st, body)
	}
	// The server notices the offline token (within a second).
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, _ := p.do("GET", "/api/v1/streams", admin, nil, "")
		return st == 200
	}, "the server never accepted a token created with --data")
	// A reader made through the API with the admin token, with AWS keys.
	out, e, code = runCLI(t, append(env, "RUNNEL_TOKEN="+admin), "tokens", "create", "viewer", "--role", "reader", "--aws")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[1], "aws_access_key_id = AKRN") || !strings.HasPrefix(lines[2], "aws_secret_access_key = ") {
		t.Fatalf("tokens create --aws via the server: %d %q %s", code, out, e)
	}
	reader := lines[0]
	if _, e, code := runCLI(t, env, "streams", "create", "s1", "--token", admin); code != 0 {
		t.Fatalf("admin creates a stream: %s", e)
	}
	// runnel put speaks the Kinesis API; it sends its token there too.
	put := func(tok string) (string, error) {
		cmd := exec.Command(runnelBinary(t), "put", "s1", "--server", p.URL, "--token", tok)
		cmd.Stdin = strings.NewReader("{\"a\":1}\n{\"a\":2}\n")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := put(admin); err != nil || !strings.Contains(out, "put 2 records") {
		t.Fatalf("admin puts with --token: %v %q", err, out)
	}
	if out, err := put(reader); err == nil {
		t.Fatalf("reader puts: succeeded: %q", out)
	}
	if _, e, code := runCLI(t, append(env, "RUNNEL_TOKEN="+reader), "streams", "create", "s2"); code == 0 || !strings.Contains(e, "writer role") {
		t.Fatalf("reader creates a stream: %d %q", code, e)
	}
	if st, body := p.do("DELETE", "/api/v1/streams/s1", reader, nil, ""); st != 403 || !strings.Contains(body, `"forbidden"`) {
		t.Fatalf("reader deletes: %d %s", st, body)
	}
	if out, _, code := runCLI(t, env, "tokens", "list", "--data", data); code != 0 || !strings.Contains(out, "viewer") || strings.Contains(out, reader) {
		t.Fatalf("tokens list: %q", out)
	}
	if _, e, code := runCLI(t, nil, "tokens", "revoke", "viewer", "--data", data); code != 0 {
		t.Fatalf("revoke: %s", e)
	}
	testutil.Eventually(t, 10*time.Second, func() bool {
		st, _ := p.do("GET", "/api/v1/streams", reader, nil, "")
		return st == 401
	}, "the server still accepts a token revoked with --data")
	var tl struct{ Tokens []map[string]any }
	_, body := p.do("GET", "/api/v1/tokens", admin, nil, "")
	if json.Unmarshal([]byte(body), &tl); len(tl.Tokens) != 1 {
		t.Fatalf("tokens after revoke: %s", body)
	}
}

// TestServeBeyondLoopback: on a non-loopback address auth is on unless
// --insecure-no-auth says otherwise, and then an ERROR says why that is
// dangerous.
func TestServeBeyondLoopback(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	port := strings.Split(freeAddr(t), ":")[1]
	p := startServe(t, t.TempDir(), "0.0.0.0:"+port)
	if st, _ := p.do("GET", "/api/v1/streams", "", nil, ""); st != 401 {
		t.Fatalf("non-loopback without flags: GET answered %d, want 401", st)
	}
	p.Kill()
	port = strings.Split(freeAddr(t), ":")[1]
	p = startServe(t, t.TempDir(), "0.0.0.0:"+port, "--insecure-no-auth")
	if st, _ := p.do("GET", "/api/v1/streams", "", nil, ""); st != 200 {
		t.Fatalf("--insecure-no-auth: GET answered %d", st)
	}
	if l := p.Logs(); !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "WITHOUT authentication") {
		t.Fatalf("no ERROR about serving without auth:\n%s", l)
	}
}
