package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// TestCLIWordsStreams: the streams subcommands name a request field the
// server refuses as the argument or flag the user gave, never the API's
// field name.
func TestCLIWordsStreams(t *testing.T) {
	srv, env := startCLIServer(t)
	srv.CreateStream("s", 2)
	cases := []struct {
		args []string
		want string // on stderr
		not  string // API words that must not show
	}{
		{[]string{"streams", "merge", "s", "0", "7"},
			`ADJACENT_SHARD 7: stream "s" has no shard "shardId-000000000007" ('runnel streams describe s' lists its shards)`, "adjacent_shard"},
		{[]string{"streams", "merge", "s", "7", "0"}, `SHARD 7: stream "s" has no shard`, ": shard: "},
		{[]string{"streams", "split", "s", "9"}, `SHARD 9: stream "s" has no shard "shardId-000000000009" ('runnel streams describe s'`, ": shard: "},
		{[]string{"streams", "split", "s", "9", "--at", "5"}, `SHARD 9: stream "s" has no shard`, ": shard: "},
		{[]string{"streams", "split", "s", "0", "--at", "abc"}, `--at: "abc" is not a decimal integer`, "new_starting_hash_key"},
		{[]string{"streams", "create", "s"}, `NAME: stream "s" already exists`, ": name: "},
		{[]string{"streams", "create", "a b"}, `NAME: "a b" must be`, ": name: "},
	}
	for _, c := range cases {
		out, e, code := testbin.Run(t, "", env, c.args...)
		if code != 1 || out != "" || !strings.Contains(e, c.want) || strings.Contains(e, c.not) {
			t.Errorf("runnel %q: exit %d, stdout %q, stderr %q; want exit 1 and stderr to say %q, not %q", c.args, code, out, e, c.want, c.not)
		}
	}
}

// TestCLIWordsJobsAndLists: refusing to delete a running job names only the
// command that stops it; an empty list says it is empty instead of printing
// a bare header.
func TestCLIWordsJobsAndLists(t *testing.T) {
	srv, env := startCLIServer(t)
	srv.CreateStream("s", 1)
	lists := []struct {
		args []string
		want string
	}{
		{[]string{"jobs", "list"}, "no jobs: submit one with 'runnel jobs submit FILE'"},
		{[]string{"groups", "list", "s"}, "stream s has no consumer groups: create one with 'runnel groups create s GROUP'"},
	}
	for _, l := range lists {
		if out, e, code := testbin.Run(t, "", env, l.args...); code != 0 || strings.TrimSpace(out) != l.want {
			t.Errorf("runnel %q: exit %d, stdout %q, stderr %q; want exit 0 and stdout %q", l.args, code, out, e, l.want)
		}
	}
	file := filepath.Join(t.TempDir(), "g.yaml")
	if err := os.WriteFile(file, []byte("name: g\nsource: {generator: {rate: 10}}\nsinks:\n  - {id: out, log: {}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := srv.CLI("jobs", "submit", file); err != nil {
		t.Fatalf("jobs submit: %v\n%s", err, out)
	}
	out, e, code := testbin.Run(t, "", env, "jobs", "delete", "g")
	if want := "stop it first ('runnel jobs stop g'), then delete it"; code != 1 || out != "" || !strings.Contains(e, want) || strings.Contains(e, "/api/") {
		t.Errorf("jobs delete of a running job: exit %d, stdout %q, stderr %q; want exit 1 and only %q", code, out, e, want)
	}
	// The job has just started: its first checkpoint may or may not be
	// taken. The list is either a header with rows or the line saying
	// there are none, never a header alone.
	out, e, code = testbin.Run(t, "", env, "jobs", "checkpoints", "g")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 ||
		!(out == "job g has no checkpoints\n" || strings.HasPrefix(out, "EPOCH") && len(lines) > 1) {
		t.Errorf("jobs checkpoints g: exit %d, stdout %q, stderr %q", code, out, e)
	}
	if out, err := srv.CLI("jobs", "stop", "g"); err != nil {
		t.Fatalf("jobs stop: %v\n%s", err, out)
	}
	if out, err := srv.CLI("jobs", "list"); err != nil || !strings.HasPrefix(out, "ID") || !strings.Contains(out, "\ng ") {
		t.Errorf("jobs list with a job: %v\n%s", err, out)
	}
}

// TestCLIWordsTokensAuthOff: creating a token through a server with auth
// off works and says on stderr that the server does not check tokens; with
// auth on it says nothing of the kind.
func TestCLIWordsTokensAuthOff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	const warning = "has auth off: it does not check tokens"
	off := testbin.Start(t, testbin.Options{})
	defer off.Kill()
	out, e, code := testbin.Run(t, "", []string{"RUNNEL_SERVER=" + off.URL}, "tokens", "create", "ci", "--role", "admin")
	if code != 0 || !strings.HasPrefix(out, "rnl_") || !strings.Contains(e, warning) || !strings.Contains(e, "--auth (see docs/security.md") ||
		!strings.Contains(e, "token ci (role admin) created") {
		t.Errorf("tokens create on a server with auth off: exit %d, stdout %q, stderr %q", code, out, e)
	}

	data := t.TempDir()
	admin, e, code := testbin.Run(t, "", nil, "tokens", "create", "adm", "--role", "admin", "--data", data)
	if code != 0 {
		t.Fatalf("tokens create --data: exit %d: %s", code, e)
	}
	admin = strings.TrimSpace(strings.SplitN(admin, "\n", 2)[0])
	on := testbin.Start(t, testbin.Options{Data: data, Flags: []string{"--auth"}, Token: admin})
	defer on.Kill()
	out, e, code = testbin.Run(t, "", []string{"RUNNEL_SERVER=" + on.URL, "RUNNEL_TOKEN=" + admin}, "tokens", "create", "ci", "--role", "reader")
	if code != 0 || !strings.HasPrefix(out, "rnl_") || strings.Contains(e, warning) {
		t.Errorf("tokens create on a server with auth on: exit %d, stdout %q, stderr %q", code, out, e)
	}
}
