package main

import (
	"strings"
	"testing"
)

// TestTokensUsage checks the tokens command's mistakes: a clear message
// and exit code 2 for usage, 1 for a failed action, and nothing printed on
// stdout.
func TestTokensUsage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary; skipped in -short mode")
	}
	data := t.TempDir()
	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"tokens"}, 2, "name a subcommand"},
		{[]string{"tokens", "mint"}, 2, "unknown subcommand"},
		{[]string{"tokens", "create", "x", "--role", "boss", "--data", data}, 2, "--role must be admin, writer or reader"},
		{[]string{"tokens", "create", "--role", "admin", "--data", data}, 2, "expected a token NAME"},
		{[]string{"tokens", "create", "Bad/Name", "--role", "admin", "--data", data}, 1, "token name"},
		{[]string{"tokens", "create", "x", "--role", "reader", "--streams", "[oops", "--data", data}, 1, "stream pattern"},
		{[]string{"tokens", "revoke", "nobody", "--data", data}, 1, "not found"},
		{[]string{"tokens", "list", "--data", data + "/missing"}, 1, "data directory"},
	} {
		out, e, code := runCLI(t, nil, tc.args...)
		if code != tc.code || !strings.Contains(e, tc.msg) || out != "" {
			t.Errorf("runnel %s: exit %d, stdout %q, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, out, e, tc.code, tc.msg)
		}
	}
}

// TestTokensCreateMakesDataDir: the first token of a server that has not
// run yet can be made before it starts (docs/security.md's "Turning auth
// on" does so): create makes the missing data directory and says so, and
// the token is there for list; list and revoke still refuse a missing one.
func TestTokensCreateMakesDataDir(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary; skipped in -short mode")
	}
	data := t.TempDir() + "/new/data"
	out, e, code := runCLI(t, nil, "tokens", "create", "alice", "--role", "admin", "--data", data)
	if code != 0 || !strings.HasPrefix(out, "rnl_") || !strings.Contains(e, "created the data directory "+data) {
		t.Fatalf("tokens create in a missing data directory: exit %d, stdout %q, stderr %q", code, out, e)
	}
	out, e, code = runCLI(t, nil, "tokens", "list", "--data", data)
	if code != 0 || !strings.Contains(out, "alice") {
		t.Fatalf("tokens list after create: exit %d, stdout %q, stderr %q", code, out, e)
	}
	out, e, code = runCLI(t, nil, "tokens", "create", "bob", "--role", "reader", "--data", data)
	if code != 0 || strings.Contains(e, "created the data directory") {
		t.Fatalf("tokens create in an existing data directory: exit %d, stdout %q, stderr %q", code, out, e)
	}
}
