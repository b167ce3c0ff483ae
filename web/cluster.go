package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runnel-dev/runnel/cluster"
	"github.com/runnel-dev/runnel/jobs"
)

// ClusterJobs runs jobs on a Kafka cluster (`runnel serve --cluster`,
// implemented by cluster.Registry): the jobs API hands it every job whose
// source is Kafka, and asks it first about a job id.
type ClusterJobs interface {
	Submit(ctx context.Context, spec *jobs.Spec, src []byte, replace bool) (jobs.Info, error)
	Stop(ctx context.Context, name string) error
	Delete(ctx context.Context, name string) error
	Has(name string) bool
	Info(name string) (jobs.Info, bool)
	List() []jobs.Info
	Status(ctx context.Context, name string) (*cluster.Status, error)
	// Resume and Redeploy: cluster/lifecycle.go.
	Resume(ctx context.Context, name string) (jobs.Info, error)
	Redeploy(ctx context.Context, name string, src []byte, fresh bool) (jobs.Info, error)
}

// clusterInfo is a cluster job's info as the API shows it.
type clusterInfo struct {
	jobs.Info
	// Cluster says the job runs on the Kafka cluster's workers: its
	// whole-job view is GET /api/v1/jobs/{id}/cluster.
	Cluster bool `json:"cluster"`
}

// MarshalJSON writes the job's info (jobs.Info has its own MarshalJSON,
// which embedding would promote over Cluster) with "cluster" added.
func (c clusterInfo) MarshalJSON() ([]byte, error) {
	b, err := json.Marshal(c.Info)
	if err != nil {
		return nil, err
	}
	out := append(b[:len(b)-1:len(b)-1], `,"cluster":`...)
	out = strconv.AppendBool(out, c.Cluster)
	return append(out, '}'), nil
}

// statusTimeout bounds the Kafka requests of one cluster view.
const statusTimeout = 10 * time.Second

func (s *Server) routeCluster(mux *routeMux) {
	mux.HandleFunc("GET /api/v1/jobs/{id}/cluster", s.jobCluster)
}

// jobCluster answers the whole-job view of a cluster job: workers and
// their tasks, lag per partition, rebalances.
func (s *Server) jobCluster(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if s.cluster == nil || !s.cluster.Has(id) {
		writeError(w, newError("not_found", "", "job "+strconv.Quote(id)+" does not run on a cluster (start the server with --cluster, and give the job a kafka source)"))
		return
	}
	if !clusterAllowed(w, r) {
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
	defer cancel()
	writeClusterStatus(w, func() (*cluster.Status, error) { return s.cluster.Status(ctx, id) })
}

func writeClusterStatus(w http.ResponseWriter, status func() (*cluster.Status, error)) {
	st, err := status()
	switch {
	case errors.Is(err, cluster.ErrNotStarted):
		writeError(w, newError("not_running", "", err.Error()+"; try again in a moment"))
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, newError("unavailable", "", "the Kafka cluster did not answer in time: "+err.Error()))
	case err != nil:
		writeError(w, jobError(err))
	default:
		writeJSON(w, http.StatusOK, st)
	}
}

// submitClusterJob takes a job with a Kafka source to the cluster; it
// returns false (having answered nothing) for other jobs.
func (s *Server) submitClusterJob(w http.ResponseWriter, r *http.Request, src []byte) bool {
	if s.cluster == nil {
		return false
	}
	spec, err := jobs.Parse(src)
	if err != nil || !cluster.IsClusterJob(spec) {
		return false // the local manager answers, with its own errors
	}
	if err := spec.CheckScripts(); err != nil {
		writeError(w, jobError(err))
		return true
	}
	if q := r.URL.Query(); q.Get("savepoint") != "" {
		writeError(w, newError("invalid_argument", "savepoint", "cluster jobs keep their state in Kafka changelog topics: they start from no savepoint"))
		return true
	}
	if !clusterAllowed(w, r) {
		return true
	}
	replace := r.URL.Query().Get("replace") == "true" || r.URL.Query().Get("replace") == "1"
	in, err := s.cluster.Submit(r.Context(), spec, src, replace)
	if err != nil {
		writeError(w, jobError(err))
		return true
	}
	writeJSON(w, http.StatusCreated, map[string]any{"id": in.ID, "job": clusterInfo{in, true}})
	return true
}

// getClusterJob answers GET /api/v1/jobs/{id} for a cluster job.
func (s *Server) getClusterJob(w http.ResponseWriter, r *http.Request) bool {
	if s.cluster == nil {
		return false
	}
	in, ok := s.cluster.Info(r.PathValue("id"))
	if !ok {
		return false
	}
	if !clusterAllowed(w, r) {
		return true
	}
	writeJSON(w, http.StatusOK, clusterInfo{in, true})
	return true
}

// stopClusterJob answers DELETE /api/v1/jobs/{id} for a cluster job: it
// stops the job on every server (or, with ?purge=true, deletes a stopped
// one).
func (s *Server) stopClusterJob(w http.ResponseWriter, r *http.Request) bool {
	id := r.PathValue("id")
	if s.cluster == nil || !s.cluster.Has(id) {
		return false
	}
	if !clusterAllowed(w, r) {
		return true
	}
	q := r.URL.Query()
	if v := q.Get("savepoint"); v == "true" || v == "1" {
		writeError(w, newError("invalid_argument", "savepoint", "cluster jobs keep their state in Kafka changelog topics: stop them without a savepoint"))
		return true
	}
	if v := q.Get("purge"); v == "true" || v == "1" {
		if err := s.cluster.Delete(r.Context(), id); err != nil {
			writeError(w, jobError(err))
			return true
		}
		writeJSON(w, http.StatusOK, map[string]any{"id": id, "deleted": true})
		return true
	}
	if err := s.cluster.Stop(r.Context(), id); err != nil {
		writeError(w, jobError(err))
		return true
	}
	in, _ := s.cluster.Info(id)
	writeJSON(w, http.StatusOK, clusterInfo{in, true})
	return true
}

// clusterAllowed refuses a token limited to streams: a cluster job's
// topics are Kafka's, which stream grants do not name.
func clusterAllowed(w http.ResponseWriter, r *http.Request) bool {
	if p := PrincipalFrom(r.Context()); p != nil && !p.Unrestricted() {
		writeError(w, forbidden(p, "cluster jobs read and write Kafka topics, which a token limited to streams may not use"))
		return false
	}
	return true
}

// withClusterJobs adds the cluster's jobs to a list of local ones.
func (s *Server) withClusterJobs(local []jobs.Info) []jobs.Info {
	if s.cluster == nil {
		return local
	}
	return append(local, s.cluster.List()...)
}

// WorkerHandler is `runnel worker --listen`'s handler: GET /metrics (reg)
// and GET /api/v1/jobs/{job}/cluster (the whole-job view) for the one
// job the worker runs, and GET /healthz. It has no authentication: it
// shows figures and task placement, changes nothing, and listens on
// loopback unless told otherwise.
func WorkerHandler(job string, reg *prometheus.Registry, status func(context.Context) (*cluster.Status, error)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, map[string]any{"ok": true}) })
	mux.HandleFunc("GET /api/v1/jobs/{id}/cluster", func(w http.ResponseWriter, r *http.Request) {
		if id := r.PathValue("id"); id != job {
			writeError(w, newError("not_found", "", "this worker runs job "+strconv.Quote(job)+", not "+strconv.Quote(id)))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), statusTimeout)
		defer cancel()
		writeClusterStatus(w, func() (*cluster.Status, error) { return status(ctx) })
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, newError("not_found", "", r.Method+" "+r.URL.Path+": a worker serves GET /metrics, GET /healthz and GET /api/v1/jobs/{id}/cluster"))
	})
	return mux
}
