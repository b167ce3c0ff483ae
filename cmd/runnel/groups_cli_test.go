package main

import (
	"strings"
	"testing"
)

// TestCLIGroups drives `runnel groups` against a real server: create,
// list, describe (table and JSON), delete, and the errors a user meets
// (bad name, missing group, missing arguments), each naming what is wrong.
func TestCLIGroups(t *testing.T) {
	_, env := startCLIServer(t)
	if _, e, c := runCLI(t, env, "streams", "create", "s", "--shards", "2"); c != 0 {
		t.Fatalf("create stream: %d %s", c, e)
	}
	if o, e, c := runCLI(t, env, "groups", "create", "s", "billing", "--lease-duration", "2s", "--start", "latest"); c != 0 || !strings.Contains(o, "created consumer group billing") {
		t.Fatalf("create: %d %s %s", c, o, e)
	}
	if o, e, c := runCLI(t, env, "groups", "list", "s"); c != 0 || !strings.Contains(o, "billing") || !strings.Contains(o, "latest") {
		t.Fatalf("list: %d %s %s", c, o, e)
	}
	if o, e, c := runCLI(t, env, "groups", "describe", "s", "billing"); c != 0 || strings.Count(o, "shardId-") != 2 {
		t.Fatalf("describe: %d %s %s", c, o, e)
	}
	if o, e, c := runCLI(t, env, "groups", "describe", "s", "billing", "--json"); c != 0 || !strings.Contains(o, `"lease_duration_ms":2000`) {
		t.Fatalf("describe --json: %d %s %s", c, o, e)
	}
	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"groups", "create", "s", "a b"}, `name "a b" must be`},
		{[]string{"groups", "create", "s", "x", "--start", "middle"}, `start "middle"`},
		{[]string{"groups", "describe", "s", "nope"}, `no consumer group "nope"`},
		{[]string{"groups", "create", "nope", "g"}, `nope`},
		{[]string{"groups", "delete", "s"}, "expected STREAM GROUP"},
		{[]string{"consume", "s"}, "--group is required"},
		{[]string{"consume", "s", "--group", "g", "--kinesis-endpoint", "http://127.0.0.1:1"}, "needs --leases-postgres"},
	} {
		if _, e, c := runCLI(t, env, bad.args...); c == 0 || !strings.Contains(e, bad.want) {
			t.Errorf("%v: exit %d, stderr %q, want it to say %q", bad.args, c, e, bad.want)
		}
	}
	if o, e, c := runCLI(t, env, "groups", "delete", "s", "billing"); c != 0 || !strings.Contains(o, "deleted") {
		t.Fatalf("delete: %d %s %s", c, o, e)
	}
	if o, _, _ := runCLI(t, env, "groups", "list", "s"); strings.Contains(o, "billing") {
		t.Fatalf("list after delete: %s", o)
	}
	for _, args := range [][]string{{"groups", "--help"}, {"consume", "--help"}, {"groups", "describe", "--help"}} {
		if o, e, c := runCLI(t, env, args...); c != 0 || !strings.Contains(o, "Usage: runnel") || e != "" {
			t.Errorf("%v: exit %d, %q", args, c, e)
		}
	}
}
