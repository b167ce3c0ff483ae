package web

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/runnel-dev/runnel/jobs"
)

// Lifecycle routes beside submit and stop:
//
//	POST   /api/v1/jobs/{id}/resume   start a stopped or failed job again from its latest checkpoint
//	POST   /api/v1/jobs/{id}/restart  {"checkpoint": "EPOCH"} or {"savepoint": "NAME"}: from that state
//	PUT    /api/v1/jobs/{id}?from=savepoint|none  deploy a new job file over the job
//	DELETE /api/v1/jobs/{id}?purge=true  delete a job that is not running, with its state

func (s *Server) routeLifecycle(mux *routeMux) {
	mux.HandleFunc("POST /api/v1/jobs/{id}/resume", s.resumeJob)
	mux.HandleFunc("POST /api/v1/jobs/{id}/restart", s.restartJob)
	mux.HandleFunc("PUT /api/v1/jobs/{id}", s.deployJob)
}

func (s *Server) resumeJob(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) || s.resumeClusterJob(w, r) {
		return
	}
	j, err := s.jobs.Resume(r.PathValue("id"))
	writeJobInfo(w, j, err)
}

func (s *Server) restartJob(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) || s.restartClusterJob(w, r) {
		return
	}
	var req struct {
		Checkpoint json.RawMessage `json:"checkpoint"`
		Savepoint  string          `json:"savepoint"`
		// From is a cluster job's (restartClusterJob): refused here
		// with that reason.
		From *string `json:"from"`
	}
	if err := decodeBody(w, r, smallBody, &req); err != nil {
		writeError(w, withHint(err, `the body is {"checkpoint": "EPOCH"} or {"savepoint": "NAME"}`))
		return
	}
	if req.From != nil {
		writeError(w, newError("invalid_argument", "from", `"from" restarts a job on Kafka workers; this job restarts from {"checkpoint": "EPOCH"} (GET /api/v1/jobs/{id}/checkpoints) or {"savepoint": "NAME"}`))
		return
	}
	// A checkpoint id is its epoch, as a string or a number.
	var cp string
	if len(req.Checkpoint) > 0 && string(req.Checkpoint) != "null" {
		if err := json.Unmarshal(req.Checkpoint, &cp); err != nil {
			var n uint64
			if json.Unmarshal(req.Checkpoint, &n) != nil {
				writeError(w, newError("invalid_argument", "checkpoint", "checkpoint must be a checkpoint's epoch, not "+string(req.Checkpoint)))
				return
			}
			cp = strconv.FormatUint(n, 10)
		}
	}
	if (cp == "") == (req.Savepoint == "") {
		writeError(w, newError("invalid_argument", "checkpoint", `give exactly one of "checkpoint" (an epoch from GET /api/v1/jobs/{id}/checkpoints) and "savepoint" (a name from GET /api/v1/savepoints)`))
		return
	}
	j, err := s.jobs.Restart(r.PathValue("id"), jobs.RestartFrom{Checkpoint: cp, Savepoint: req.Savepoint})
	writeJobInfo(w, j, err)
}

func (s *Server) deployJob(w http.ResponseWriter, r *http.Request) {
	if !s.jobsOr404(w) {
		return
	}
	cluster := s.clusterJob(r)
	if cluster && !clusterAllowed(w, r) {
		return
	}
	from := jobs.DeployFrom(r.URL.Query().Get("from"))
	switch from {
	case "":
		from = jobs.DeploySavepoint
	case jobs.DeploySavepoint, jobs.DeployNone:
	default:
		writeError(w, newError("invalid_argument", "from", "from must be savepoint (default) or none, not "+strconv.Quote(string(from))))
		return
	}
	src, ok := readJobFile(w, r)
	if !ok {
		return
	}
	if cluster {
		s.deployClusterJob(w, r, src, from == jobs.DeployNone)
		return
	}
	d, err := s.jobs.Deploy(r.PathValue("id"), src, from)
	if err != nil {
		writeError(w, jobError(err))
		return
	}
	out := map[string]any{"id": d.Job.ID, "job": d.Job.Info(false)}
	if d.Savepoint != "" {
		out["savepoint"] = d.Savepoint
	}
	writeJSON(w, http.StatusOK, out)
}
