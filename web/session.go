package web

import (
	"errors"
	"net/http"

	"github.com/runnel-dev/runnel/internal/apitime"
	"github.com/runnel-dev/runnel/web/auth"
)

// The web UI's sign-in (/api/v1/session) and token management
// (/api/v1/tokens). A session is a random id in an HttpOnly, SameSite=Strict
// cookie standing for a token kept server-side; the token never reaches
// the page's JavaScript after sign-in.

func (s *Server) routeSession(mux *routeMux) {
	mux.HandleFunc("GET /api/v1/session", s.getSession)
	mux.HandleFunc("POST /api/v1/session", s.signIn)
	mux.HandleFunc("DELETE /api/v1/session", s.signOut)
	mux.HandleFunc("GET /api/v1/tokens", s.listTokens)
	mux.HandleFunc("POST /api/v1/tokens", s.createToken)
	mux.HandleFunc("DELETE /api/v1/tokens/{name}", s.revokeToken)
}

type sessionJSON struct {
	// Auth says whether the server checks credentials at all.
	Auth    bool     `json:"auth"`
	Name    string   `json:"name,omitempty"`
	Role    string   `json:"role"`
	Streams []string `json:"streams,omitempty"`
}

func toSessionJSON(on bool, p *auth.Principal) sessionJSON {
	return sessionJSON{Auth: on, Name: p.Name, Role: p.Role.String(), Streams: p.Streams}
}

// getSession says who the caller is: 401 when auth is on and the request
// carries no valid credentials.
func (s *Server) getSession(w http.ResponseWriter, r *http.Request) {
	p, aerr := s.authenticate(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	if p == nil {
		writeError(w, newError("unauthenticated", "", "not signed in"))
		return
	}
	writeJSON(w, http.StatusOK, toSessionJSON(s.sec.Auth, p))
}

func (s *Server) signIn(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Token string `json:"token"`
	}
	if err := decodeBody(w, r, 4096, &req); err != nil {
		writeError(w, err)
		return
	}
	if !s.sec.Auth {
		writeJSON(w, http.StatusOK, toSessionJSON(false, auth.Anonymous))
		return
	}
	id, p, err := s.sessions.Start(req.Token)
	if err != nil {
		s.refused(r, "unauthenticated")
		writeError(w, newError("unauthenticated", "token", "the token is unknown or revoked"))
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: id, Path: "/", HttpOnly: true,
		SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil, MaxAge: int(auth.SessionTTL.Seconds())})
	writeJSON(w, http.StatusOK, toSessionJSON(true, p))
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(sessionCookie); err == nil && s.sessions != nil {
		s.sessions.End(c.Value)
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", HttpOnly: true, SameSite: http.SameSiteStrictMode, MaxAge: -1})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) tokensOr404(w http.ResponseWriter) bool {
	if s.sec.Tokens == nil {
		writeError(w, newError("not_found", "", "this server keeps no tokens"))
		return false
	}
	return true
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	if !s.tokensOr404(w) {
		return
	}
	ts := s.sec.Tokens.List()
	out := make([]tokenJSON, len(ts))
	for i := range ts {
		ts[i].Hash = ""
		out[i] = tokenJSON{ts[i], apitime.Time(ts[i].Created)}
	}
	writeJSON(w, http.StatusOK, map[string]any{"tokens": out})
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	if !s.tokensOr404(w) {
		return
	}
	var req struct {
		Name    string   `json:"name"`
		Role    string   `json:"role"`
		Streams []string `json:"streams"`
		AWS     bool     `json:"aws"`
	}
	if err := decodeBody(w, r, smallBody, &req); err != nil {
		writeError(w, err)
		return
	}
	role, err := auth.ParseRole(req.Role)
	if err != nil {
		writeError(w, newError("invalid_argument", "role", "role must be admin, writer or reader"))
		return
	}
	c, err := s.sec.Tokens.Create(req.Name, role, req.Streams, req.AWS)
	switch {
	case errors.Is(err, auth.ErrTokenExists):
		writeError(w, newError("already_exists", "name", err.Error()))
		return
	case errors.Is(err, auth.ErrInvalid):
		writeError(w, newError("invalid_argument", "", err.Error()))
		return
	case err != nil:
		writeError(w, newError("internal", "", err.Error()))
		return
	}
	c.Hash = ""
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, struct {
		auth.Created
		At apitime.Time `json:"created"`
	}{c, apitime.Time(c.Token.Created)})
}

// tokenJSON is a token as the API shows it: its time in apitime.Layout.
type tokenJSON struct {
	auth.Token
	Created apitime.Time `json:"created"`
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	if !s.tokensOr404(w) {
		return
	}
	err := s.sec.Tokens.Revoke(r.PathValue("name"))
	switch {
	case errors.Is(err, auth.ErrTokenNotFound):
		writeError(w, newError("not_found", "name", err.Error()))
		return
	case err != nil:
		writeError(w, newError("internal", "", err.Error()))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
