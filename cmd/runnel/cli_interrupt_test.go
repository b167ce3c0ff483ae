package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestCLIInterruptExitsZero holds every command that runs until the user
// stops it to one rule: an interrupt (Ctrl-C, SIGINT) stops it cleanly and
// it exits 0. Each runs as the built binary, is seen to be at work (its
// output, or its records in a stream), and then gets a real SIGINT.
func TestCLIInterruptExitsZero(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	srv := testbin.Start(t, testbin.Options{})
	defer srv.Kill()
	srv.CreateStream("s", 1)
	srv.CreateStream("logs", 1)
	if out, err := srv.CLIInput("hello\n", "put", "s"); err != nil {
		t.Fatalf("put: %v\n%s", err, out)
	}
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	endless := write("g.yaml", "name: g\nsource: {generator: {rate: 100}}\nsinks:\n  - {id: rows, log: {}}\n")
	if out, err := srv.CLI("jobs", "submit", endless); err != nil {
		t.Fatalf("jobs submit: %v\n%s", err, out)
	}
	agentConfig := write("agent.yaml", "server: "+srv.URL+"\ncheckpoint: "+filepath.Join(dir, "agent.checkpoints")+
		"\nflows:\n  - {files: "+write("app.log", "line one\n")+", stream: logs, format: text}\n")
	inStream := func(stream, text string) func(string) bool {
		return func(string) bool {
			out, _ := srv.CLI("tail", stream)
			return strings.Contains(out, text)
		}
	}
	onStdout := func(text string) func(string) bool {
		return func(stdout string) bool { return strings.Contains(stdout, text) }
	}
	serveAddr := freeAddr(t)
	for _, c := range []struct {
		args    []string
		working func(stdout string) bool
	}{
		{[]string{"tail", "s", "--follow", "--server", srv.URL}, onStdout("hello\n")},
		{[]string{"tail", "s", "--follow", "--format", "json", "--server", srv.URL}, onStdout(`"data":"hello"`)},
		{[]string{"jobs", "output", "g", "--follow", "--server", srv.URL}, onStdout("}\n")},
		{[]string{"consume", "s", "--group", "g", "--server", srv.URL}, onStdout(`"data":"hello"`)},
		{[]string{"run", endless}, onStdout("rows: ")},
		{[]string{"agent", "--config", agentConfig}, inStream("logs", "line one")},
		{[]string{"serve", "--data", filepath.Join(dir, "data"), "--addr", serveAddr}, func(string) bool {
			_, _, code := testbin.Run(t, "", nil, "streams", "list", "--server", "http://"+serveAddr)
			return code == 0
		}},
	} {
		cmd := exec.Command(testbin.Runnel(t), c.args...)
		var out, errb testutil.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		for i := 0; !c.working(out.String()); i++ {
			if i == 600 {
				cmd.Process.Kill()
				t.Fatalf("runnel %q never got to work; stdout:\n%s\nstderr:\n%s", c.args, testutil.Tail(out.String(), 1000), testutil.Tail(errb.String(), 2000))
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Fatal(err)
		}
		var err error
		select {
		case err = <-done:
		case <-time.After(2 * time.Minute):
			cmd.Process.Kill()
			t.Fatalf("runnel %q did not end after an interrupt; stderr:\n%s", c.args, testutil.Tail(errb.String(), 2000))
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Errorf("runnel %q after an interrupt: %v (exit %d), want exit 0; stderr:\n%s", c.args, err, ee.ExitCode(), testutil.Tail(errb.String(), 2000))
		} else if err != nil {
			t.Fatal(err)
		}
	}
}
