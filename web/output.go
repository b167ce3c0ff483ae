package web

import (
	"net/http"
	"strconv"
	"time"
)

// Output API: GET /api/v1/jobs/{id}/output?sink=S&after=N&limit=L&wait=D
// reads the last rows a job's sink was given (jobs.Manager.Output): rows numbered
// after N (0 or absent: the oldest kept), at most L (default and cap
// jobs.OutputRows), waiting up to D (at most maxOutputWait) for rows when
// there are none yet. The answer's "next" is the N of the following read.

const maxOutputWait = 30 * time.Second

func (s *Server) routeOutput(mux *routeMux) {
	mux.HandleFunc("GET /api/v1/jobs/{id}/output", s.jobOutput)
}

func (s *Server) jobOutput(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) {
		return
	}
	q := r.URL.Query()
	var after uint64
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			writeError(w, newError("invalid_argument", "after", "after must be a row number (0 or more), not "+strconv.Quote(v)))
			return
		}
		after = n
	}
	limit := 0
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			writeError(w, newError("invalid_argument", "limit", "limit must be a positive number of rows, not "+strconv.Quote(v)))
			return
		}
		limit = n
	}
	var wait time.Duration
	if v := q.Get("wait"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			writeError(w, newError("invalid_argument", "wait", "wait must be a duration such as 10s, not "+strconv.Quote(v)))
			return
		}
		wait = min(d, maxOutputWait)
	}
	page, err := s.jobs.Output(r.Context(), r.PathValue("id"), q.Get("sink"), after, limit, wait)
	if err != nil {
		writeError(w, jobError(err))
		return
	}
	writeJSON(w, http.StatusOK, page)
}
