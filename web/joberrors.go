package web

import (
	"net/http"
	"strconv"

	"github.com/runnel-dev/runnel/jobs"
)

// Error history API: GET /api/v1/jobs/{id}/errors?limit=N answers the last
// errors of a job's records and runs, newest first (jobs.Manager.Errors).

func (s *Server) routeJobErrors(mux *routeMux) {
	mux.HandleFunc("GET /api/v1/jobs/{id}/errors", s.jobErrors)
}

func (s *Server) jobErrors(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) {
		return
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > jobs.ErrorHistory {
			writeError(w, newError("invalid_argument", "limit", "limit must be a number of errors from 1 to "+strconv.Itoa(jobs.ErrorHistory)+", not "+strconv.Quote(v)))
			return
		}
		limit = n
	}
	page, err := s.jobs.Errors(r.PathValue("id"), limit)
	writeJobAnswer(w, http.StatusOK, page, err)
}
