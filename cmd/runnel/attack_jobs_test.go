package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Attacks on what a submitted job can touch, against the real binary: file
// sources and sinks outside the files root, the server's own data, files
// that were there before the job, and JavaScript that builds huge values
// or fans out without bound.

// attackServer is a runnel serve process with extra flags.
type attackServer struct {
	*testbin.Server
	t *testing.T
}

func startAttackServer(t *testing.T, data string, extra ...string) *attackServer {
	t.Helper()
	return &attackServer{testbin.Start(t, testbin.Options{Data: data, Flags: extra}), t}
}

// peakRSS is the server's peak resident set size (VmHWM), in bytes.
func (s *attackServer) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.Pid()))
	if err != nil {
		s.t.Fatalf("read the server's status: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	s.t.Fatal("no VmHWM in the server's status")
	return 0
}

type apiReply struct {
	status int
	body   string
}

func (s *attackServer) call(method, path, body string, timeout time.Duration) (apiReply, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.URL+path, strings.NewReader(body))
	if err != nil {
		return apiReply{}, err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return apiReply{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return apiReply{resp.StatusCode, string(b)}, err
}

func (s *attackServer) submit(job string) apiReply {
	s.t.Helper()
	r, err := s.call("POST", "/api/v1/jobs", job, time.Minute)
	if err != nil {
		s.t.Fatalf("submit: %v", err)
	}
	return r
}

// waitEnded waits for job id to leave the running state and returns it.
func (s *attackServer) waitEnded(id string, within time.Duration) jobView {
	s.t.Helper()
	var v jobView
	ended := testutil.Within(within, func() bool {
		r, err := s.call("GET", "/api/v1/jobs/"+id, "", 3*time.Minute)
		if err != nil {
			// The goroutine dump says where the server is stuck.
			s.Signal(syscall.SIGQUIT)
			time.Sleep(time.Second)
			s.t.Fatalf("get job %s: %v; logs:\n%s", id, err, s.AllLogs())
		}
		v = jobView{}
		json.Unmarshal([]byte(r.body), &v)
		return v.State != "" && v.State != "running" && v.State != "starting"
	})
	if !ended {
		s.t.Fatalf("job %s still %q after %v; logs:\n%s", id, v.State, within, s.AllLogs())
	}
	return v
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

const genSource = "source:\n  generator: {count: 50}\n"

func sinkJob(name, path string) string {
	return "name: " + name + "\n" + genSource + "sinks:\n  - id: out\n    file: {path: " + strconv.Quote(path) + "}\n"
}

// refused says whether a submit was refused, or accepted with a job that
// failed: either way nothing may have been written.
func (s *attackServer) refused(name string, r apiReply) bool {
	if r.status >= 400 && r.status < 500 {
		return true
	}
	if r.status == 201 {
		return s.waitEnded(name, time.Minute).State == "failed"
	}
	return false
}

// TestAttackFileSinkOutsideRoot: a job's file sink cannot write outside the
// files root by an absolute path, "..", or a symlink inside the root, also
// one swapped in after the job was submitted (the sink opens it again when
// the server restarts the job); static escapes are a 400 naming the field.
func TestAttackFileSinkOutsideRoot(t *testing.T) {
	data := t.TempDir()
	outside := t.TempDir()
	files := filepath.Join(data, "files")
	srv := startAttackServer(t, data)

	for i, tc := range []struct{ path, field string }{
		{filepath.Join(outside, "abs.sh"), "sinks[0].file.path"},
		{"../../" + filepath.Base(outside) + "/dotdot.sh", "sinks[0].file.path"},
	} {
		r := srv.submit(sinkJob(fmt.Sprintf("static%d", i), tc.path))
		if r.status != 400 || !strings.Contains(r.body, tc.field) || !strings.Contains(r.body, `"line"`) {
			t.Errorf("sink at %s: %d %s, want 400 naming %s and its line", tc.path, r.status, r.body, tc.field)
		}
	}

	if err := os.Symlink(outside, filepath.Join(files, "link")); err != nil {
		t.Fatal(err)
	}
	if r := srv.submit(sinkJob("symlink", "link/viasym.sh")); !srv.refused("symlink", r) {
		t.Errorf("sink through a symlink out of the root: %d %s, want it refused", r.status, r.body)
	}

	// Swapped after submit: the job writes inside the root, then the
	// directory it writes into becomes a symlink out, and the server
	// restarts the job.
	if err := os.Mkdir(filepath.Join(files, "dir"), 0o755); err != nil {
		t.Fatal(err)
	}
	job := "name: swap\nsource:\n  generator: {rate: 20}\nsinks:\n  - id: out\n    file: {path: dir/swapped.sh}\n"
	if r := srv.submit(job); r.status != 201 {
		t.Fatalf("submit a job writing inside the root: %d %s", r.status, r.body)
	}
	srv.Kill()
	if err := os.Rename(filepath.Join(files, "dir"), filepath.Join(files, "dir.old")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(files, "dir")); err != nil {
		t.Fatal(err)
	}
	srv.Start()
	if v := srv.waitEnded("swap", time.Minute); v.State != "failed" || !strings.Contains(v.Reason, "files root") {
		t.Errorf("restarted job writing through a swapped symlink: %+v, want failed saying it leads outside the files root", v)
	}

	ents, _ := os.ReadDir(outside)
	for _, e := range ents {
		t.Errorf("the job wrote %s outside the files root", e.Name())
	}
}

// TestAttackFileSinkServerData: a file sink cannot reach the server's own
// data (streams.json), not by "..", and not when the files root is set to
// contain the data directory.
func TestAttackFileSinkServerData(t *testing.T) {
	data := t.TempDir()
	srv := startAttackServer(t, data)
	if r, _ := srv.call("POST", "/api/v1/streams", `{"name": "keep", "shards": 1}`, 10*time.Second); r.status >= 300 {
		t.Fatalf("create stream: %d %s", r.status, r.body)
	}
	catalog := filepath.Join(data, "streams.json")
	before, err := os.ReadFile(catalog)
	if err != nil {
		t.Fatal(err)
	}
	r := srv.submit(sinkJob("dotdot", "../streams.json"))
	if r.status != 400 || !strings.Contains(r.body, "sinks[0].file.path") {
		t.Errorf("sink at ../streams.json: %d %s, want 400 naming sinks[0].file.path", r.status, r.body)
	}
	srv.Kill()

	// A files root that contains the data directory still keeps it out.
	top := filepath.Dir(data)
	srv = startAttackServer(t, data, "--files-root", top)
	r = srv.submit(sinkJob("overlap", filepath.Join(filepath.Base(data), "streams.json")))
	if !srv.refused("overlap", r) {
		t.Errorf("sink at DATA/streams.json under a files root holding DATA: %d %s, want it refused", r.status, r.body)
	}
	if after, _ := os.ReadFile(catalog); !bytes.Equal(before, after) {
		t.Fatalf("streams.json changed:\n%s\nnow:\n%s", before, after)
	}
	srv.Kill()
	srv.Start()
	if r, _ := srv.call("GET", "/api/v1/streams", "", 10*time.Second); !strings.Contains(r.body, "keep") {
		t.Fatalf("after a restart the stream is gone: %s", r.body)
	}
}

// TestAttackFileSourceReadsOutside: a file source cannot read /etc/passwd,
// directly, by "..", or through a symlink inside the files root.
func TestAttackFileSourceReadsOutside(t *testing.T) {
	data := t.TempDir()
	srv := startAttackServer(t, data)
	src := func(name, path string) string {
		return "name: " + name + "\nsource:\n  file: " + strconv.Quote(path) + "\nsinks:\n  - {id: board, dashboard: {}}\n"
	}
	for i, p := range []string{"/etc/passwd", "../../../../../../../../etc/passwd"} {
		r := srv.submit(src(fmt.Sprintf("static%d", i), p))
		if r.status != 400 || !strings.Contains(r.body, "source.file") {
			t.Errorf("source %s: %d %s, want 400 naming source.file", p, r.status, r.body)
		}
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(data, "files", "pw.jsonl")); err != nil {
		t.Fatal(err)
	}
	r := srv.submit(src("symlink", "pw.jsonl"))
	if !srv.refused("symlink", r) {
		t.Errorf("source through a symlink to /etc/passwd: %d %s, want it refused", r.status, r.body)
	}
	res, _ := srv.call("GET", "/api/v1/jobs/symlink/results", "", 10*time.Second)
	if strings.Contains(res.body, "root:") {
		t.Fatalf("/etc/passwd came back in the results: %s", res.body)
	}
}

// TestAttackSinkKeepsExistingFile: a file that was there before the job is
// never truncated: the job is refused and the file keeps its content.
func TestAttackSinkKeepsExistingFile(t *testing.T) {
	data := t.TempDir()
	keep := filepath.Join(data, "files", "notes.jsonl")
	writeFile(t, keep, "precious\n")
	srv := startAttackServer(t, data)
	r := srv.submit(sinkJob("overwrite", "notes.jsonl"))
	if !srv.refused("overwrite", r) || !strings.Contains(r.body, "exists") {
		t.Errorf("sink over an existing file: %d %s, want it refused saying the file exists", r.status, r.body)
	}
	if b, _ := os.ReadFile(keep); string(b) != "precious\n" {
		t.Fatalf("the existing file is now %q", b)
	}
}

// maxBombRSS is the peak RSS the server must stay under while a hostile
// job runs (the builtins reached several GB before they were bounded).
const maxBombRSS = 1 << 30

// TestAttackJSMemoryBombs: JavaScript that makes builtins build huge values,
// doubles a string once per record, or fans one record out into a million
// fails its job with an error naming the operator, and the server's RSS
// stays bounded.
func TestAttackJSMemoryBombs(t *testing.T) {
	for _, tc := range []struct{ name, functions, fn, want string }{
		{"replace", "", `r => 'x'.repeat(32768).replace(/x/g, 'y'.repeat(65536)).length`, "sandbox limit"},
		{"doubling", "var s = 'x'", `r => { s = s + s; return {n: s.length} }`, ""},
		{"fanout", "", `r => Array(1000000).fill(r)`, "too many outputs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := startAttackServer(t, t.TempDir())
			job := "name: bomb\nsource:\n  generator: {rate: 20}\n"
			if tc.functions != "" {
				job += "functions: " + strconv.Quote(tc.functions) + "\n"
			}
			job += "operators:\n  - id: evil\n    map: " + strconv.Quote(tc.fn) + "\n    timeout: 10s\nsinks:\n  - {id: board, dashboard: {}}\n"
			if r := srv.submit(job); r.status != 201 {
				t.Fatalf("submit: %d %s", r.status, r.body)
			}
			v := srv.waitEnded("bomb", 3*time.Minute)
			t.Logf("job ended: %+v", v)
			if v.State != "failed" || !strings.Contains(v.Reason, `"evil"`) || !strings.Contains(v.Reason, tc.want) {
				t.Errorf("job %+v, want failed naming operator evil and %q", v, tc.want)
			}
			if rss := srv.peakRSS(); rss > maxBombRSS {
				t.Errorf("server peak RSS %d MiB, want under %d MiB", rss>>20, maxBombRSS>>20)
			} else {
				t.Logf("server peak RSS %d MiB", rss>>20)
			}
		})
	}
}

// TestAttackStuckJobKeepsAPI: while one job is stuck in a long native call
// (a regular expression backtracking for minutes, which no interrupt
// reaches), listing and reading jobs answers, another job keeps running,
// and stopping the stuck job returns.
func TestAttackStuckJobKeepsAPI(t *testing.T) {
	srv := startAttackServer(t, t.TempDir())
	// A loop that runs for the longest time budget a job may set: the job
	// is stuck in JavaScript for a minute.
	stuck := "name: stuck\nsource:\n  generator: {rate: 5}\noperators:\n  - id: slow\n" +
		"    timeout: 1m\n    filter: \"r => { for (;;) {} }\"\nsinks:\n  - {id: board, dashboard: {}}\n"
	other := "name: other\nsource:\n  generator: {rate: 20}\nsinks:\n  - {id: board, dashboard: {}}\n"
	for _, j := range []string{stuck, other} {
		if r := srv.submit(j); r.status != 201 {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
	}
	time.Sleep(2 * time.Second) // the filter is running its first record
	for _, path := range []string{"/api/v1/jobs", "/api/v1/jobs/stuck", "/api/v1/jobs/other/results"} {
		if r, err := srv.call("GET", path, "", time.Minute); err != nil || r.status != 200 {
			t.Errorf("GET %s while a job is stuck: %v %d %s", path, err, r.status, r.body)
		}
	}
	if r, err := srv.call("DELETE", "/api/v1/jobs/stuck", "", time.Minute); err != nil || r.status >= 300 {
		t.Fatalf("stop the stuck job: %v %d %s", err, r.status, r.body)
	}
	if r, err := srv.call("GET", "/api/v1/jobs/stuck", "", time.Minute); err != nil || !strings.Contains(r.body, `"stopped"`) {
		t.Errorf("stuck job after stop: %v %s", err, r.body)
	}
	if r, err := srv.call("GET", "/api/v1/jobs/other", "", time.Minute); err != nil || !strings.Contains(r.body, `"running"`) {
		t.Errorf("the other job: %v %s", err, r.body)
	}
}
