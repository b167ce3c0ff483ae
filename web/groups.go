package web

import (
	"errors"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/apitime"
)

// REST API for consumer groups: /api/v1/streams/{name}/consumer-groups.
// The shapes and the lease protocol are documented in docs/api.md and
// docs/clients.md. Everything a worker does (create a group, sync,
// checkpoint, release, leave) needs the reader role on the stream: reading
// a stream is consuming it. Deleting a group throws away its checkpoints
// for every worker of every application, so it needs an admin.

const groupsPath = "/api/v1/streams/{name}/consumer-groups"

func (s *Server) routeGroups(mux *routeMux) {
	for pattern, h := range map[string]http.HandlerFunc{
		"POST " + groupsPath:                                        s.createGroup,
		"GET " + groupsPath:                                         s.listGroups,
		"GET " + groupsPath + "/{group}":                            s.describeGroup,
		"DELETE " + groupsPath + "/{group}":                         s.deleteGroup,
		"POST " + groupsPath + "/{group}/workers/{worker}/sync":     s.syncWorker,
		"DELETE " + groupsPath + "/{group}/workers/{worker}":        s.leaveGroup,
		"POST " + groupsPath + "/{group}/shards/{shard}/checkpoint": s.checkpointShard,
		"POST " + groupsPath + "/{group}/shards/{shard}/release":    s.releaseShard,
	} {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			if s.groups == nil {
				writeError(w, newError("unavailable", "", "this server keeps no consumer groups"))
				return
			}
			h(w, r)
		})
	}
}

// fromGroupsError maps a consumergroups error onto the REST table.
func fromGroupsError(err error) error {
	var ge *consumergroups.Error
	field := ""
	if errors.As(err, &ge) {
		field = ge.Field
	}
	switch {
	case errors.Is(err, consumergroups.ErrLeaseLost):
		return newError("lease_lost", field, err.Error())
	case errors.Is(err, consumergroups.ErrNotFound):
		return newError("not_found", field, err.Error())
	case errors.Is(err, consumergroups.ErrExists):
		return newError("already_exists", field, err.Error())
	case errors.Is(err, consumergroups.ErrInvalid):
		return newError("invalid_argument", field, err.Error())
	case errors.Is(err, consumergroups.ErrLimit):
		return newError("limit_exceeded", field, err.Error())
	case errors.Is(err, consumergroups.ErrUnavailable):
		return newError("unavailable", "", err.Error())
	}
	return err // a streams error, mapped by writeError
}

type leaseJSON struct {
	Shard            string `json:"shard"`
	Parent           string `json:"parent,omitempty"`
	AdjacentParent   string `json:"adjacent_parent,omitempty"`
	HashKeyStart     string `json:"hash_key_start"`
	HashKeyEnd       string `json:"hash_key_end"`
	Owner            string `json:"owner,omitempty"`
	Epoch            uint64 `json:"epoch"`
	Expires          string `json:"expires,omitempty"`
	SequenceNumber   string `json:"sequence_number,omitempty"`
	SubSequence      uint64 `json:"sub_sequence_number"`
	Finished         bool   `json:"finished"`
	ReleaseRequested bool   `json:"release_requested,omitempty"`
}

func toLeaseJSON(l consumergroups.Lease) leaseJSON {
	out := leaseJSON{Shard: l.Shard, Parent: l.Parent, AdjacentParent: l.AdjacentParent, HashKeyStart: l.HashKeyStart,
		HashKeyEnd: l.HashKeyEnd, Owner: l.Owner, Epoch: l.Epoch, SequenceNumber: l.Checkpoint.SequenceNumber,
		SubSequence: l.Checkpoint.SubSequenceNumber, Finished: l.Finished(), ReleaseRequested: l.ReleaseRequested}
	if !l.Expires.IsZero() {
		out.Expires = apitime.Format(l.Expires)
	}
	return out
}

type groupJSON struct {
	Stream          string      `json:"stream"`
	Name            string      `json:"name"`
	LeaseDurationMS int64       `json:"lease_duration_ms"`
	Start           string      `json:"start"`
	Created         string      `json:"created"`
	Workers         []string    `json:"workers,omitempty"`
	Leases          []leaseJSON `json:"leases,omitempty"`
	StaleRefused    int64       `json:"stale_refused"`
}

func toGroupJSON(g consumergroups.Group, full bool) groupJSON {
	out := groupJSON{Stream: g.Stream, Name: g.Name, LeaseDurationMS: g.LeaseDuration.Milliseconds(), Start: g.Start,
		Created: apitime.Format(g.Created), StaleRefused: g.StaleRefused}
	if full {
		out.Workers = g.Workers
		out.Leases = []leaseJSON{}
		for _, l := range g.Leases {
			out.Leases = append(out.Leases, toLeaseJSON(l))
		}
	}
	return out
}

func (s *Server) createGroup(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name            string `json:"name"`
		LeaseDurationMS int64  `json:"lease_duration_ms"`
		Start           string `json:"start"`
	}
	if err := decodeBody(w, r, smallBody, &req); err != nil {
		writeError(w, err)
		return
	}
	g, err := s.groups.Create(consumergroups.Config{Stream: r.PathValue("name"), Name: req.Name,
		LeaseDuration: time.Duration(req.LeaseDurationMS) * time.Millisecond, Start: req.Start})
	if err != nil {
		writeError(w, fromGroupsError(err))
		return
	}
	writeJSON(w, http.StatusCreated, toGroupJSON(g, true))
}

func (s *Server) listGroups(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if _, err := s.store.DescribeStream(name); err != nil {
		writeError(w, err)
		return
	}
	out := []groupJSON{}
	for _, g := range s.groups.List(name) {
		out = append(out, toGroupJSON(g, false))
	}
	writeJSON(w, http.StatusOK, map[string]any{"consumer_groups": out})
}

func (s *Server) describeGroup(w http.ResponseWriter, r *http.Request) {
	g, err := s.groups.Describe(r.PathValue("name"), r.PathValue("group"))
	if err != nil {
		writeError(w, fromGroupsError(err))
		return
	}
	writeJSON(w, http.StatusOK, toGroupJSON(g, true))
}

func (s *Server) deleteGroup(w http.ResponseWriter, r *http.Request) {
	if err := s.groups.Delete(r.PathValue("name"), r.PathValue("group")); err != nil {
		writeError(w, fromGroupsError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// syncWorker registers or renews a worker and answers the leases it holds.
func (s *Server) syncWorker(w http.ResponseWriter, r *http.Request) {
	res, err := s.groups.Sync(r.PathValue("name"), r.PathValue("group"), r.PathValue("worker"))
	if err != nil {
		writeError(w, fromGroupsError(err))
		return
	}
	out := struct {
		LeaseDurationMS int64       `json:"lease_duration_ms"`
		Start           string      `json:"start"`
		Leases          []leaseJSON `json:"leases"`
	}{res.LeaseDuration.Milliseconds(), res.Start, []leaseJSON{}}
	for _, l := range res.Leases {
		out.Leases = append(out.Leases, toLeaseJSON(l))
	}
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) leaveGroup(w http.ResponseWriter, r *http.Request) {
	if err := s.groups.Leave(r.PathValue("name"), r.PathValue("group"), r.PathValue("worker")); err != nil {
		writeError(w, fromGroupsError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// leaseReq is the body of a checkpoint or a release.
type leaseReq struct {
	Worker         string  `json:"worker"`
	Epoch          *uint64 `json:"epoch"`
	SequenceNumber string  `json:"sequence_number"`
	SubSequence    uint64  `json:"sub_sequence_number"`
}

func (req *leaseReq) decode(w http.ResponseWriter, r *http.Request) error {
	if err := decodeBody(w, r, smallBody, req); err != nil {
		return err
	}
	if err := consumergroups.ValidName("worker", req.Worker); err != nil {
		return fromGroupsError(err)
	}
	if req.Epoch == nil {
		return newError("invalid_argument", "epoch", "epoch is required: the epoch of the lease the worker holds (from its sync)")
	}
	return nil
}

func (s *Server) checkpointShard(w http.ResponseWriter, r *http.Request) {
	var req leaseReq
	if err := req.decode(w, r); err != nil {
		writeError(w, err)
		return
	}
	err := s.groups.Checkpoint(r.PathValue("name"), r.PathValue("group"), r.PathValue("shard"), req.Worker, *req.Epoch,
		consumergroups.Checkpoint{SequenceNumber: req.SequenceNumber, SubSequenceNumber: req.SubSequence})
	if err != nil {
		writeError(w, fromGroupsError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) releaseShard(w http.ResponseWriter, r *http.Request) {
	var req leaseReq
	if err := req.decode(w, r); err != nil {
		writeError(w, err)
		return
	}
	var cp *consumergroups.Checkpoint
	if req.SequenceNumber != "" {
		cp = &consumergroups.Checkpoint{SequenceNumber: req.SequenceNumber, SubSequenceNumber: req.SubSequence}
	}
	if err := s.groups.Release(r.PathValue("name"), r.PathValue("group"), r.PathValue("shard"), req.Worker, *req.Epoch, cp); err != nil {
		writeError(w, fromGroupsError(err))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// groupsCollector exports the groups' figures.
type groupsCollector struct{ m *consumergroups.Manager }

var (
	groupLeasesDesc = prometheus.NewDesc("runnel_consumer_group_leases", "Leases of a consumer group, by state (held, free, finished).",
		[]string{"stream", "group", "state"}, nil)
	groupWorkersDesc = prometheus.NewDesc("runnel_consumer_group_workers", "Live workers of a consumer group.",
		[]string{"stream", "group"}, nil)
	groupStaleDesc = prometheus.NewDesc("runnel_consumer_group_stale_refused_total",
		"Checkpoints and releases refused since the server started because the worker no longer held the lease.",
		[]string{"stream", "group"}, nil)
)

func (c groupsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- groupLeasesDesc
	ch <- groupWorkersDesc
	ch <- groupStaleDesc
}

func (c groupsCollector) Collect(ch chan<- prometheus.Metric) {
	now := time.Now()
	for _, g := range c.m.Groups() {
		counts := map[string]float64{"held": 0, "free": 0, "finished": 0}
		for _, l := range g.Leases {
			switch {
			case l.Finished():
				counts["finished"]++
			case l.Owner != "" && now.Before(l.Expires):
				counts["held"]++
			default:
				counts["free"]++
			}
		}
		for state, n := range counts {
			ch <- prometheus.MustNewConstMetric(groupLeasesDesc, prometheus.GaugeValue, n, g.Stream, g.Name, state)
		}
		ch <- prometheus.MustNewConstMetric(groupWorkersDesc, prometheus.GaugeValue, float64(len(g.Workers)), g.Stream, g.Name)
		ch <- prometheus.MustNewConstMetric(groupStaleDesc, prometheus.CounterValue, float64(g.StaleRefused), g.Stream, g.Name)
	}
}
