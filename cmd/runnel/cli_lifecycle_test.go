package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestCLIJobLifecycle drives a real server with runnel jobs preview,
// errors, restart, deploy and delete, as a user would.
func TestCLIJobLifecycle(t *testing.T) {
	bin := runnelBinary(t)
	for _, sub := range []string{"preview", "errors", "restart", "deploy", "delete"} {
		if o, err := exec.Command(bin, "jobs", sub, "--help").CombinedOutput(); err != nil || !strings.Contains(string(o), "Usage") {
			t.Fatalf("jobs %s --help: %v\n%s", sub, err, o)
		}
	}
	srv := testbin.Start(t, testbin.Options{})
	cli := srv.CLI
	dir := t.TempDir()
	job := "name: gen\nsource:\n  generator: {rate: 100, keys: 3}\noperators:\n  - id: m\n    map: \"r => { if (r.page == '/p/1') throw new Error('bad page ' + r.page); return {page: r.page} }\"\n    on_error: {dead_letter: bad}\n  - id: w\n    window: {key: \"r => r.page\", tumbling: 1s, aggregate: {n: count}}\nsinks:\n  - {id: out, stream: {name: counts}}\n"
	file := filepath.Join(dir, "gen.yaml")
	os.WriteFile(file, []byte(job), 0o644)

	o, err := cli("jobs", "preview", file, "--records", "60")
	if err != nil || !strings.Contains(o, "read 60 records") || !strings.Contains(o, "m (map):") ||
		!strings.Contains(o, "Error: bad page /p/1") || !strings.Contains(o, "open windows flushed") || strings.Contains(o, "<eval>") {
		t.Fatalf("preview: %v\n%s", err, o)
	}
	if o, err := cli("jobs", "list"); err != nil || strings.Contains(o, "gen") {
		t.Fatalf("the preview left a job: %v\n%s", err, o)
	}

	if o, err := cli("jobs", "submit", file); err != nil {
		t.Fatalf("submit: %v\n%s", err, o)
	}
	testutil.Within(30*time.Second, func() bool {
		o, _ = cli("jobs", "errors", "gen", "--limit", "3")
		return strings.Contains(o, "bad page /p/1")
	})
	if !strings.Contains(o, "operator m") || !strings.Contains(o, "dead letters in bad") || strings.Contains(o, "<eval>") {
		t.Fatalf("errors:\n%s", o)
	}
	if o, err := cli("jobs", "restart", "gen", "--checkpoint", "1"); err == nil || !strings.Contains(o, "stop it first") {
		t.Fatalf("restart of a running job: %v\n%s", err, o)
	}
	if o, err := cli("jobs", "delete", "gen"); err == nil || !strings.Contains(o, "stop it first") {
		t.Fatalf("delete of a running job: %v\n%s", err, o)
	}

	os.WriteFile(file, []byte(strings.Replace(job, "tumbling: 1s", "tumbling: 2s", 1)), 0o644)
	o, err = cli("jobs", "deploy", "gen", file)
	sp := regexp.MustCompile(`from savepoint (\S+)`).FindStringSubmatch(o)
	if err != nil || sp == nil {
		t.Fatalf("deploy: %v\n%s", err, o)
	}
	renamed := filepath.Join(dir, "renamed.yaml")
	os.WriteFile(renamed, []byte(strings.Replace(job, "id: w", "id: w2", 1)), 0o644)
	if o, err := cli("jobs", "deploy", "gen", renamed); err == nil || !strings.Contains(o, "from=none") {
		t.Fatalf("incompatible deploy: %v\n%s", err, o)
	}
	if o, err := cli("jobs", "stop", "gen"); err != nil {
		t.Fatalf("stop: %v\n%s", err, o)
	}
	if o, err := cli("jobs", "restart", "gen", "--savepoint", sp[1]); err != nil || !strings.Contains(o, "running") {
		t.Fatalf("restart from %s: %v\n%s", sp[1], err, o)
	}
	if o, err := cli("jobs", "stop", "gen"); err != nil {
		t.Fatalf("stop: %v\n%s", err, o)
	}
	if o, err := cli("jobs", "delete", "gen"); err != nil || !strings.Contains(o, "deleted job gen") {
		t.Fatalf("delete: %v\n%s", err, o)
	}
	if o, err := cli("jobs", "get", "gen"); err == nil || !strings.Contains(o, "not found") {
		t.Fatalf("get after delete: %v\n%s", err, o)
	}
}
