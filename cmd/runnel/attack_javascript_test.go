package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// Attacks on the JavaScript sandbox's budgets, against the real binary: a
// regular expression that backtracks catastrophically, and memory kept a
// little per call in a global. Each must fail its record or job with an
// error saying which budget, while the API and other jobs go on.

// jsJob is a job named name with one operator evil of the given kind and
// function over a generator source.
func jsJob(name, source, functions, kind, fn, extra string) string {
	job := "name: " + name + "\nsource:\n  generator: " + source + "\n"
	if functions != "" {
		job += "functions: " + strconv.Quote(functions) + "\n"
	}
	return job + "operators:\n  - id: evil\n    " + kind + ": " + strconv.Quote(fn) + "\n" + extra +
		"sinks:\n  - {id: board, dashboard: {}}\n"
}

// TestAttackJSRegexBacktracking: a filter whose pattern backtracks
// catastrophically (regexp2, which goja uses for lookarounds, runs it for
// hours per record) fails the job with the regex budget in its reason,
// within seconds; with on_error skip the job keeps running and counts the
// records it skipped, and the records the pattern does not reach pass.
func TestAttackJSRegexBacktracking(t *testing.T) {
	const fn = `r => r.status !== 200 || /^(?=a)(a+)+b$/.test('a'.repeat(40) + r.page)`
	srv := startAttackServer(t, t.TempDir())
	for _, j := range []string{
		jsJob("fails", "{rate: 20}", "", "filter", fn, ""),
		jsJob("skips", "{rate: 20}", "", "filter", fn, "    on_error: skip\n"),
	} {
		if r := srv.submit(j); r.status != 201 {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
	}
	v := srv.waitEnded("fails", time.Minute)
	if v.State != "failed" || !strings.Contains(v.Reason, `"evil"`) || !strings.Contains(v.Reason, "regular expression exceeded its time budget") {
		t.Fatalf("job %+v, want failed naming operator evil and the regex budget", v)
	}
	t.Logf("reason: %s", v.Reason)
	var skips jobView
	if testutil.Within(time.Minute, func() bool {
		skips = srv.job("skips")
		for _, op := range skips.Operators {
			if op.ID == "evil" && op.Skipped > 0 && op.Out > 0 && skips.State == "running" {
				return true
			}
		}
		return false
	}) {
		return
	}
	t.Fatalf("job with on_error skip: %+v, want running with records skipped and passed", skips)
}

// TestAttackJSMemoryKeptAcrossCalls: a map that keeps 1 MiB in a global per
// record (each call far under the per-call heap limit) fails its job with
// an error saying memory was kept between calls, before the server's RSS
// reaches a GiB; meanwhile another job keeps running, and listing jobs
// answers.
func TestAttackJSMemoryKeptAcrossCalls(t *testing.T) {
	srv := startAttackServer(t, t.TempDir())
	// count bounds what today's code, which does not stop it, keeps.
	hog := jsJob("hog", "{rate: 100, count: 900}", "var keep = []", "map",
		`r => { keep.push('x'.repeat(1 << 20) + r.user); return r }`, "")
	other := "name: other\nsource:\n  generator: {rate: 20}\nsinks:\n  - {id: board, dashboard: {}}\n"
	for _, j := range []string{other, hog} {
		if r := srv.submit(j); r.status != 201 {
			t.Fatalf("submit: %d %s", r.status, r.body)
		}
	}
	before := srv.job("other")
	v := srv.waitEnded("hog", 2*time.Minute)
	if v.State != "failed" || !strings.Contains(v.Reason, `"evil"`) && !strings.Contains(v.Reason, `"hog"`) ||
		!strings.Contains(v.Reason, "between calls") {
		t.Fatalf("job %+v, want failed saying memory was kept between calls", v)
	}
	t.Logf("reason: %s", v.Reason)
	if r, err := srv.call("GET", "/api/v1/jobs", "", 10*time.Second); err != nil || r.status != 200 {
		t.Fatalf("list jobs after the failure: %v %d", err, r.status)
	}
	var after jobView
	if !testutil.Within(time.Minute, func() bool {
		after = srv.job("other")
		return after.State == "running" && sourceOut(after) > sourceOut(before)
	}) {
		t.Fatalf("the other job made no progress: %+v", after)
	}
	if rss := srv.peakRSS(); rss > maxBombRSS {
		t.Errorf("server peak RSS %d MiB, want under %d MiB", rss>>20, maxBombRSS>>20)
	} else {
		t.Logf("server peak RSS %d MiB", rss>>20)
	}
}

// job reads job id's view.
func (s *attackServer) job(id string) jobView {
	s.t.Helper()
	r, err := s.call("GET", "/api/v1/jobs/"+id, "", 10*time.Second)
	if err != nil || r.status != 200 {
		s.t.Fatalf("get job %s: %v %d %s", id, err, r.status, r.body)
	}
	var v jobView
	if err := json.Unmarshal([]byte(r.body), &v); err != nil {
		s.t.Fatalf("job %s: %v in %s", id, err, r.body)
	}
	return v
}

// sourceOut counts what a job's operators and sinks took in and gave out,
// to see it progress.
func sourceOut(v jobView) int64 {
	var n int64
	for _, op := range v.Operators {
		n += op.In + op.Out
	}
	return n
}
