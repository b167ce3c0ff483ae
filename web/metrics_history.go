package web

import (
	"net/http"
	"strconv"
)

// Metrics history API: GET /api/v1/jobs/{id}/metrics/history answers the
// job's last hour of samples, oldest first (jobs.Manager.Metrics);
// ?shards=true adds each point's per-shard rates and watermark lags.

func (s *Server) routeMetricsHistory(mux *routeMux) {
	mux.HandleFunc("GET /api/v1/jobs/{id}/metrics/history", s.jobMetricsHistory)
}

func (s *Server) jobMetricsHistory(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) {
		return
	}
	shards := false
	switch v := r.URL.Query().Get("shards"); v {
	case "", "false", "0":
	case "true", "1":
		shards = true
	default:
		writeError(w, newError("invalid_argument", "shards", "shards must be true or false, not "+strconv.Quote(v)))
		return
	}
	h, err := s.jobs.Metrics(r.PathValue("id"), shards)
	if err != nil {
		writeError(w, jobError(err))
		return
	}
	writeJSON(w, http.StatusOK, h)
}
