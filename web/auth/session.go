package auth

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// SessionTTL is how long a web UI session lasts without use.
const SessionTTL = 12 * time.Hour

// maxSessions bounds the session table: signing in more often than this
// drops the least recently used sessions.
const maxSessions = 10000

// maxSessionsPerToken bounds the sessions of one token: its sign-ins past
// it drop that token's own least recently used session, so that a holder
// of one token cannot sign in often enough to push everyone else's
// sessions out of the table.
const maxSessionsPerToken = 100

// Sessions are the web UI's sign-ins: a random id (the cookie) standing for
// a token, kept in memory only, so a restart signs everyone out. A session
// stores the token's hash, not the token, and ends when the token is
// revoked.
type Sessions struct {
	store *Store
	now   func() time.Time
	mu    struct {
		sync.Mutex
		m map[string]*session
	}
}

type session struct {
	hash string
	seen time.Time
}

// NewSessions makes an empty session table over store.
func NewSessions(store *Store) *Sessions {
	s := &Sessions{store: store, now: time.Now}
	s.mu.m = map[string]*session{}
	return s
}

// Start signs in with a bearer token and returns the session id.
func (s *Sessions) Start(token string) (string, *Principal, error) {
	p, ok := s.store.Bearer(token)
	if !ok {
		return "", nil, ErrBadCredentials
	}
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", nil, err
	}
	id := base64.RawURLEncoding.EncodeToString(b[:])
	now := s.now()
	hash := HashToken(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.evictOwnLocked(hash)
	if len(s.mu.m) >= maxSessions {
		s.evictLocked(now)
	}
	s.mu.m[id] = &session{hash: hash, seen: now}
	return id, p, nil
}

// evictOwnLocked drops the least recently used session of the token whose
// hash is hash when it has maxSessionsPerToken.
func (s *Sessions) evictOwnLocked(hash string) {
	n := 0
	var oldest string
	var oldestSeen time.Time
	for id, ss := range s.mu.m {
		if ss.hash != hash {
			continue
		}
		n++
		if oldest == "" || ss.seen.Before(oldestSeen) {
			oldest, oldestSeen = id, ss.seen
		}
	}
	if n >= maxSessionsPerToken {
		delete(s.mu.m, oldest)
	}
}

// evictLocked drops expired sessions, and if none were, the oldest.
func (s *Sessions) evictLocked(now time.Time) {
	var oldest string
	var oldestSeen time.Time
	for id, ss := range s.mu.m {
		if now.Sub(ss.seen) > SessionTTL {
			delete(s.mu.m, id)
			continue
		}
		if oldest == "" || ss.seen.Before(oldestSeen) {
			oldest, oldestSeen = id, ss.seen
		}
	}
	if len(s.mu.m) >= maxSessions {
		delete(s.mu.m, oldest)
	}
}

// Get returns who a session id stands for, if the session and its token
// are still valid.
func (s *Sessions) Get(id string) (*Principal, bool) {
	now := s.now()
	s.mu.Lock()
	ss, ok := s.mu.m[id]
	if ok && now.Sub(ss.seen) > SessionTTL {
		delete(s.mu.m, id)
		ok = false
	}
	var hash string
	if ok {
		ss.seen = now
		hash = ss.hash
	}
	s.mu.Unlock()
	if !ok {
		return nil, false
	}
	p, ok := s.store.ByHash(hash)
	if !ok {
		s.End(id)
	}
	return p, ok
}

// End signs a session out.
func (s *Sessions) End(id string) {
	s.mu.Lock()
	delete(s.mu.m, id)
	s.mu.Unlock()
}
