package main

import (
	"bufio"
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

// TestCLIJobsOutput: the rows of a job's log and file sinks are printed by
// 'runnel jobs output', and --follow prints rows put after it started.
func TestCLIJobsOutput(t *testing.T) {
	bin := runnelBinary(t)
	srv := testbin.Start(t, testbin.Options{})
	defer srv.Kill()
	cli := srv.CLIInput
	if o, err := cli("", "jobs", "output", "--help"); err != nil || !strings.Contains(o, "--follow") {
		t.Fatalf("jobs output --help: %v\n%s", err, o)
	}
	dir := t.TempDir()
	job := filepath.Join(dir, "job.yaml")
	os.WriteFile(job, []byte(`name: echo
source: {stream: words, shards: 2}
operators:
  - {id: up, map: "r => ({word: r.w.toUpperCase()})"}
sinks:
  - {id: printed, input: up, log: {}}
  - {id: saved, input: up, file: {path: words.jsonl}}
checkpoint: {every: 200ms}
`), 0o644)
	if o, err := cli("", "jobs", "submit", job); err != nil {
		t.Fatalf("submit: %v\n%s", err, o)
	}
	if o, err := cli(`{"w":"alpha"}`+"\n"+`{"w":"beta"}`+"\n", "put", "words"); err != nil {
		t.Fatalf("put: %v\n%s", err, o)
	}
	for _, sink := range []string{"printed", "saved"} {
		var o string
		testutil.Within(20*time.Second, func() bool {
			var err error
			if o, err = cli("", "jobs", "output", "echo", "--sink", sink); err != nil {
				t.Fatalf("jobs output --sink %s: %v\n%s", sink, err, o)
			}
			return strings.Count(o, "\n") >= 2
		})
		if !strings.Contains(o, `{"word":"ALPHA"}`) || !strings.Contains(o, `{"word":"BETA"}`) {
			t.Fatalf("jobs output --sink %s printed:\n%s", sink, o)
		}
	}
	if o, err := cli("", "jobs", "output", "echo", "--sink", "nope"); err == nil || !strings.Contains(o, `no such sink: "nope" in job "echo"`) || !strings.Contains(o, "printed") {
		t.Fatalf("output of a missing sink: %v\n%s", err, o)
	}

	// jobs get shows each operator of a fused chain with its own errors
	// and dead letters, as the UI does.
	fused := filepath.Join(dir, "fused.yaml")
	os.WriteFile(fused, []byte(`name: fused
source: {stream: words}
operators:
  - {id: first, map: "r => r"}
  - id: picky
    filter: "r => { if (r.w === 'beta') throw new Error('no beta'); return true }"
    on_error: {dead_letter: fused-bad}
sinks:
  - {id: printed, log: {}}
`), 0o644)
	if o, err := cli("", "jobs", "submit", fused); err != nil {
		t.Fatalf("submit: %v\n%s", err, o)
	}
	var got string
	testutil.Within(20*time.Second, func() bool {
		got, _ = cli("", "jobs", "get", "fused")
		return strings.Contains(got, "picky") && regexp.MustCompile(`picky\s+filter \(fused in first\)\s+-\s+\d+\s+1\s+0\s+1\s`).MatchString(got)
	})
	if !regexp.MustCompile(`(?m)^first\s+map \(fused in first\)`).MatchString(got) || !regexp.MustCompile(`picky\s+filter \(fused in first\)\s+-\s+\d+\s+1\s+0\s+1\s`).MatchString(got) {
		t.Fatalf("jobs get of a fused chain with a dead letter:\n%s", got)
	}
	// A bad job file's problem names its line once.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("name: bad\nsource: {stream: words}\nsinks:\n  - {id: o, log: {}, stream: {name: x}}\n"), 0o644)
	if o, err := cli("", "jobs", "submit", bad); err == nil || regexp.MustCompile(`line (\d+): line \d+:`).MatchString(o) || !strings.Contains(o, "line 4") {
		t.Fatalf("submit of a bad file: %v\n%s", err, o)
	}

	if o, err := cli("", "jobs", "resume", "echo"); err == nil || !strings.Contains(o, "running already") {
		t.Fatalf("resume of a running job: %v\n%s", err, o)
	}
	if o, err := cli("", "jobs", "stop", "echo"); err != nil {
		t.Fatalf("stop: %v\n%s", err, o)
	}
	if o, err := cli("", "jobs", "resume", "echo"); err != nil || !strings.Contains(o, "resumed job echo") {
		t.Fatalf("resume: %v\n%s", err, o)
	}

	follow := exec.Command(bin, "jobs", "output", "echo", "--follow", "--server", srv.URL)
	out, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { follow.Process.Kill(); follow.Wait() }()
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	if o, err := cli(`{"w":"gamma"}`+"\n", "put", "words"); err != nil {
		t.Fatalf("put: %v\n%s", err, o)
	}
	timeout := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatal("jobs output --follow ended")
			}
			if l == `{"word":"GAMMA"}` {
				return
			}
		case <-timeout:
			t.Fatal("jobs output --follow did not print a row put after it started")
		}
	}
}
