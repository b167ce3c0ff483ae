package auth

import (
	"fmt"
	"path"
	"strings"
)

// Role is what a token may do. Each role can do everything the ones
// below it can.
type Role int

// The roles, weakest first. None is no role at all: an unauthenticated
// caller.
const (
	None Role = iota
	// Reader reads streams, records, jobs, results and metrics.
	Reader
	// Writer also puts records, creates and reshapes streams.
	Writer
	// Admin also deletes streams, submits, stops and deletes jobs, takes
	// savepoints and manages tokens.
	Admin
)

// Roles lists the roles a token can have, weakest first.
var Roles = []Role{Reader, Writer, Admin}

func (r Role) String() string {
	switch r {
	case Reader:
		return "reader"
	case Writer:
		return "writer"
	case Admin:
		return "admin"
	}
	return "none"
}

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	for _, r := range Roles {
		if s == r.String() {
			return r, nil
		}
	}
	return None, fmt.Errorf("auth: role %q: use admin, writer or reader", s)
}

// MarshalText writes the role's name.
func (r Role) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads a role's name.
func (r *Role) UnmarshalText(b []byte) error {
	v, err := ParseRole(string(b))
	*r = v
	return err
}

// Principal is an authenticated caller.
type Principal struct {
	// Name is the token's name ("" with auth off).
	Name string `json:"name"`
	Role Role   `json:"role"`
	// Streams are glob patterns (path.Match syntax) limiting the streams
	// the caller may touch; empty means every stream.
	Streams []string `json:"streams,omitempty"`
}

// Anonymous is who calls a server that runs with auth off: an admin of
// every stream.
var Anonymous = &Principal{Role: Admin}

// Can reports whether the principal has at least role r.
func (p *Principal) Can(r Role) bool { return p != nil && p.Role >= r }

// Unrestricted reports whether the principal may touch every stream.
func (p *Principal) Unrestricted() bool { return p != nil && len(p.Streams) == 0 }

// CanStream reports whether the principal's grants cover stream name.
func (p *Principal) CanStream(name string) bool {
	if p == nil {
		return false
	}
	if len(p.Streams) == 0 {
		return true
	}
	for _, g := range p.Streams {
		if ok, _ := path.Match(g, name); ok {
			return true
		}
	}
	return false
}

// ValidateGrants checks stream glob patterns.
func ValidateGrants(globs []string) error {
	for _, g := range globs {
		if g == "" || strings.ContainsAny(g, " ,/") {
			return fmt.Errorf("auth: stream pattern %q: use stream names with * ? [...] wildcards, no spaces, commas or slashes", g)
		}
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("auth: stream pattern %q: %w", g, err)
		}
	}
	return nil
}
