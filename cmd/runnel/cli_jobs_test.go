package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// TestCLIJobs: runnel run over a file prints every window; runnel jobs
// submit/list/get/stop drive a real server; a bad job file prints its
// problems with their lines.
func TestCLIJobs(t *testing.T) {
	bin := runnelBinary(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "clicks.jsonl")
	var b strings.Builder
	for i := 0; i < 30; i++ {
		b.WriteString(`{"page":"/p` + string(rune('0'+i%3)) + `","ts":` + itoa(1_700_000_000_000+int64(i)*1000) + "}\n")
	}
	os.WriteFile(data, []byte(b.String()), 0o644)
	job := "name: cli\nsource:\n  file: " + data + "\n  event_time: \"r => r.ts\"\noperators:\n  - id: w\n    window: {key: \"r => r.page\", tumbling: 10s, aggregate: {n: count}}\nsinks:\n  - {id: out, log: {}}\n"
	jobFile := filepath.Join(dir, "job.yaml")
	os.WriteFile(jobFile, []byte(job), 0o644)
	out, err := exec.Command(bin, "run", jobFile).Output()
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	rows := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(rows) != 9 || !strings.Contains(rows[0], `"n":`) {
		t.Fatalf("runnel run printed %d rows:\n%s", len(rows), out)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(job, "tumbling: 10s", "tumbling: 10x", 1)), 0o644)
	outb, err := exec.Command(bin, "run", bad).CombinedOutput()
	if err == nil || !strings.Contains(string(outb), "line 7") || !strings.Contains(string(outb), "tumbling") {
		t.Fatalf("run of a bad file: %v\n%s", err, outb)
	}

	srv := testbin.Start(t, testbin.Options{})
	defer srv.Kill()
	cli := srv.CLI
	gen := filepath.Join(dir, "gen.yaml")
	os.WriteFile(gen, []byte("name: gen\nsource:\n  generator: {rate: 200}\noperators:\n  - id: w\n    window: {key: \"r => r.page\", tumbling: 1s, aggregate: {n: count}}\nsinks:\n  - {id: board, dashboard: {}}\n"), 0o644)
	if o, err := cli("jobs", "submit", gen); err != nil || strings.TrimSpace(o) != "gen" {
		t.Fatalf("submit: %v %s", err, o)
	}
	if o, err := cli("jobs", "list"); err != nil || !strings.Contains(o, "gen") || !strings.Contains(o, "running") {
		t.Fatalf("list: %v %s", err, o)
	}
	if o, err := cli("jobs", "get", "gen"); err != nil || !strings.Contains(o, "NODE") {
		t.Fatalf("get: %v %s", err, o)
	}
	if o, err := cli("jobs", "submit", bad); err == nil || !strings.Contains(o, "line 7") {
		t.Fatalf("submit of a bad file: %v %s", err, o)
	}
	if o, err := cli("jobs", "stop", "gen"); err != nil {
		t.Fatalf("stop: %v %s", err, o)
	}
	if o, _ := cli("jobs", "get", "gen"); !strings.Contains(o, "stopped") {
		t.Fatalf("after stop: %s", o)
	}
	if o, err := cli("jobs", "get", "nope"); err == nil || !strings.Contains(o, "not found") {
		t.Fatalf("get of an unknown job: %v %s", err, o)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
