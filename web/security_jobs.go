package web

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/web/auth"
)

// What a token limited to streams may do with jobs beyond the streams of
// the job file it sends: a job's state is made of the records of the
// streams it read, so a savepoint is only for a token that may use the
// streams of the job that took it, and a job's name is only for a token
// that may use that job (submitting with replace would delete it).

// limitedJobFile checks the connectors of the job file a request sends: a
// token limited to streams may read and write Runnel streams alone (and
// generate records, show them on a dashboard or log them). Any other
// source or sink reaches data its grants do not name: the files root,
// which every job shares, or remote systems with the server's own
// credentials.
func limitedJobFile(s *Server, r *http.Request, p *auth.Principal) *apiError {
	b, err := peekBody(r, jobs.MaxJobFileSize)
	if err != nil {
		return nil // the handler answers it
	}
	spec, err := jobs.Parse(b)
	if err != nil {
		return nil
	}
	return limitedConnectors(p, spec)
}

func limitedConnectors(p *auth.Principal, spec *jobs.Spec) *apiError {
	why := func(what, kind string) *apiError {
		return forbidden(p, what+" is a "+kind+": a token limited to streams ("+strings.Join(p.Streams, ",")+
			") may run jobs that read streams or the generator and write streams, dashboards or the log")
	}
	switch k := spec.Source.Kind(); k {
	case jobs.SourceStream, jobs.SourceGenerator:
	default:
		return why("the source", k+" source")
	}
	for _, sk := range spec.Sinks {
		switch k := sk.Kind(); k {
		case jobs.SinkStream, jobs.SinkDashboard, jobs.SinkLog:
		default:
			return why("sink "+quoteHost(sk.ID), k+" sink")
		}
	}
	return nil
}

// limitedSubmit checks a submit's ?savepoint=, and the name and connectors
// of its job file.
func limitedSubmit(s *Server, r *http.Request, p *auth.Principal) *apiError {
	if e := s.savepointAllowed(p, r.URL.Query().Get("savepoint")); e != nil {
		return e
	}
	b, err := peekBody(r, jobs.MaxJobFileSize)
	if err != nil {
		return nil // the handler answers it
	}
	spec, err := jobs.Parse(b)
	if err != nil {
		return nil
	}
	if e := limitedConnectors(p, spec); e != nil {
		return e
	}
	if ok, known := s.jobAllowed(p, spec.Name); known && !ok {
		return forbidden(p, "the job name "+quoteHost(spec.Name)+" is taken by a job that reads or writes streams this token may not use ("+
			strings.Join(p.Streams, ",")+"); choose another name")
	}
	return nil
}

// limitedRestart checks the savepoint a restart starts from.
func limitedRestart(s *Server, r *http.Request, p *auth.Principal) *apiError {
	b, err := peekBody(r, smallBody)
	if err != nil {
		return nil // the handler answers it
	}
	var req struct {
		Savepoint string `json:"savepoint"`
	}
	if json.Unmarshal(b, &req) != nil {
		return nil
	}
	return s.savepointAllowed(p, req.Savepoint)
}

// savepointAllowed refuses a limited token a savepoint taken by a job that
// reads or writes streams the token may not use. "" is no savepoint; an
// unknown one is left to the handler's not_found.
func (s *Server) savepointAllowed(p *auth.Principal, name string) *apiError {
	if name == "" || p.Unrestricted() {
		return nil
	}
	ok, err := s.savepointStreamsAllowed(p, name)
	if errors.Is(err, jobs.ErrSavepointNotFound) {
		return nil
	}
	if !ok {
		return forbidden(p, "savepoint "+quoteHost(name)+" was taken by a job that reads or writes streams this token may not use ("+
			strings.Join(p.Streams, ",")+")")
	}
	return nil
}

// savepointStreamsAllowed reports whether p may use every stream of the
// job file savepoint name was taken with.
func (s *Server) savepointStreamsAllowed(p *auth.Principal, name string) (bool, error) {
	src, err := s.jobs.SavepointJobFile(name)
	if err != nil {
		return false, err
	}
	spec, err := jobs.Parse(src)
	if err != nil {
		return false, nil // streams unknown: not for a limited token
	}
	for _, n := range jobStreams(spec) {
		if !p.CanStream(n) {
			return false, nil
		}
	}
	return true, nil
}

// visibleSavepoints keeps the savepoints a token limited to streams may
// start from.
func (s *Server) visibleSavepoints(r *http.Request, all []jobs.SavepointInfo) []jobs.SavepointInfo {
	p := PrincipalFrom(r.Context())
	if p.Unrestricted() {
		return all
	}
	out := all[:0]
	for _, sp := range all {
		if ok, _ := s.savepointStreamsAllowed(p, sp.Name); ok {
			out = append(out, sp)
		}
	}
	return out
}
