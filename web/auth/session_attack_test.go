package auth

import (
	"testing"
	"time"
)

// TestSessionFloodKeepsOthers: the holder of one token signing in far more
// often than the session table holds pushes out only its own sessions:
// another user's session stays valid, and the flooder keeps its newest
// maxSessionsPerToken.
func TestSessionFloodKeepsOthers(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	admin, err := s.Create("admin", Admin, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	flooder, err := s.Create("flooder", Reader, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	ss := NewSessions(s)
	// A clock that moves on at each sign-in, so that "least recently
	// used" is well defined.
	now := time.Now()
	ss.now = func() time.Time { now = now.Add(time.Millisecond); return now }
	mine, _, err := ss.Start(admin.Secret)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for range maxSessions + 500 {
		id, _, err := ss.Start(flooder.Secret)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	if p, ok := ss.Get(mine); !ok || p.Name != "admin" {
		t.Fatalf("the admin's session ended after another token signed in %d times", len(ids))
	}
	for i, id := range ids {
		_, ok := ss.Get(id)
		if want := i >= len(ids)-maxSessionsPerToken; ok != want {
			t.Fatalf("flooder's sign-in %d of %d: valid %v, want %v", i, len(ids), ok, want)
		}
	}
	ss.mu.Lock()
	n := len(ss.mu.m)
	ss.mu.Unlock()
	if n != maxSessionsPerToken+1 {
		t.Fatalf("%d sessions held, want %d", n, maxSessionsPerToken+1)
	}
}
