package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// TestCLIStreams drives the stream commands against a real server: create,
// put (with --key-field), tail (text and json), split, describe, errors.
func TestCLIStreams(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	srv := testbin.Start(t, testbin.Options{})
	defer srv.Kill()
	run := func(stdin string, args ...string) (string, string, int) {
		return testbin.Run(t, stdin, []string{"RUNNEL_SERVER=" + srv.URL}, args...)
	}
	if _, e, c := run("", "streams", "create", "clicks", "--shards", "2"); c != 0 {
		t.Fatalf("create: %d %s", c, e)
	}
	lines := `{"user":"u1","n":1}
{"user":"u2","n":2}
{"user":"u1","n":3}
`
	if _, e, c := run(lines, "put", "clicks", "--key-field", "user"); c != 0 || !strings.Contains(e, "put 3 records") {
		t.Fatalf("put: %d %s", c, e)
	}
	out, e, c := run("", "tail", "clicks")
	if c != 0 {
		t.Fatalf("tail: %d %s", c, e)
	}
	got := strings.Split(strings.TrimSpace(out), "\n")
	if len(got) != 3 {
		t.Fatalf("tail printed %q", out)
	}
	// u1's records keep their order.
	if i1, i3 := strings.Index(out, `"n":1`), strings.Index(out, `"n":3`); i1 < 0 || i3 < i1 {
		t.Fatalf("per-key order lost: %q", out)
	}
	out, _, _ = run("", "tail", "clicks", "--format", "json")
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil || m["shard"] == nil || m["sequence_number"] == nil || m["key"] == nil || m["arrival"] == nil {
			t.Fatalf("tail --format json line %q", l)
		}
	}
	if _, e, c := run("", "streams", "split", "clicks", "0"); c != 0 {
		t.Fatalf("split: %d %s", c, e)
	}
	out, _, _ = run("", "streams", "describe", "clicks")
	if !strings.Contains(out, "open shards 3") || !strings.Contains(out, "closed") {
		t.Fatalf("describe after split:\n%s", out)
	}
	// The new children hold no records yet: "none", not a range such as 1..0.
	if !strings.Contains(out, " none ") || strings.Contains(out, "1..0") {
		t.Fatalf("describe after split shows empty children wrongly:\n%s", out)
	}
	// Records put after the split land in the children; tail still prints all.
	run(`{"user":"u1","n":4}`+"\n", "put", "clicks", "--key-field", "user")
	out, _, _ = run("", "tail", "clicks")
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 4 {
		t.Fatalf("tail after split printed %d records:\n%s", n, out)
	}
	if i3, i4 := strings.Index(out, `"n":3`), strings.Index(out, `"n":4`); i4 < i3 {
		t.Fatalf("a child shard was read before its parent:\n%s", out)
	}
	// Errors: clear messages and exit codes, nothing written.
	for _, c := range []struct {
		args []string
		in   string
		code int
		msg  string
	}{
		{[]string{"streams", "create", "bad/name"}, "", 1, "must be 1-128 characters"},
		{[]string{"streams", "create"}, "", 2, "expected NAME"},
		{[]string{"put", "nope"}, "x\n", 1, "does not exist"},
		{[]string{"put", "clicks", "--key-field", "user"}, "not json\n", 1, "line 1"},
		{[]string{"tail", "clicks", "--from", "middle"}, "", 2, "--from"},
		{[]string{"streams", "merge", "clicks", "1", "2"}, "", 1, "not adjacent"},
		{[]string{"streams", "merge", "clicks", "0", "2"}, "", 1, "closed"},
	} {
		_, e, code := run(c.in, c.args...)
		if code != c.code || !strings.Contains(e, c.msg) {
			t.Errorf("%v: exit %d %q, want %d containing %q", c.args, code, e, c.code, c.msg)
		}
	}
	out, _, _ = run("", "tail", "clicks")
	if n := len(strings.Split(strings.TrimSpace(out), "\n")); n != 4 {
		t.Fatalf("failed commands wrote records: %d now", n)
	}
}
