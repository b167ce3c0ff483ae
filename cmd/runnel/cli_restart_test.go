package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestCLIJobsGetShowsRestart: a failed job whose restart strategy waits
// for its next attempt says so in `runnel jobs get`, with the attempt and
// its time.
func TestCLIJobsGetShowsRestart(t *testing.T) {
	srv := testbin.Start(t, testbin.Options{})
	defer srv.Kill()
	job := filepath.Join(t.TempDir(), "boom.yaml")
	os.WriteFile(job, []byte("name: boom\nsource:\n  generator: {rate: 100}\noperators:\n"+
		"  - {id: m, map: \"r => { throw new Error('boom') }\"}\nsinks:\n  - {id: o, log: {}}\n"+
		"restart: {strategy: fixed-delay, delay: 1h, attempts: 3}\n"), 0o644)
	if o, err := srv.CLI("jobs", "submit", job); err != nil {
		t.Fatalf("submit: %v %s", err, o)
	}
	var out string
	if !testutil.Within(30*time.Second, func() bool {
		out, _ = srv.CLI("jobs", "get", "boom")
		return strings.Contains(out, "restarting:")
	}) {
		t.Fatalf("jobs get of the failed job never said it restarts:\n%s", out)
	}
	if !strings.Contains(out, "state failed") || !strings.Contains(out, "restarting: attempt 1 of 3 at 20") {
		t.Fatalf("jobs get:\n%s", out)
	}
}
