package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/runnel-dev/runnel/cluster"
	"github.com/runnel-dev/runnel/web"
)

// clusterFlags are `runnel serve`'s flags for running jobs on a Kafka
// cluster (docs/scale-out.md).
type clusterFlags struct {
	brokers *string
	id      *string
	commit  *time.Duration
	session *time.Duration
}

func addClusterFlags(fs *flag.FlagSet) *clusterFlags {
	host, _ := os.Hostname()
	return &clusterFlags{
		brokers: fs.String("cluster", "", "kafka://HOST:PORT[,HOST:PORT...]: run submitted jobs whose source is Kafka on this Kafka cluster, beside the other servers and workers of the cluster (off by default)"),
		id:      fs.String("cluster-id", host, "with --cluster: this server's worker name in every cluster job (unique among the job's workers, the same after a restart)"),
		commit:  fs.Duration("cluster-commit-interval", cluster.DefaultCommitInterval, "with --cluster: how often this server's workers commit their transactions"),
		session: fs.Duration("cluster-session-timeout", cluster.DefaultSessionTimeout, "with --cluster: how long a job's group waits for a silent worker before moving its tasks"),
	}
}

// parseCluster reads a --cluster kafka://HOST:PORT[,HOST:PORT...] value.
func parseCluster(v string) ([]string, error) {
	addrs, ok := strings.CutPrefix(v, "kafka://")
	if !ok || addrs == "" {
		return nil, fmt.Errorf("%w: --cluster kafka://HOST:PORT[,HOST:PORT...], not %q", errUsage, v)
	}
	return strings.Split(addrs, ","), nil
}

// start runs the cluster's jobs registry when --cluster is given, and
// hands it to the web server's config. stop ends it and its workers.
func (c *clusterFlags) start(cfg *web.Config, log *slog.Logger) (stop func(), err error) {
	if *c.brokers == "" {
		return func() {}, nil
	}
	brokers, err := parseCluster(*c.brokers)
	if err != nil {
		return nil, err
	}
	if *c.id == "" || strings.ContainsAny(*c.id, " /") {
		return nil, fmt.Errorf("%w: --cluster-id %q: give a name without spaces or slashes", errUsage, *c.id)
	}
	metrics := cluster.NewMetrics()
	reg, err := cluster.NewRegistry(cluster.RegistryConfig{Brokers: brokers, Worker: cluster.Config{ID: *c.id,
		CommitInterval: *c.commit, SessionTimeout: *c.session, Log: log, Metrics: metrics}})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := reg.Run(ctx); err != nil {
			log.Error("cluster jobs stopped: jobs submitted with a kafka source are not run here", "err", err)
		}
	}()
	cfg.Cluster, cfg.ClusterMetrics = reg, metrics
	log.Info("cluster jobs on", "cluster", *c.brokers, "id", *c.id, "topic", cluster.JobsTopic)
	return func() { cancel(); <-done }, nil
}

// serveWorker serves a worker's metrics and whole-job view on addr until
// ctx ends; wait waits for the listener to close.
func serveWorker(ctx context.Context, addr string, w *cluster.Worker, job string, metrics *cluster.Metrics, log *slog.Logger) (wait func(), err error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), metrics)
	if !web.IsLoopback(addr) {
		log.Warn("--listen is not a loopback address: the worker's metrics and task placement are served without authentication", "addr", addr)
	}
	h := web.WorkerHandler(job, reg, w.Status)
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := web.ListenAndServe(ctx, addr, h, 5*time.Second, func(a net.Addr) {
			log.Info("worker listening", "addr", a.String(), "metrics", "http://"+a.String()+"/metrics")
			ready <- nil
		})
		if err != nil {
			ready <- err
			log.Error("worker listener stopped", "addr", addr, "err", err)
		}
	}()
	if err := <-ready; err != nil {
		return nil, fmt.Errorf("--listen %s: %w", addr, err)
	}
	return func() { <-done }, nil
}
