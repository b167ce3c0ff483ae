package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// readmeCommands returns the shell lines of the README's first sh block
// under heading, as a user would paste them.
func readmeCommands(t *testing.T, readme, heading string) []string {
	t.Helper()
	_, rest, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README has no %q section", heading)
	}
	_, rest, ok = strings.Cut(rest, "```sh\n")
	if !ok {
		t.Fatalf("README's %q section has no sh block", heading)
	}
	block, _, _ := strings.Cut(rest, "```")
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(block), "\n") {
		out = append(out, strings.TrimSpace(l))
	}
	return out
}

// TestREADMEQuickstart runs the README's stream-log and jobs commands
// exactly as written (bin/runnel and runnel are the binary under test;
// RUNNEL_SERVER points at a real server), from the repository root, and
// checks each produces what the README says.
func TestREADMEQuickstart(t *testing.T) {
	bin := runnelBinary(t)
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	srv := testbin.Start(t, testbin.Options{})
	root, _ := filepath.Abs("../..")
	binDir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(binDir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(binDir, "bin", "runnel")); err != nil {
		t.Fatal(err)
	}
	sh := func(line string) string {
		t.Helper()
		// bin/runnel is the repository's build; runnel the one on PATH.
		line = strings.ReplaceAll(line, "bin/runnel ", filepath.Join(binDir, "bin", "runnel")+" ")
		cmd := exec.Command("sh", "-c", line)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "PATH="+filepath.Join(binDir, "bin")+":"+os.Getenv("PATH"), "RUNNEL_SERVER="+srv.URL)
		o, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, o)
		}
		return string(o)
	}
	outputs := map[string]string{}
	for _, l := range readmeCommands(t, string(readme), "## Using the stream log") {
		outputs[l] = sh(l)
	}
	var tail string
	for l, o := range outputs {
		if strings.HasPrefix(l, "runnel tail") {
			tail = o
		}
	}
	if strings.Count(tail, `"shard"`) != 2 || !strings.Contains(tail, `/cart`) {
		t.Fatalf("runnel tail printed:\n%s", tail)
	}
	jobsCmds := readmeCommands(t, string(readme), "## Jobs")
	for _, l := range jobsCmds {
		if strings.Contains(l, "jobs output") {
			// The rows come as the job reads the stream.
			line := strings.Split(l, "#")[0]
			var o string
			testutil.Within(30*time.Second, func() bool {
				o = sh(line)
				return strings.Count(o, "\n") >= 2
			})
			for _, row := range strings.Split(strings.TrimSpace(o), "\n") {
				var v map[string]any
				if err := json.Unmarshal([]byte(row), &v); err != nil || v["section"] == nil {
					t.Fatalf("%s printed %q: want rows with a section", line, row)
				}
			}
			continue
		}
		o := sh(l)
		switch {
		case strings.Contains(l, "run examples/page-views.yaml") && !strings.Contains(o, `"views":`):
			t.Fatalf("%s printed no windows:\n%s", l, o)
		case strings.Contains(l, "jobs list") && !strings.Contains(o, "running"):
			t.Fatalf("%s:\n%s", l, o)
		}
	}
}
