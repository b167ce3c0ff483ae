package web

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/runnel-dev/runnel/cluster"
	"github.com/runnel-dev/runnel/jobs"
)

// The lifecycle of a cluster job (cluster/lifecycle.go): resume, restart
// from the beginning, and a new job file deployed over it. Its state is in
// Kafka (the group's offsets and the changelog topics), so it has no
// checkpoints or savepoints: asking for them is a 409 cluster_job that
// says what to do instead.

// noCheckpoints is why a cluster job refuses checkpoints and savepoints.
const noCheckpoints = "cluster jobs keep their state in Kafka (their group's offsets and changelog topics), not in checkpoints or savepoints: " +
	`resume a stopped one (POST /api/v1/jobs/{id}/resume), restart it from the beginning (POST /api/v1/jobs/{id}/restart {"from": "beginning"}), ` +
	"or deploy a new file over it (PUT /api/v1/jobs/{id}, which keeps the state of operators that keep their ids)"

// clusterJob reports whether the request's job is a cluster job.
func (s *Server) clusterJob(r *http.Request) bool {
	return s.cluster != nil && s.cluster.Has(r.PathValue("id"))
}

// refuseClusterCheckpoints answers the checkpoint and savepoint requests
// of a cluster job with a 409.
func (s *Server) refuseClusterCheckpoints(w http.ResponseWriter, r *http.Request) bool {
	if !s.clusterJob(r) {
		return false
	}
	if clusterAllowed(w, r) {
		writeError(w, newError("cluster_job", "", noCheckpoints))
	}
	return true
}

// resumeClusterJob answers POST /api/v1/jobs/{id}/resume for a cluster job.
func (s *Server) resumeClusterJob(w http.ResponseWriter, r *http.Request) bool {
	if !s.clusterJob(r) {
		return false
	}
	if !clusterAllowed(w, r) {
		return true
	}
	in, err := s.cluster.Resume(r.Context(), r.PathValue("id"))
	writeClusterLifecycle(w, in, err)
	return true
}

// restartClusterJob answers POST /api/v1/jobs/{id}/restart for a cluster
// job: {"from": "beginning"} starts it over; a checkpoint or savepoint is
// refused.
func (s *Server) restartClusterJob(w http.ResponseWriter, r *http.Request) bool {
	if !s.clusterJob(r) {
		return false
	}
	if !clusterAllowed(w, r) {
		return true
	}
	var req struct {
		From       string          `json:"from"`
		Checkpoint json.RawMessage `json:"checkpoint"`
		Savepoint  string          `json:"savepoint"`
	}
	err := decodeBody(w, r, smallBody, &req)
	switch {
	case err != nil:
		writeError(w, withHint(err, `a cluster job restarts with the body {"from": "beginning"}`))
	case len(req.Checkpoint) > 0 || req.Savepoint != "":
		writeError(w, newError("cluster_job", "checkpoint", noCheckpoints))
	case req.From != "beginning":
		writeError(w, newError("invalid_argument", "from", `a cluster job restarts with {"from": "beginning"} (its state and offsets are dropped, as a new group); to keep its state, resume it`))
	default:
		in, err := s.cluster.Redeploy(r.Context(), r.PathValue("id"), nil, true)
		writeClusterLifecycle(w, in, err)
	}
	return true
}

// deployClusterJob deploys src over a cluster job (deployJob has read
// it): the new file runs once every worker of the old one has left;
// fresh drops the state (a restart from the beginning with the new
// file), otherwise operators that keep their ids keep their state.
func (s *Server) deployClusterJob(w http.ResponseWriter, r *http.Request, src []byte, fresh bool) {
	in, err := s.cluster.Redeploy(r.Context(), r.PathValue("id"), src, fresh)
	if err != nil {
		writeClusterLifecycle(w, in, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": in.ID, "job": clusterInfo{in, true}})
}

func writeClusterLifecycle(w http.ResponseWriter, in jobs.Info, err error) {
	switch {
	case errors.Is(err, cluster.ErrWorkersRemain):
		writeError(w, newError("running", "", err.Error()))
	case errors.Is(err, cluster.ErrPlan):
		writeError(w, newError("invalid_job", "", err.Error()))
	case err != nil:
		writeError(w, jobError(err))
	default:
		writeJSON(w, http.StatusOK, clusterInfo{in, true})
	}
}
