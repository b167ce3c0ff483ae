package main

import (
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testbin"
)

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// exitCode is the exit code of a command that ended with err (0 for
// nil); an error other than an exit (the command did not run) fails the
// test.
func exitCode(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return 0
}

// needAWSCLI skips the test where the AWS CLI is not installed, and
// fails it in CI, which installs it.
func needAWSCLI(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("aws"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("the AWS CLI is not installed (.ci/run installs Debian's awscli)")
		}
		t.Skip("the AWS CLI is not installed")
	}
}

// exampleJob reads the example job file at path (relative to this
// package) with each old string of oldnew replaced by the new one after
// it (strings.NewReplacer's pairs): an example pointed at the test's
// servers.
func exampleJob(t *testing.T, path string, oldnew ...string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.NewReplacer(oldnew...).Replace(string(b))
}

// startCLIServer starts the real binary's server for a test of the CLI
// against it (skipped in -short mode) and returns it with the
// environment that points the CLI at it.
func startCLIServer(t *testing.T) (*testbin.Server, []string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	srv := testbin.Start(t, testbin.Options{})
	return srv, []string{"RUNNEL_SERVER=" + srv.URL}
}
