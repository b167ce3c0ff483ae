package main

import (
	"bytes"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// readmeSection returns the shell lines of every sh block of the README
// section under heading (up to the next "## " heading), block by block.
func readmeSection(t *testing.T, readme, heading string) [][]string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q section", heading)
	}
	section, _, _ := strings.Cut(rest, "\n## ")
	var blocks [][]string
	for {
		var block string
		_, section, ok = strings.Cut(section, "```sh\n")
		if !ok {
			return blocks
		}
		block, section, _ = strings.Cut(section, "```")
		var lines []string
		for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
			lines = append(lines, strings.TrimSpace(l))
		}
		blocks = append(blocks, lines)
	}
}

// TestREADMEMakeRun runs the README's Quickstart as a new user would:
// `make run` from the repository root (with DATA and ADDR pointed at a
// temporary directory and a free port, the Makefile's own variables),
// then the demo's commands, the web UI's page, and the Kinesis API
// section's commands with the AWS CLI, each as written but for the
// address. (`make test` is the command running this test.)
func TestREADMEMakeRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts the server with make")
	}
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	root, _ := filepath.Abs("../..")
	quick := readmeSection(t, string(readme), "## Quickstart")
	if len(quick) != 2 || !strings.HasPrefix(quick[0][0], "make run ") {
		t.Fatalf("README's Quickstart: want a block starting with make run and the demo's block, got %q", quick)
	}
	addr := freeAddr(t)
	url := "http://" + addr
	local := func(line string) string { return strings.ReplaceAll(line, "127.0.0.1:7070", addr) }

	run := strings.Fields(strings.Split(quick[0][0], "#")[0])
	run = append(run[1:], "DATA="+t.TempDir(), "ADDR="+addr)
	mk := exec.Command("make", run...)
	mk.Dir = root
	var log bytes.Buffer
	mk.Stdout, mk.Stderr = &log, &log
	mk.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := mk.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		syscall.Kill(-mk.Process.Pid, syscall.SIGTERM)
		mk.Wait()
	})
	home := t.TempDir()
	sh := func(line string) (string, error) {
		cmd := exec.Command("sh", "-c", local(line))
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "RUNNEL_SERVER="+url, "HOME="+home)
		o, err := cmd.CombinedOutput()
		return string(o), err
	}
	up := testutil.Within(3*time.Minute, func() bool {
		r, err := http.Get(url + "/")
		if err != nil {
			return false
		}
		r.Body.Close()
		return r.StatusCode == http.StatusOK
	})
	if !up {
		t.Fatalf("make run: the UI at %s/ did not answer 200:\n%s", url, log.String())
	}

	for _, line := range quick[1] {
		var out string
		var err error
		// The demo's windows come every five seconds of its clock.
		ok := testutil.Within(time.Minute, func() bool {
			out, err = sh(line)
			switch {
			case err != nil:
				return false
			case strings.Contains(line, "jobs get demo"):
				return strings.Contains(out, "state running") && strings.Contains(out, "detect")
			case strings.Contains(line, "/results?format=json"):
				return strings.HasPrefix(out, `[{"window_start":`) && strings.Contains(out, `"anomaly_score":`)
			}
			return true
		})
		if !ok {
			t.Fatalf("%s: %v\n%s\nserver:\n%s", local(line), err, out, log.String())
		}
	}

	kinesis := readmeSection(t, string(readme), "## The Kinesis API")
	if len(kinesis) != 1 {
		t.Fatalf("README's Kinesis API section: want one sh block, got %q", kinesis)
	}
	needAWSCLI(t)
	if out, err := sh(strings.Join(kinesis[0], "\n")); err != nil {
		t.Fatalf("%s: %v\n%s", local(strings.Join(kinesis[0], "\n")), err, out)
	}
	out, err := sh("bin/runnel streams describe clicks")
	if err != nil || !strings.Contains(out, "shardId-000000000001") {
		t.Fatalf("after the README's aws create-stream, streams describe clicks: %v\n%s", err, out)
	}
}
