package auth

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestStoreCreateRevoke(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Create("ci", Writer, []string{"clicks-*"}, true)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(c.Secret, tokenPrefix) || len(c.AccessKeyID) != 20 || len(c.SecretAccessKey) != 40 {
		t.Fatalf("created %+v", c)
	}
	p, ok := s.Bearer(c.Secret)
	if !ok || p.Name != "ci" || p.Role != Writer || !p.CanStream("clicks-eu") || p.CanStream("orders") {
		t.Fatalf("bearer: %+v %v", p, ok)
	}
	if _, ok := s.Bearer(c.Secret + "x"); ok {
		t.Fatal("a wrong token authenticated")
	}
	p2, secret, ok := s.AccessKey(c.AccessKeyID)
	if !ok || p2.Name != "ci" || secret != c.SecretAccessKey {
		t.Fatalf("access key: %+v %q %v", p2, secret, ok)
	}
	if _, err := s.Create("ci", Reader, nil, false); err == nil {
		t.Fatal("a second token named ci was created")
	}
	// Only hashes and key ids are on disk.
	b, err := os.ReadFile(filepath.Join(dir, tokensFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), c.Secret) || strings.Contains(string(b), c.SecretAccessKey) {
		t.Fatalf("tokens.json holds a secret:\n%s", b)
	}
	var f struct{ Tokens []map[string]any }
	if err := json.Unmarshal(b, &f); err != nil || len(f.Tokens) != 1 || f.Tokens[0]["sha256"] != c.Hash {
		t.Fatalf("tokens.json: %v\n%s", err, b)
	}
	if fi, err := os.Stat(filepath.Join(dir, keyFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("auth.key: %v %v", fi, err)
	}
	if err := s.Revoke("ci"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Bearer(c.Secret); ok {
		t.Fatal("a revoked token authenticated")
	}
	if _, _, ok := s.AccessKey(c.AccessKeyID); ok {
		t.Fatal("a revoked access key authenticated")
	}
	if err := s.Revoke("ci"); err == nil {
		t.Fatal("revoking a missing token succeeded")
	}
}

// TestStoreSeesOtherProcess checks that a server notices tokens created and
// revoked by `runnel tokens ... --data` (another Store on the same
// directory) without a restart.
func TestStoreSeesOtherProcess(t *testing.T) {
	server, cli := twoStores(t)
	c, err := cli.Create("late", Admin, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	server.lastCheck.Store(time.Now().Add(-2 * reloadEvery).UnixNano())
	if _, ok := server.Bearer(c.Secret); !ok {
		t.Fatal("the server did not see a token created by another process")
	}
	if _, sec, ok := server.AccessKey(c.AccessKeyID); !ok || sec != c.SecretAccessKey {
		t.Fatal("the server derives another AWS secret than the creating process")
	}
	if err := cli.Revoke("late"); err != nil {
		t.Fatal(err)
	}
	server.lastCheck.Store(time.Now().Add(-2 * reloadEvery).UnixNano())
	if _, ok := server.Bearer(c.Secret); ok {
		t.Fatal("the server still accepts a token revoked by another process")
	}
}

func TestStoreRejects(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		role    Role
		streams []string
	}{
		{"", Reader, nil},
		{"Upper", Reader, nil},
		{"a/b", Reader, nil},
		{"ok", None, nil},
		{"ok", Reader, []string{"[unclosed"}},
		{"ok", Reader, []string{"a b"}},
		{"ok", Reader, []string{""}},
	} {
		if _, err := s.Create(tc.name, tc.role, tc.streams, false); err == nil {
			t.Errorf("Create(%q, %v, %q) succeeded", tc.name, tc.role, tc.streams)
		}
	}
}

func TestSessions(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.Create("ui", Reader, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	ss := NewSessions(s)
	if _, _, err := ss.Start("rnl_wrong"); err == nil {
		t.Fatal("a wrong token started a session")
	}
	id, p, err := ss.Start(c.Secret)
	if err != nil || p.Name != "ui" {
		t.Fatal(err, p)
	}
	if id == c.Secret || strings.Contains(id, c.Secret) {
		t.Fatal("the session id is the token")
	}
	if p, ok := ss.Get(id); !ok || p.Name != "ui" {
		t.Fatal("session not found")
	}
	now := time.Now()
	ss.now = func() time.Time { return now.Add(SessionTTL + time.Minute) }
	if _, ok := ss.Get(id); ok {
		t.Fatal("an expired session is valid")
	}
	ss.now = time.Now
	id, _, _ = ss.Start(c.Secret)
	if err := s.Revoke("ui"); err != nil {
		t.Fatal(err)
	}
	if _, ok := ss.Get(id); ok {
		t.Fatal("a session outlived its token's revocation")
	}
}

func TestRoleAndGrants(t *testing.T) {
	p := &Principal{Name: "x", Role: Writer, Streams: []string{"logs-*", "orders"}}
	for name, want := range map[string]bool{"logs-a": true, "logs-": true, "orders": true, "orders2": false, "log": false} {
		if got := p.CanStream(name); got != want {
			t.Errorf("CanStream(%q) = %v, want %v", name, got, want)
		}
	}
	if !p.Can(Reader) || !p.Can(Writer) || p.Can(Admin) {
		t.Error("role order")
	}
	var nobody *Principal
	if nobody.Can(Reader) || nobody.CanStream("x") {
		t.Error("nil principal can")
	}
}

// TestStoreSeesNewTokenAtOnce: a token another process created works at
// its first use, also when the server looked at the file a moment before
// (a user signing in right after 'runnel tokens create --data').
func TestStoreSeesNewTokenAtOnce(t *testing.T) {
	server, cli := twoStores(t)
	if _, ok := server.Bearer("rnl_unknown"); ok {
		t.Fatal("an unknown token authenticated")
	}
	server.lastCheck.Store(time.Now().UnixNano())
	c, err := cli.Create("quick", Reader, nil, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := server.Bearer(c.Secret); !ok {
		t.Fatal("a token created by another process a moment ago was refused")
	}
	if _, _, ok := server.AccessKey(c.AccessKeyID); !ok {
		t.Fatal("an AWS key created by another process a moment ago was refused")
	}
}

// twoStores opens two stores on one directory: a server's and that of
// 'runnel tokens ... --data' in another process.
func twoStores(t *testing.T) (server, cli *Store) {
	t.Helper()
	dir := t.TempDir()
	server, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	cli, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	return server, cli
}
