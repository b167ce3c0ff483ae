package web

import (
	"net/http"
	"strconv"

	"github.com/runnel-dev/runnel/jobs"
)

// Preview API: POST /api/v1/jobs/preview?records=N runs a job file (the
// body, as for a submit) on the last N records of its input stream (a
// file or generator source: its first N) with its sinks replaced by an
// in-memory capture, and answers each operator's rows and errors
// (jobs.Manager.Preview). Nothing is written and nothing is kept. At most
// Limits.MaxPreviews run at once, half of them of one token (429 past it).

func (s *Server) routePreview(mux *routeMux) {
	mux.HandleFunc("POST /api/v1/jobs/preview", s.previewJob)
}

func (s *Server) previewJob(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) {
		return
	}
	n := jobs.DefaultPreviewRecords
	if v := r.URL.Query().Get("records"); v != "" {
		k, err := strconv.Atoi(v)
		if err != nil || k < 1 || k > jobs.MaxPreviewRecords {
			writeError(w, newError("invalid_argument", "records", "records must be a number of records from 1 to "+strconv.Itoa(jobs.MaxPreviewRecords)+", not "+strconv.Quote(v)))
			return
		}
		n = k
	}
	src, ok := readJobFile(w, r)
	if !ok {
		return
	}
	// The slot is held while the job graph runs: until the preview ends,
	// times out (jobs.PreviewTimeout) or its client goes away (the run's
	// context is the request's).
	release, aerr := s.previews.acquire(r)
	if aerr != nil {
		writeTooMany(w, aerr)
		return
	}
	defer release()
	res, err := s.jobs.Preview(r.Context(), src, n)
	if err != nil {
		writeError(w, jobError(err))
		return
	}
	writeJSON(w, http.StatusOK, res)
}
