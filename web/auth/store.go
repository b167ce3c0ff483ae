package auth

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/internal/atomicfile"
	"github.com/runnel-dev/runnel/internal/flock"
)

// Errors of the token store.
var (
	ErrTokenExists   = errors.New("auth: token exists")
	ErrTokenNotFound = errors.New("auth: token not found")
	ErrInvalid       = errors.New("auth: invalid")
)

// Token is one stored token: never its secret, only what identifies and
// limits it.
type Token struct {
	Name    string    `json:"name"`
	Role    Role      `json:"role"`
	Streams []string  `json:"streams,omitempty"`
	Created time.Time `json:"created"`
	// Hash is the hex SHA-256 of the bearer token. The token is 32 random
	// bytes, so a plain hash cannot be reversed by guessing.
	Hash string `json:"sha256,omitempty"`
	// AccessKeyID is the token's AWS access key id, when it has one. Its
	// secret is not stored: it is derived from the store's auth.key (see
	// Store.secretFor), which SigV4 needs to recompute signatures.
	AccessKeyID string `json:"aws_access_key_id,omitempty"`
}

// Created is what Create returns: the secrets, shown once.
type Created struct {
	Token
	// Secret is the bearer token.
	Secret string `json:"token"`
	// SecretAccessKey is the AWS secret access key (with AccessKeyID).
	SecretAccessKey string `json:"aws_secret_access_key,omitempty"`
}

// Principal returns who this token authenticates.
func (t *Token) Principal() *Principal {
	return &Principal{Name: t.Name, Role: t.Role, Streams: t.Streams}
}

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

const (
	tokensFile = "tokens.json"
	keyFile    = "auth.key"
	lockFile   = ".lock"
	// tokenPrefix marks Runnel bearer tokens, so that secret scanners and
	// people can tell them apart.
	tokenPrefix = "rnl_"
	// accessKeyPrefix starts every AWS access key id Runnel makes.
	accessKeyPrefix = "AKRN"
	// reloadEvery bounds how often a server looks for tokens created or
	// revoked by another process (runnel tokens ... --data).
	reloadEvery = time.Second
)

// Store keeps tokens in a directory (DATA/auth). Several processes may
// share it: changes take a file lock and replace tokens.json atomically;
// a Store notices another process's changes within a second.
type Store struct {
	dir string
	key []byte

	lastCheck atomic.Int64 // unix nanoseconds of the last look at the file
	mu        struct {
		sync.RWMutex
		stamp  fileStamp
		tokens []Token
		byHash map[string]*Principal
		byKey  map[string]keyEntry
	}
}

type keyEntry struct {
	p      *Principal
	secret string
}

type fileStamp struct {
	mod  time.Time
	size int64
	ino  uint64
}

// Open opens (creating it if needed) the token store in dir.
func Open(dir string) (*Store, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("auth: open token store: %w", err)
	}
	key, err := loadKey(filepath.Join(dir, keyFile))
	if err != nil {
		return nil, err
	}
	s := &Store{dir: dir, key: key}
	if err := s.reload(); err != nil {
		return nil, err
	}
	return s, nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

func loadKey(path string) ([]byte, error) {
	key, err := atomicfile.Key(path, 32)
	var ws *atomicfile.WrongSizeError
	if errors.As(err, &ws) {
		return nil, fmt.Errorf("auth: key %s has %d bytes, want 32 (it derives the AWS secret keys: restore it from a backup, or delete it and create new --aws tokens)", path, ws.Size)
	}
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	return key, nil
}

// writeFileAtomic writes data to path (mode 0600), crash-safely.
func writeFileAtomic(path string, data []byte) error {
	return atomicfile.Write(path, data, 0o600)
}

func stampOf(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	st := fileStamp{mod: fi.ModTime(), size: fi.Size()}
	st.ino = inodeOf(fi)
	return st, nil
}

// reload reads tokens.json if it changed since the last read.
func (s *Store) reload() error {
	path := filepath.Join(s.dir, tokensFile)
	st, err := stampOf(path)
	if os.IsNotExist(err) {
		s.install(nil, fileStamp{})
		return nil
	}
	if err != nil {
		return fmt.Errorf("auth: read tokens: %w", err)
	}
	s.mu.RLock()
	same := st == s.mu.stamp
	s.mu.RUnlock()
	if same {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("auth: read tokens: %w", err)
	}
	var f struct {
		Tokens []Token `json:"tokens"`
	}
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("auth: %s is damaged (%w); restore it from a backup, or move it away and create new tokens", path, err)
	}
	s.install(f.Tokens, st)
	return nil
}

func (s *Store) install(tokens []Token, st fileStamp) {
	byHash := make(map[string]*Principal, len(tokens))
	byKey := map[string]keyEntry{}
	for i := range tokens {
		t := &tokens[i]
		p := t.Principal()
		byHash[t.Hash] = p
		if t.AccessKeyID != "" {
			byKey[t.AccessKeyID] = keyEntry{p: p, secret: s.secretFor(t.AccessKeyID)}
		}
	}
	s.mu.Lock()
	s.mu.tokens, s.mu.byHash, s.mu.byKey, s.mu.stamp = tokens, byHash, byKey, st
	s.mu.Unlock()
}

// refresh picks up other processes' changes, looking at most once per
// reloadEvery. A damaged file keeps the tokens last read (and the error
// is reported by the next change or restart).
func (s *Store) refresh() {
	now := time.Now().UnixNano()
	last := s.lastCheck.Load()
	if now-last < int64(reloadEvery) || !s.lastCheck.CompareAndSwap(last, now) {
		return
	}
	_ = s.reload()
}

// secretFor derives the AWS secret access key of an access key id. The
// server must know the secret to recompute SigV4 signatures, so instead of
// storing it (even encrypted) it is derived from the store's key: a copy
// of tokens.json alone reveals no secret, and revoking a token removes
// its key id so its secret is refused.
func (s *Store) secretFor(keyID string) string {
	m := hmac.New(sha256.New, s.key)
	m.Write([]byte("runnel aws secret access key\x00"))
	m.Write([]byte(keyID))
	return base64.StdEncoding.EncodeToString(m.Sum(nil))[:40]
}

func hashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// HashToken returns the value a session keeps for a bearer token.
func HashToken(secret string) string { return hashToken(secret) }

// Bearer returns who a bearer token authenticates.
func (s *Store) Bearer(secret string) (*Principal, bool) {
	return s.ByHash(hashToken(secret))
}

// ByHash returns who the token with this hash authenticates, if it still
// exists.
//
// A hash it does not know makes it look at the file at once, not after
// reloadEvery: a token another process created a moment ago works at
// its first use (a look is a stat, and a read only when the file changed).
func (s *Store) ByHash(hash string) (*Principal, bool) {
	return find(s, func() (*Principal, bool) {
		p, ok := s.mu.byHash[hash]
		return p, ok
	})
}

// AccessKey returns who an AWS access key id belongs to and its secret.
// An unknown id makes it look at the file at once, as ByHash does.
func (s *Store) AccessKey(id string) (*Principal, string, bool) {
	e, ok := find(s, func() (keyEntry, bool) {
		e, ok := s.mu.byKey[id]
		return e, ok
	})
	return e.p, e.secret, ok
}

// find runs get under the read lock, and once more after looking at the
// file at once (not after reloadEvery) when get finds nothing.
func find[T any](s *Store, get func() (T, bool)) (T, bool) {
	s.refresh()
	s.mu.RLock()
	v, ok := get()
	s.mu.RUnlock()
	if ok || s.reload() != nil {
		return v, ok
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return get()
}

// List returns the tokens, by name.
func (s *Store) List() []Token {
	s.refresh()
	s.mu.RLock()
	out := append([]Token(nil), s.mu.tokens...)
	s.mu.RUnlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Len returns how many tokens there are.
func (s *Store) Len() int {
	s.refresh()
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.mu.tokens)
}

// update runs fn on the current tokens under the store's file lock and
// writes what it returns.
func (s *Store) update(fn func([]Token) ([]Token, error)) error {
	lf, err := os.OpenFile(filepath.Join(s.dir, lockFile), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("auth: lock tokens: %w", err)
	}
	defer lf.Close()
	if err := flock.Lock(lf); err != nil {
		return fmt.Errorf("auth: lock tokens: %w", err)
	}
	defer flock.Unlock(lf)
	if err := s.reload(); err != nil {
		return err
	}
	s.mu.RLock()
	cur := append([]Token(nil), s.mu.tokens...)
	s.mu.RUnlock()
	next, err := fn(cur)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(struct {
		Tokens []Token `json:"tokens"`
	}{next}, "", "  ")
	if err != nil {
		return err
	}
	path := filepath.Join(s.dir, tokensFile)
	if err := writeFileAtomic(path, append(b, '\n')); err != nil {
		return fmt.Errorf("auth: write tokens: %w", err)
	}
	st, err := stampOf(path)
	if err != nil {
		return fmt.Errorf("auth: write tokens: %w", err)
	}
	s.install(next, st)
	return nil
}

// Create makes a token. The secrets are in the answer only.
func (s *Store) Create(name string, role Role, streams []string, aws bool) (Created, error) {
	if !validName.MatchString(name) {
		return Created{}, fmt.Errorf("%w: token name %q: 1–64 of a-z 0-9 . _ -, starting with a letter or digit", ErrInvalid, name)
	}
	if role < Reader || role > Admin {
		return Created{}, fmt.Errorf("%w: role must be admin, writer or reader", ErrInvalid)
	}
	if err := ValidateGrants(streams); err != nil {
		return Created{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return Created{}, fmt.Errorf("auth: make token: %w", err)
	}
	out := Created{Secret: tokenPrefix + base64.RawURLEncoding.EncodeToString(raw[:])}
	out.Token = Token{Name: name, Role: role, Streams: streams, Created: time.Now().UTC().Truncate(time.Second), Hash: hashToken(out.Secret)}
	if aws {
		var kb [10]byte
		if _, err := rand.Read(kb[:]); err != nil {
			return Created{}, fmt.Errorf("auth: make access key: %w", err)
		}
		out.AccessKeyID = accessKeyPrefix + base32.StdEncoding.EncodeToString(kb[:])
		out.SecretAccessKey = s.secretFor(out.AccessKeyID)
	}
	err := s.update(func(ts []Token) ([]Token, error) {
		for _, t := range ts {
			if t.Name == name {
				return nil, fmt.Errorf("%w: %q (revoke it first, or choose another name)", ErrTokenExists, name)
			}
		}
		return append(ts, out.Token), nil
	})
	return out, err
}

// Revoke deletes a token: its bearer secret, its access key and the
// sessions it opened stop working (in other processes sharing the store
// within a second).
func (s *Store) Revoke(name string) error {
	return s.update(func(ts []Token) ([]Token, error) {
		for i, t := range ts {
			if t.Name == name {
				return append(ts[:i:i], ts[i+1:]...), nil
			}
		}
		return nil, fmt.Errorf("%w: %q", ErrTokenNotFound, name)
	})
}
