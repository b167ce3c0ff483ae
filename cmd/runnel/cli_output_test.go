package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCLIJobsOutput: the rows of a job's log and file sinks are printed by
// 'runnel jobs output', and --follow prints rows put after it started.
func TestCLIJobsOutput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	bin := runnelBinary(t)
	srv := &server{t: t, bin: bin, data: t.TempDir(), addr: freeAddr(t)}
	srv.start()
	defer srv.kill()
	url := "http://" + srv.addr
	cli := func(stdin string, args ...string) (string, error) {
		cmd := exec.Command(bin, append(args, "--server", url)...)
		cmd.Stdin = strings.NewReader(stdin)
		o, err := cmd.CombinedOutput()
		return string(o), err
	}
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
		deadline := time.Now().Add(20 * time.Second)
		var o string
		for time.Now().Before(deadline) {
			var err error
			if o, err = cli("", "jobs", "output", "echo", "--sink", sink); err != nil {
				t.Fatalf("jobs output --sink %s: %v\n%s", sink, err, o)
			}
			if strings.Count(o, "\n") >= 2 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !strings.Contains(o, `{"word":"ALPHA"}`) || !strings.Contains(o, `{"word":"BETA"}`) {
			t.Fatalf("jobs output --sink %s printed:\n%s", sink, o)
		}
	}
	if o, err := cli("", "jobs", "output", "echo", "--sink", "nope"); err == nil || !strings.Contains(o, `no sink "nope"`) || !strings.Contains(o, "printed") {
		t.Fatalf("output of a missing sink: %v\n%s", err, o)
	}

	follow := exec.Command(bin, "jobs", "output", "echo", "--follow", "--server", url)
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
