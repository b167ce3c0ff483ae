package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// Restart integrity against the real binary: what a job was (finished,
// stopped) survives restarts, and damage at rest — a state file, a
// checkpoint — is reported, never ignored.

// node is a runnel serve process whose working directory is its data
// directory's files/ folder, so job files name their files relatively
// (which resolves the same under the server's files root).
type node struct {
	*testbin.Server
	t *testing.T
}

func newNode(t *testing.T) *node {
	t.Helper()
	n := &node{testbin.New(t, testbin.Options{LogLevel: "info", Client: &http.Client{Timeout: 10 * time.Second}}), t}
	n.Dir = n.files()
	if err := os.MkdirAll(n.files(), 0o755); err != nil {
		t.Fatal(err)
	}
	return n
}

// startedNode starts a node for a test that runs the real binary, and
// skips the test, named what in the message, in -short mode.
func startedNode(t *testing.T, what string) *node {
	t.Helper()
	if testing.Short() {
		t.Skipf("%s skipped in -short mode: it runs the real binary", what)
	}
	n := newNode(t)
	n.Start()
	return n
}

func (n *node) files() string { return filepath.Join(n.Data, "files") }

// stop stops the server the way an operator does (SIGTERM).
func (n *node) stop() {
	n.t.Helper()
	if err := n.Stop(); err != nil {
		n.t.Error(err)
	}
}

func (n *node) submit(job string) {
	n.t.Helper()
	if code, b := n.Do("POST", "/api/v1/jobs", "application/yaml", job); code != 201 {
		n.t.Fatalf("submit: %d %s", code, b)
	}
}

type jobView struct {
	State              string   `json:"state"`
	Reason             string   `json:"reason"`
	Warnings           []string `json:"warnings"`
	CheckpointsSkipped int      `json:"checkpoints_skipped"`
	Checkpoints        []struct {
		Epoch  uint64 `json:"epoch"`
		Status string `json:"status"`
	} `json:"checkpoints"`
	Operators []struct {
		ID      string `json:"id"`
		In      int64  `json:"in"`
		Out     int64  `json:"out"`
		Errors  int64  `json:"errors"`
		Skipped int64  `json:"skipped"`
		// DeadLettered counts records sent to a dead-letter stream.
		DeadLettered int64 `json:"dead_lettered"`
	} `json:"operators"`
}

// completed counts the job's completed checkpoints.
func (v jobView) completed() int {
	n := 0
	for _, c := range v.Checkpoints {
		if c.Status == "complete" {
			n++
		}
	}
	return n
}

// readJob reads job id from the server at base; ok is false when the
// server does not answer, or not with the job.
func readJob(hc *http.Client, base, id string) (v jobView, ok bool) {
	resp, err := hc.Get(base + "/api/v1/jobs/" + id)
	if err != nil {
		return v, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		io.Copy(io.Discard, resp.Body)
		return v, false
	}
	return v, json.NewDecoder(resp.Body).Decode(&v) == nil
}

func (n *node) job(id string) jobView {
	n.t.Helper()
	code, b := n.Do("GET", "/api/v1/jobs/"+id, "", "")
	if code != 200 {
		n.t.Fatalf("get job %s: %d %s", id, code, b)
	}
	var v jobView
	if err := json.Unmarshal(b, &v); err != nil {
		n.t.Fatalf("job %s: %v: %s", id, err, b)
	}
	return v
}

// waitJob waits until cond holds for job id and returns its view.
func (n *node) waitJob(id, what string, cond func(jobView) bool) jobView {
	n.t.Helper()
	var v jobView
	if !testutil.Within(60*time.Second, func() bool { v = n.job(id); return cond(v) }) {
		n.t.Fatalf("job %s: %s: not after 60 s; last %+v", id, what, v)
	}
	return v
}

// metric returns the value of a Prometheus sample line starting with
// prefix, or "" if there is none.
func (n *node) metric(prefix string) string {
	n.t.Helper()
	_, b := n.Do("GET", "/metrics", "", "")
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, prefix) {
			f := strings.Fields(line)
			return f[len(f)-1]
		}
	}
	return ""
}

// errorLogged waits for an ERROR line holding every one of words.
func (n *node) errorLogged(words ...string) {
	n.t.Helper()
	testutil.Eventually(n.t, 10*time.Second, func() bool {
		for line := range strings.Lines(n.AllLogs()) {
			if !strings.Contains(line, "level=ERROR") {
				continue
			}
			all := true
			for _, w := range words {
				all = all && strings.Contains(line, w)
			}
			if all {
				return true
			}
		}
		return false
	}, "no ERROR log line holding %q", words)
}

const finiteJob = `name: finite
source:
  generator: {count: 3000, keys: 5, rate: 20000}
operators:
  - id: pick
    map: "r => ({page: r.page, ms: r.latency_ms})"
sinks:
  - {id: out, file: {path: finite.jsonl}}
checkpoint: {every: 200ms}
`

var endlessJob = pageViewsJob("endless", 2000, 5, "200ms")

// pageViewsJob is the job file name of the restart tests: generated
// records (rate a second, over keys pages) counted per page in 1 s
// windows to a dashboard, checkpointed every every.
func pageViewsJob(name string, rate, keys int, every string) string {
	return fmt.Sprintf(`name: %s
source:
  generator: {rate: %d, keys: %d}
operators:
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 1s
      aggregate: {views: count}
sinks:
  - {id: board, dashboard: {}}
checkpoint: {every: %s}
`, name, rate, keys, every)
}

func lineCount(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(b, []byte("\n"))
}

// TestFinishedAndStoppedJobsStayAcrossRestarts runs a bounded job to its
// end and stops an endless one, restarts the server twice (SIGTERM, then
// SIGKILL): the finished job must not run again (its file sink keeps its
// 3,000 rows), the stopped job must stay stopped. Then the stopped job's
// state.json is damaged: the job must come up failed with the damage
// named, in the API and an ERROR log, and never run.
func TestFinishedAndStoppedJobsStayAcrossRestarts(t *testing.T) {
	n := startedNode(t, "restart test")
	n.submit(finiteJob)
	n.submit(endlessJob)
	n.waitJob("finite", "finished", func(v jobView) bool { return v.State == "finished" })
	out := filepath.Join(n.files(), "finite.jsonl")
	if got := lineCount(t, out); got != 3000 {
		t.Fatalf("finite.jsonl has %d rows, want 3000", got)
	}
	n.waitJob("endless", "a checkpoint", func(v jobView) bool { return len(v.Checkpoints) > 0 })
	if code, b := n.Do("DELETE", "/api/v1/jobs/endless", "", ""); code != 200 {
		t.Fatalf("stop endless: %d %s", code, b)
	}
	n.waitJob("endless", "stopped", func(v jobView) bool { return v.State == "stopped" })

	for i, restart := range []func(){n.stop, n.Kill} {
		restart()
		n.Start()
		if v := n.job("finite"); v.State != "finished" {
			t.Fatalf("restart %d: finished job is %q (%s), want finished", i+1, v.State, v.Reason)
		}
		if v := n.job("endless"); v.State != "stopped" {
			t.Fatalf("restart %d: stopped job is %q (%s), want stopped", i+1, v.State, v.Reason)
		}
		// Give a wrongly restarted job time to rewrite its output.
		time.Sleep(500 * time.Millisecond)
		if got := lineCount(t, out); got != 3000 {
			t.Fatalf("restart %d: finite.jsonl has %d rows, want the 3000 of the finished run", i+1, got)
		}
	}

	n.stop()
	stateFile := filepath.Join(n.Data, "jobs", "endless", "state.json")
	if err := os.WriteFile(stateFile, []byte(`{"created":"2026-01-0`), 0o644); err != nil {
		t.Fatal(err)
	}
	n.Start()
	v := n.job("endless")
	if v.State != "failed" || !strings.Contains(v.Reason, "state.json") || len(v.Warnings) == 0 {
		t.Fatalf("job with a damaged state.json: state %q reason %q warnings %q; want failed, naming state.json", v.State, v.Reason, v.Warnings)
	}
	if len(v.Operators) > 0 {
		t.Fatalf("job with a damaged state.json runs: %+v", v.Operators)
	}
	n.errorLogged("endless", "state.json")
	if got := n.metric(`runnel_job_warnings{job="endless"}`); got != "1" {
		t.Fatalf("runnel_job_warnings for the damaged job = %q, want 1", got)
	}
	if v := n.job("finite"); v.State != "finished" {
		t.Fatalf("finished job next to a damaged one is %q", v.State)
	}
	n.stop()
}

var ckptJob = pageViewsJob("ckpt", 3000, 20, "150ms")

// checkpointDirs returns the job's complete checkpoints' epochs, oldest
// first, from its manifests on disk.
func checkpointDirs(t *testing.T, data, job string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(data, "jobs", job, "state", "checkpoints"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if rest, ok := strings.CutPrefix(e.Name(), "MANIFEST-"); ok && !strings.HasSuffix(rest, ".tmp") {
			out = append(out, rest)
		}
	}
	return out
}

// TestDamagedAndMissingCheckpointsFallBack keeps three checkpoints of a
// job, damages the newest one's Pebble manifest, and restarts: the job
// must resume from the next older checkpoint and say so (a warning in the
// API, runnel_job_checkpoints_skipped, an ERROR log), not fail with a
// storage engine message. Then the newest checkpoint's manifest is
// removed: the job must resume from the one before and say that the
// newest was lost.
func TestDamagedAndMissingCheckpointsFallBack(t *testing.T) {
	n := startedNode(t, "checkpoint damage test")
	n.submit(ckptJob)
	n.waitJob("ckpt", "three checkpoints", func(v jobView) bool { return len(v.Checkpoints) >= 3 })
	n.Kill()

	epochs := checkpointDirs(t, n.Data, "ckpt")
	if len(epochs) < 3 {
		t.Fatalf("kept checkpoints %v, want 3", epochs)
	}
	newest := epochs[len(epochs)-1]
	db := filepath.Join(n.Data, "jobs", "ckpt", "state", "checkpoints", newest, "db")
	ents, err := os.ReadDir(db)
	if err != nil {
		t.Fatal(err)
	}
	damaged := false
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "MANIFEST-") {
			if err := os.WriteFile(filepath.Join(db, e.Name()), bytes.Repeat([]byte{0x5a}, 64), 0o644); err != nil {
				t.Fatal(err)
			}
			damaged = true
		}
	}
	if !damaged {
		t.Fatalf("no Pebble manifest in %s", db)
	}
	n.Start()
	v := n.waitJob("ckpt", "running", func(v jobView) bool { return v.State != "" && v.State != "starting" })
	if v.State != "running" || v.CheckpointsSkipped != 1 || !strings.Contains(strings.Join(v.Warnings, "\n"), "damaged") {
		t.Fatalf("after damaging checkpoint %s: state %q (%s), skipped %d, warnings %q; want running from the older one, warned",
			newest, v.State, v.Reason, v.CheckpointsSkipped, v.Warnings)
	}
	n.errorLogged("ckpt", "damaged checkpoint")
	if out, _, _ := testbin.Run(t, "", nil, "jobs", "get", "ckpt", "--server", n.URL); !strings.Contains(out, "\nwarning: checkpoint "+strings.TrimLeft(newest, "0")+" is damaged") {
		t.Fatalf("runnel jobs get does not show the warning:\n%s", out)
	}
	if got := n.metric(`runnel_job_checkpoints_skipped{job="ckpt"}`); got != "1" {
		t.Fatalf("runnel_job_checkpoints_skipped = %q, want 1", got)
	}
	if _, err := os.Stat(filepath.Join(n.Data, "jobs", "ckpt", "state", "damaged")); err != nil {
		t.Fatalf("damaged checkpoint not kept aside: %v", err)
	}

	// The newest checkpoint's manifest goes missing.
	n.waitJob("ckpt", "three new checkpoints", func(v jobView) bool {
		return len(v.Checkpoints) >= 3 && fmt.Sprintf("%020d", v.Checkpoints[0].Epoch) > newest
	})
	n.Kill()
	// The newest the job completed is what LATEST names (a kill may fall
	// between a manifest and LATEST).
	latest, err := os.ReadFile(filepath.Join(n.Data, "jobs", "ckpt", "state", "checkpoints", "LATEST"))
	if err != nil {
		t.Fatal(err)
	}
	newest = fmt.Sprintf("%020s", strings.TrimSpace(string(latest)))
	if err := os.Remove(filepath.Join(n.Data, "jobs", "ckpt", "state", "checkpoints", "MANIFEST-"+newest)); err != nil {
		t.Fatal(err)
	}
	n.Start()
	v = n.waitJob("ckpt", "running", func(v jobView) bool { return v.State != "" && v.State != "starting" })
	if v.State != "running" || !strings.Contains(strings.Join(v.Warnings, "\n"), "missing") {
		t.Fatalf("after removing manifest %s: state %q (%s), warnings %q; want running, warned of the lost checkpoint",
			newest, v.State, v.Reason, v.Warnings)
	}
	n.errorLogged("ckpt", "checkpoint manifest missing")
	if got := n.metric(`runnel_job_warnings{job="ckpt"}`); got == "" || got == "0" {
		t.Fatalf("runnel_job_warnings = %q, want at least 1", got)
	}
	n.stop()
}
