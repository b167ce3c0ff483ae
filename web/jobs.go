package web

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/sinks"
)

// Jobs API: /api/v1/jobs. The body of a submit is a job file (YAML or JSON).

const arrowStream = "application/vnd.apache.arrow.stream"

func (s *Server) routeJobs(mux *routeMux) {
	mux.HandleFunc("POST /api/v1/jobs", s.submitJob)
	mux.HandleFunc("GET /api/v1/jobs", s.listJobs)
	mux.HandleFunc("GET /api/v1/jobs/{id}", s.getJob)
	mux.HandleFunc("DELETE /api/v1/jobs/{id}", s.stopJob)
	mux.HandleFunc("GET /api/v1/jobs/{id}/results", s.jobResults)
	mux.HandleFunc("GET /api/v1/jobs/{id}/results/live", s.jobResultsLive)
	mux.HandleFunc("GET /api/v1/jobs/{id}/checkpoints", s.jobCheckpoints)
	mux.HandleFunc("POST /api/v1/jobs/{id}/savepoints", s.takeSavepoint)
	mux.HandleFunc("GET /api/v1/savepoints", s.listSavepoints)
	s.routeOutput(mux)
	s.routeLifecycle(mux)
	s.routePreview(mux)
	s.routeJobErrors(mux)
	s.routeMetricsHistory(mux)
}

// jobError maps an error of the jobs package to the API's error. Its
// message loses the Go package prefix ("jobs: "), which a client would
// print after its own ("runnel jobs: jobs: ...").
func jobError(err error) *apiError {
	e := jobErrorOf(err)
	e.Message = strings.TrimPrefix(e.Message, "jobs: ")
	return e
}

// readJobFile reads a request body that is a job file; when it cannot (the
// body is over jobs.MaxJobFileSize or broke off) it answers the request
// and ok is false.
func readJobFile(w http.ResponseWriter, r *http.Request) (src []byte, ok bool) {
	r.Body = http.MaxBytesReader(w, r.Body, jobs.MaxJobFileSize)
	src, err := io.ReadAll(r.Body)
	if err != nil {
		if e := bodyReadError(err); e != nil {
			writeError(w, e)
		} else {
			writeError(w, newError("body_too_large", "", "a job file is at most 1 MiB"))
		}
		return nil, false
	}
	return src, true
}

// writeJobInfo writes j's state, or err as the job API's error when the
// call that gave j failed.
func writeJobInfo(w http.ResponseWriter, j *jobs.Job, err error) {
	if err != nil {
		writeError(w, jobError(err))
		return
	}
	writeJSON(w, http.StatusOK, j.Info(false))
}

// writeJobAnswer writes v with status, or err as the job API's error when
// the call that made v failed.
func writeJobAnswer(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		writeError(w, jobError(err))
		return
	}
	writeJSON(w, status, v)
}

func jobErrorOf(err error) *apiError {
	var se *jobs.SpecError
	switch {
	case errors.As(err, &se):
		e := newError("invalid_job", "", err.Error())
		if len(se.Problems) > 0 {
			e.Field, e.Line = se.Problems[0].Field, se.Problems[0].Line
		}
		e.Problems = se.Problems
		return e
	case errors.Is(err, jobs.ErrJobNotFound), errors.Is(err, jobs.ErrNoSink), errors.Is(err, jobs.ErrNoOutput):
		return newError("not_found", "", err.Error())
	case errors.Is(err, jobs.ErrCheckpointNotFound):
		return newError("not_found", "checkpoint", err.Error())
	case errors.Is(err, jobs.ErrRunning):
		return newError("running", "", err.Error())
	case errors.Is(err, jobs.ErrNameMismatch):
		return newError("invalid_argument", "name", err.Error())
	case errors.Is(err, jobs.ErrJobOwned):
		return newError("managed", "", err.Error())
	case errors.Is(err, jobs.ErrJobExists), errors.Is(err, jobs.ErrJobNameTaken):
		return newError("already_exists", "name", err.Error())
	case errors.Is(err, jobs.ErrSavepointNotFound):
		return newError("not_found", "savepoint", err.Error())
	case errors.Is(err, jobs.ErrIncompatible):
		return newError("incompatible_savepoint", "savepoint", err.Error())
	case errors.Is(err, jobs.ErrFinished):
		return newError("not_running", "", err.Error())
	case errors.Is(err, jobs.ErrNotRunning):
		return newError("not_running", "", err.Error())
	}
	return fromStreamsError(err)
}

func (s *Server) jobsOr404(w http.ResponseWriter) bool {
	if s.jobs == nil {
		writeError(w, newError("not_found", "", "this server runs no jobs"))
		return false
	}
	return true
}

func (s *Server) submitJob(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) {
		return
	}
	src, ok := readJobFile(w, r)
	if !ok {
		return
	}
	if s.submitClusterJob(w, r, src) {
		return
	}
	q := r.URL.Query()
	opts := jobs.SubmitOptions{Savepoint: q.Get("savepoint")}
	switch v := q.Get("replace"); v {
	case "", "false", "0":
		opts.Replace = opts.Savepoint != ""
	case "true", "1":
		opts.Replace = true
	default:
		writeError(w, newError("invalid_argument", "replace", "replace must be true or false, not "+strconv.Quote(v)))
		return
	}
	j, err := s.jobs.SubmitWith(src, opts)
	if err != nil {
		writeError(w, jobError(err))
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": j.ID, "job": j.Info(false)})
}

func (s *Server) listJobs(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) {
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"jobs": s.visibleJobs(r, s.withClusterJobs(s.jobs.List()))})
}

func (s *Server) getJob(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) || s.getClusterJob(w, r) {
		return
	}
	in, err := s.jobs.Get(r.PathValue("id"))
	writeJobAnswer(w, http.StatusOK, in, err)
}

// stopJob stops a job; with ?savepoint=true it keeps the checkpoint its
// sources stopped at as a savepoint and names it in the answer. With
// ?purge=true it deletes a job that is not running instead, with its
// state and checkpoints.
func (s *Server) stopJob(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) || s.stopClusterJob(w, r) {
		return
	}
	id := r.PathValue("id")
	switch v := r.URL.Query().Get("purge"); v {
	case "", "false", "0":
	case "true", "1":
		if err := s.jobs.Delete(id); err != nil {
			writeError(w, jobError(err))
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
		return
	default:
		writeError(w, newError("invalid_argument", "purge", "purge must be true or false, not "+strconv.Quote(v)))
		return
	}
	var sp *jobs.SavepointInfo
	switch v := r.URL.Query().Get("savepoint"); v {
	case "", "false", "0":
		if err := s.jobs.Stop(id); err != nil {
			writeError(w, jobError(err))
			return
		}
	case "true", "1":
		info, err := s.jobs.Savepoint(id, true)
		if err != nil {
			writeError(w, jobError(err))
			return
		}
		sp = &info
	default:
		writeError(w, newError("invalid_argument", "savepoint", "savepoint must be true or false, not "+strconv.Quote(v)))
		return
	}
	in, _ := s.jobs.Get(id)
	if sp != nil {
		writeJSON(w, http.StatusOK, map[string]any{"job": in, "savepoint": sp})
		return
	}
	writeJSON(w, http.StatusOK, in)
}

func (s *Server) jobCheckpoints(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) || s.refuseClusterCheckpoints(w, r) {
		return
	}
	cps, err := s.jobs.Checkpoints(r.PathValue("id"))
	if cps == nil {
		cps = []jobs.CheckpointInfo{}
	}
	writeJobAnswer(w, http.StatusOK, map[string]any{"checkpoints": cps}, err)
}

func (s *Server) takeSavepoint(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) || s.refuseClusterCheckpoints(w, r) {
		return
	}
	sp, err := s.jobs.Savepoint(r.PathValue("id"), false)
	writeJobAnswer(w, http.StatusCreated, sp, err)
}

func (s *Server) listSavepoints(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) {
		return
	}
	sps, err := s.jobs.Savepoints()
	sps = s.visibleSavepoints(r, sps)
	if sps == nil {
		sps = []jobs.SavepointInfo{}
	}
	writeJobAnswer(w, http.StatusOK, map[string]any{"savepoints": sps}, err)
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request) (*sinks.Dashboard, bool) {
	if !s.jobsOr404(w) {
		return nil, false
	}
	d, err := s.jobs.Dashboard(r.PathValue("id"), r.URL.Query().Get("sink"))
	if err != nil {
		writeError(w, jobError(err))
		return nil, false
	}
	return d, true
}

// jobResults writes a dashboard sink's retained results: an Arrow IPC
// stream, or JSON rows with format=json.
func (s *Server) jobResults(w http.ResponseWriter, r *http.Request) {
	d, ok := s.dashboard(w, r)
	if !ok {
		return
	}
	switch r.URL.Query().Get("format") {
	case "", "arrow":
		w.Header().Set("Content-Type", arrowStream)
		if err := d.WriteIPC(w); err != nil {
			s.log.Warn("write results", "err", err)
		}
	case "json":
		w.Header().Set("Content-Type", "application/json")
		if err := d.WriteJSON(w); err != nil {
			s.log.Warn("write results", "err", err)
		}
	default:
		writeError(w, newError("invalid_argument", "format", "format must be arrow (default) or json"))
	}
}

// jobResultsLive streams a dashboard's results as one long Arrow IPC
// stream: the retained batches, then each new batch as its windows fire,
// flushed at once. It ends when the client goes away or the job's
// dashboard closes. At most Limits.MaxLiveResults are open at once, half
// of them of one token (429 past it).
func (s *Server) jobResultsLive(w http.ResponseWriter, r *http.Request) {
	d, ok := s.dashboard(w, r)
	if !ok {
		return
	}
	release, aerr := s.live.acquire(r)
	if aerr != nil {
		writeTooMany(w, aerr)
		return
	}
	defer release()
	fl, _ := w.(http.Flusher)
	sub := d.Subscribe(64)
	defer sub.Close()
	schema, batches, release := d.Batches()
	defer release()
	w.Header().Set("Content-Type", arrowStream)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// Before the first result the schema is not known yet: the stream
	// starts with the first batch.
	var iw *ipc.Writer
	if schema != nil {
		iw = ipc.NewWriter(w, ipc.WithSchema(schema))
		defer iw.Close()
	}
	for _, b := range batches {
		if err := iw.Write(b); err != nil {
			return
		}
	}
	if fl != nil {
		fl.Flush()
	}
	keepalive := time.NewTicker(15 * time.Second)
	defer keepalive.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case b, ok := <-sub.C():
			if !ok {
				return
			}
			if iw == nil {
				iw = ipc.NewWriter(w, ipc.WithSchema(b.Schema()))
				defer iw.Close()
			}
			if err := iw.Write(b); err != nil {
				return
			}
			if fl != nil {
				fl.Flush()
			}
		case <-keepalive.C:
			if fl != nil {
				fl.Flush()
			}
		}
	}
}
