package web

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/web/auth"
	"github.com/runnel-dev/runnel/web/ui"
)

// Security configures who may call the server and the browser defences.
type Security struct {
	// Auth turns authentication on: every route but the public ones needs
	// a bearer token, a UI session or (the Kinesis API) a SigV4 signature.
	Auth bool
	// Tokens is the token store. With Auth off it may still be set, so
	// that tokens can be managed ahead of turning auth on.
	Tokens *auth.Store
	// AllowedHosts are the host names (beside IP addresses and localhost)
	// a request's Host may carry.
	AllowedHosts []string
	// CORSOrigins are the origins (scheme://host[:port], or "*") that may
	// call cross-origin; none by default.
	CORSOrigins []string
	// Now is the clock SigV4 dates are checked against; default time.Now.
	Now func() time.Time
}

// A rule says who may use a route: the role it needs, and which streams
// the caller's grants must cover.
type rule struct {
	role auth.Role // auth.None: anyone, signed in or not
	// stream names the path value that is a stream name.
	stream string
	// job names the path value that is a job id: the grants must cover
	// every stream the job reads or writes.
	job string
	// body reads the streams a request's body names (it must leave the
	// body readable again).
	body func(r *http.Request) ([]string, error)
	// limited, for a token limited to streams, checks what the route
	// reaches beyond the streams above: another job's savepoint, a job of
	// the same name. Nil: nothing.
	limited func(s *Server, r *http.Request, p *auth.Principal) *apiError
	// unrestricted routes need a token without stream limits.
	unrestricted bool
	// kinesis routes are authenticated by SigV4 and authorised per
	// operation (see kinesisAuth).
	kinesis bool
}

// rules is the authorisation table: every route the server registers has
// exactly one rule (TestEveryRouteHasARule enforces it, and a route without
// one answers 500).
var rules = map[string]rule{
	"GET /healthz":          {role: auth.None},
	"GET /readyz":           {role: auth.None},
	"GET /{$}":              {role: auth.None},
	"GET " + ui.AssetPrefix: {role: auth.None},
	"GET /favicon.ico":      {role: auth.None},
	"/api/":                 {role: auth.None}, // answers not_found
	"POST /{$}":             {kinesis: true},
	"GET /metrics":          {role: auth.Reader},

	"GET /api/v1/session":    {role: auth.None},
	"POST /api/v1/session":   {role: auth.None},
	"DELETE /api/v1/session": {role: auth.None},

	"GET /api/v1/tokens":           {role: auth.Admin, unrestricted: true},
	"POST /api/v1/tokens":          {role: auth.Admin, unrestricted: true},
	"DELETE /api/v1/tokens/{name}": {role: auth.Admin, unrestricted: true},

	"GET /api/v1/streams":                     {role: auth.Reader},
	"POST /api/v1/streams":                    {role: auth.Writer, body: createStreamName},
	"GET /api/v1/streams/{name}":              {role: auth.Reader, stream: "name"},
	"DELETE /api/v1/streams/{name}":           {role: auth.Admin, stream: "name"},
	"POST /api/v1/streams/{name}/split":       {role: auth.Writer, stream: "name"},
	"POST /api/v1/streams/{name}/merge":       {role: auth.Writer, stream: "name"},
	"POST /api/v1/streams/{name}/shard-count": {role: auth.Writer, stream: "name"},
	"POST /api/v1/streams/{name}/records":     {role: auth.Writer, stream: "name"},
	"GET /api/v1/streams/{name}/records":      {role: auth.Reader, stream: "name"},

	"GET /api/v1/jobs":                      {role: auth.Reader},
	"POST /api/v1/jobs":                     {role: auth.Admin, body: jobFileStreams, limited: limitedSubmit},
	"GET /api/v1/jobs/{id}":                 {role: auth.Reader, job: "id"},
	"DELETE /api/v1/jobs/{id}":              {role: auth.Admin, job: "id"},
	"GET /api/v1/jobs/{id}/results":         {role: auth.Reader, job: "id"},
	"GET /api/v1/jobs/{id}/results/live":    {role: auth.Reader, job: "id"},
	"GET /api/v1/jobs/{id}/checkpoints":     {role: auth.Reader, job: "id"},
	"GET /api/v1/jobs/{id}/output":          {role: auth.Reader, job: "id"},
	"POST /api/v1/jobs/{id}/resume":         {role: auth.Admin, job: "id"},
	"POST /api/v1/jobs/{id}/savepoints":     {role: auth.Admin, job: "id"},
	"GET /api/v1/savepoints":                {role: auth.Reader},
	"POST /api/v1/jobs/preview":             {role: auth.Admin, body: jobFileStreams, limited: limitedJobFile},
	"GET /api/v1/jobs/{id}/errors":          {role: auth.Reader, job: "id"},
	"POST /api/v1/jobs/{id}/restart":        {role: auth.Admin, job: "id", limited: limitedRestart},
	"PUT /api/v1/jobs/{id}":                 {role: auth.Admin, job: "id", body: jobFileStreams, limited: limitedJobFile},
	"GET /api/v1/jobs/{id}/metrics/history": {role: auth.Reader, job: "id"},
	"GET /api/v1/jobs/{id}/cluster":         {role: auth.Reader, job: "id"},

	// Consumer groups (groups.go): a reader of a stream may consume it,
	// which takes every route but deleting a group (its checkpoints are
	// every application's).
	"POST /api/v1/streams/{name}/consumer-groups":                                   {role: auth.Reader, stream: "name"},
	"GET /api/v1/streams/{name}/consumer-groups":                                    {role: auth.Reader, stream: "name"},
	"GET /api/v1/streams/{name}/consumer-groups/{group}":                            {role: auth.Reader, stream: "name"},
	"DELETE /api/v1/streams/{name}/consumer-groups/{group}":                         {role: auth.Admin, stream: "name"},
	"POST /api/v1/streams/{name}/consumer-groups/{group}/workers/{worker}/sync":     {role: auth.Reader, stream: "name"},
	"DELETE /api/v1/streams/{name}/consumer-groups/{group}/workers/{worker}":        {role: auth.Reader, stream: "name"},
	"POST /api/v1/streams/{name}/consumer-groups/{group}/shards/{shard}/checkpoint": {role: auth.Reader, stream: "name"},
	"POST /api/v1/streams/{name}/consumer-groups/{group}/shards/{shard}/release":    {role: auth.Reader, stream: "name"},
}

// routeMux is the server's ServeMux that remembers each pattern and puts
// the pattern's rule in front of its handler.
type routeMux struct {
	*http.ServeMux
	patterns []string
	wrap     func(pattern string, h http.Handler) http.Handler
}

// Handle registers h behind the rule for pattern.
func (m *routeMux) Handle(pattern string, h http.Handler) {
	m.patterns = append(m.patterns, pattern)
	m.ServeMux.Handle(pattern, m.wrap(pattern, h))
}

// HandleFunc registers f behind the rule for pattern.
func (m *routeMux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

type principalKey struct{}

// PrincipalFrom returns who made a request (auth.Anonymous with auth off,
// nil for an unauthenticated request to a public route).
func PrincipalFrom(ctx context.Context) *auth.Principal {
	p, _ := ctx.Value(principalKey{}).(*auth.Principal)
	return p
}

const sessionCookie = "runnel_session"

// authenticate says who sent r: nil and no error when it carries no
// credentials, an error when they are bad.
func (s *Server) authenticate(r *http.Request) (*auth.Principal, *apiError) {
	if !s.sec.Auth {
		return auth.Anonymous, nil
	}
	if h := r.Header.Get("Authorization"); h != "" {
		a, err := auth.ParseAuthorization(h)
		if err != nil || a.Scheme != auth.SchemeBearer {
			return nil, newError("unauthenticated", "Authorization", "the Authorization header is not a valid bearer token: send Authorization: Bearer TOKEN (from 'runnel tokens create')")
		}
		p, ok := s.sec.Tokens.Bearer(a.Token)
		if !ok {
			return nil, newError("unauthenticated", "Authorization", "the bearer token is unknown or revoked")
		}
		return p, nil
	}
	if c, err := r.Cookie(sessionCookie); err == nil && c.Value != "" {
		p, ok := s.sessions.Get(c.Value)
		if !ok {
			return nil, newError("unauthenticated", "Cookie", "the session has ended (signed out, expired, server restarted or token revoked); sign in again")
		}
		return p, nil
	}
	return nil, nil
}

// authorize puts pattern's rule in front of h.
func (s *Server) authorize(pattern string, h http.Handler) http.Handler {
	ru, ok := rules[pattern]
	if !ok {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.log.Error("route has no authorisation rule; refusing it (add one to web/security.go's rules)", "route", pattern)
			writeError(w, newError("internal", "", "route "+pattern+" has no authorisation rule"))
		})
	}
	if ru.kinesis {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.kinesisAuth(w, r, h) })
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, aerr := s.authenticate(r)
		if aerr != nil && ru.role > auth.None {
			s.refused(r, aerr.Code)
			writeError(w, aerr)
			return
		}
		if ru.role > auth.None {
			if p == nil {
				s.refused(r, "unauthenticated")
				writeError(w, newError("unauthenticated", "Authorization", r.Method+" "+r.URL.Path+" needs a token: send Authorization: Bearer TOKEN (from 'runnel tokens create'), or sign in to the web UI"))
				return
			}
			if aerr := s.check(r, ru, p); aerr != nil {
				s.refused(r, aerr.Code)
				writeError(w, aerr)
				return
			}
		}
		if p != nil {
			r = r.WithContext(context.WithValue(r.Context(), principalKey{}, p))
		}
		h.ServeHTTP(w, r)
	})
}

// check applies a rule's role and grants to an authenticated caller.
func (s *Server) check(r *http.Request, ru rule, p *auth.Principal) *apiError {
	if !p.Can(ru.role) {
		return forbidden(p, r.Method+" "+r.URL.Path+" needs the "+ru.role.String()+" role")
	}
	if p.Unrestricted() {
		return nil
	}
	if ru.unrestricted {
		return forbidden(p, r.Method+" "+r.URL.Path+" needs a token not limited to streams")
	}
	var names []string
	if ru.stream != "" {
		names = append(names, r.PathValue(ru.stream))
	}
	if ru.job != "" && s.jobs != nil {
		id := r.PathValue(ru.job)
		if ok, known := s.jobAllowed(p, id); known && !ok {
			return forbidden(p, "job "+quoteHost(id)+" reads or writes streams this token may not use ("+strings.Join(p.Streams, ",")+")")
		}
		// An unknown job: the handler answers not_found.
	}
	if ru.body != nil {
		more, err := ru.body(r)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) {
				return ae
			}
			return newError("invalid_argument", "", err.Error())
		}
		names = append(names, more...)
	}
	for _, n := range names {
		if !p.CanStream(n) {
			return forbidden(p, "stream "+quoteHost(n)+" is not among the streams this token may use ("+strings.Join(p.Streams, ",")+")")
		}
	}
	if ru.limited != nil && s.jobs != nil {
		return ru.limited(s, r, p)
	}
	return nil
}

func forbidden(p *auth.Principal, why string) *apiError {
	return newError("forbidden", "", "token "+quoteHost(p.Name)+" (role "+p.Role.String()+"): "+why)
}

// jobAllowed reports whether p's grants cover every stream job id reads or
// writes (and it reaches no other data, limitedConnectors), and whether the
// job exists.
func (s *Server) jobAllowed(p *auth.Principal, id string) (ok, known bool) {
	if p.Unrestricted() {
		return true, true
	}
	in, err := s.jobs.Get(id)
	if err != nil {
		return false, false
	}
	spec, err := jobs.Parse([]byte(in.Spec))
	if err != nil || limitedConnectors(p, spec) != nil {
		return false, true // streams unknown, or other data: not for a limited token
	}
	for _, n := range jobStreams(spec) {
		if !p.CanStream(n) {
			return false, true
		}
	}
	return true, true
}

// visibleJobs keeps the jobs a token limited to streams may see.
func (s *Server) visibleJobs(r *http.Request, all []jobs.Info) []jobs.Info {
	p := PrincipalFrom(r.Context())
	if p.Unrestricted() {
		return all
	}
	out := all[:0]
	for _, in := range all {
		if ok, _ := s.jobAllowed(p, in.ID); ok {
			out = append(out, in)
		}
	}
	return out
}

// peekBody reads a request body of at most limit bytes and puts it back.
func peekBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		if e := bodyReadError(err); e != nil {
			return nil, e
		}
		return nil, newError("invalid_argument", "", "read the request body: "+err.Error())
	}
	r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(b), r.Body))
	if int64(len(b)) > limit {
		return nil, newError("body_too_large", "", "request body exceeds "+humanBytes(limit))
	}
	return b, nil
}

// createStreamName is the stream a POST /api/v1/streams creates.
func createStreamName(r *http.Request) ([]string, error) {
	b, err := peekBody(r, smallBody)
	if err != nil {
		return nil, err
	}
	var req struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(b, &req) // a bad body gets the handler's error
	return []string{req.Name}, nil
}

// jobFileStreams are the streams a submitted job file reads and writes.
func jobFileStreams(r *http.Request) ([]string, error) {
	b, err := peekBody(r, jobs.MaxJobFileSize)
	if err != nil {
		return nil, err
	}
	spec, err := jobs.Parse(b)
	if err != nil {
		return nil, jobError(err)
	}
	return jobStreams(spec), nil
}

// jobStreams lists the streams a job reads and writes (Spec.Streams: its
// source, stream sinks, dead-letter and on-failure streams).
func jobStreams(spec *jobs.Spec) []string { return spec.Streams() }

func newRefusals() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Name: "runnel_http_denied_total",
		Help: "Requests refused by authentication, authorisation or the browser defences, by reason."}, []string{"reason"})
}

func (s *Server) refused(r *http.Request, reason string) {
	s.refusals.WithLabelValues(reason).Inc()
	s.log.Info("request refused", "reason", reason, "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr)
}

func contextWithPrincipal(ctx context.Context, p *auth.Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}
