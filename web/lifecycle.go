package web

import "net/http"

// Lifecycle routes beside submit and stop: POST /api/v1/jobs/{id}/resume
// starts a stopped or failed job again from its latest checkpoint.

func (s *Server) routeLifecycle(mux *routeMux) {
	mux.HandleFunc("POST /api/v1/jobs/{id}/resume", s.resumeJob)
}

func (s *Server) resumeJob(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) {
		return
	}
	j, err := s.jobs.Resume(r.PathValue("id"))
	if err != nil {
		writeError(w, jobError(err))
		return
	}
	writeJSON(w, http.StatusOK, j.Info(false))
}
