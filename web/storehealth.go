package web

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/runnel-dev/runnel/internal/apitime"
	"github.com/runnel-dev/runnel/streams"
)

// healthz answers 200 while the server serves (liveness), and lists what
// the store found wrong when it opened (lost records, recovered metadata,
// orphaned directories), shards stopped by a full disk and how many jobs
// are still starting since the server started, so that a health check or
// an operator sees them.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	out := map[string]any{"status": "ok"}
	if n := s.jobsStarting(); n > 0 {
		out["jobs_starting"] = n
	}
	if s.store != nil {
		if ps := s.store.Problems(); len(ps) > 0 {
			type problemJSON struct {
				streams.Problem
				Time apitime.Time `json:"time"`
			}
			pj := make([]problemJSON, len(ps))
			for i, p := range ps {
				pj[i] = problemJSON{p, apitime.Time(p.Time)}
			}
			out["problems"] = pj
		}
		if df := s.store.DiskFull(); df.Shards > 0 {
			out["disk_full_shards"] = df.Shards
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// readyz answers 200 once the server is ready (readiness): the jobs it
// found running when it started have each begun their run, failed to
// start or been stopped. Until then it answers 503 with how many still
// start, while the APIs already answer (jobs start in the background).
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	if n := s.jobsStarting(); n > 0 {
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "starting", "jobs_starting": n})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready"})
}

// jobsStarting is how many of the jobs found running at the server's
// start are still starting.
func (s *Server) jobsStarting() int {
	if s.jobs == nil {
		return 0
	}
	return s.jobs.BootStarting()
}

// storeHealthCollector exports the store's limits, open files, disk-full
// state, problems and lost records.
type storeHealthCollector struct {
	store                                 *streams.Store
	problems, lost, diskFull, diskRefused *prometheus.Desc
	streams, shards, files                *prometheus.Desc
	maxStreams, maxShards, maxFiles       *prometheus.Desc
	corruptions                           *prometheus.Desc
}

func newStoreHealthCollector(st *streams.Store) *storeHealthCollector {
	return &storeHealthCollector{store: st,
		problems:    prometheus.NewDesc("runnel_store_problems", "Problems the store found when it opened, by kind (lost_records, metadata_recovered, orphan_directory); see /healthz.", []string{"kind"}, nil),
		lost:        prometheus.NewDesc("runnel_shard_records_lost", "Acknowledged records of a shard found missing when the store opened.", []string{"stream", "shard"}, nil),
		corruptions: prometheus.NewDesc("runnel_store_corruptions", "Damaged regions of shard logs found since the store opened (skipped, never returned).", nil, nil),
		diskFull:    prometheus.NewDesc("runnel_store_disk_full_shards", "Shards refusing writes now because the disk is full.", nil, nil),
		diskRefused: prometheus.NewDesc("runnel_store_disk_full_refusals_total", "Writes refused (with a retryable error) because the disk was full.", nil, nil),
		streams:     prometheus.NewDesc("runnel_store_streams", "Streams held (capped by --max-streams).", nil, nil),
		shards:      prometheus.NewDesc("runnel_store_open_shards", "Open shards of all streams (capped by --max-shards).", nil, nil),
		files:       prometheus.NewDesc("runnel_store_open_files", "Segment files open now (capped by --max-open-files; idle ones are closed).", nil, nil),
		maxStreams:  prometheus.NewDesc("runnel_store_max_streams", "The --max-streams limit.", nil, nil),
		maxShards:   prometheus.NewDesc("runnel_store_max_open_shards", "The --max-shards limit.", nil, nil),
		maxFiles:    prometheus.NewDesc("runnel_store_max_open_files", "The --max-open-files limit.", nil, nil),
	}
}

func (c *storeHealthCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.problems, c.lost, c.corruptions, c.diskFull, c.diskRefused, c.streams, c.shards, c.files, c.maxStreams, c.maxShards, c.maxFiles} {
		ch <- d
	}
}

func (c *storeHealthCollector) Collect(ch chan<- prometheus.Metric) {
	kinds := map[string]int{streams.ProblemLostRecords: 0, streams.ProblemMetadataRecovered: 0, streams.ProblemOrphanDirectory: 0}
	for _, p := range c.store.Problems() {
		kinds[p.Kind]++
	}
	for k, n := range kinds {
		ch <- prometheus.MustNewConstMetric(c.problems, prometheus.GaugeValue, float64(n), k)
	}
	for _, s := range c.store.ListStreams() {
		for _, sh := range s.Shards {
			var n uint64
			for _, l := range sh.Lost {
				n += l.To - l.From + 1
			}
			if n > 0 {
				ch <- prometheus.MustNewConstMetric(c.lost, prometheus.GaugeValue, float64(n), s.Name, sh.ID)
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.corruptions, prometheus.GaugeValue, float64(len(c.store.Corruptions())))
	df := c.store.DiskFull()
	ch <- prometheus.MustNewConstMetric(c.diskFull, prometheus.GaugeValue, float64(df.Shards))
	ch <- prometheus.MustNewConstMetric(c.diskRefused, prometheus.CounterValue, float64(df.RefusedWrites))
	l := c.store.Limits()
	ch <- prometheus.MustNewConstMetric(c.streams, prometheus.GaugeValue, float64(l.Streams))
	ch <- prometheus.MustNewConstMetric(c.shards, prometheus.GaugeValue, float64(l.OpenShards))
	ch <- prometheus.MustNewConstMetric(c.files, prometheus.GaugeValue, float64(l.Files.Open))
	ch <- prometheus.MustNewConstMetric(c.maxStreams, prometheus.GaugeValue, float64(l.MaxStreams))
	ch <- prometheus.MustNewConstMetric(c.maxShards, prometheus.GaugeValue, float64(l.MaxOpenShards))
	ch <- prometheus.MustNewConstMetric(c.maxFiles, prometheus.GaugeValue, float64(l.Files.Capacity))
}
