package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/runnel-dev/runnel/cluster"
	"github.com/runnel-dev/runnel/jobs"
)

func init() {
	register("worker", "run a share of a job on a Kafka cluster, beside other workers", runWorker)
}

func runWorker(args []string) error {
	fs := newFlags("worker", "worker --cluster kafka://BROKERS --job FILE [--id NAME]", `
Joins the job's group on the Kafka cluster and runs the tasks the group assigns to this
worker: start as many workers as needed, on any machines, with the same job file; adding or
removing one moves tasks and their state between them. The job's source must be a Kafka
topic on the cluster, or a Kinesis stream whose shards the workers share through leases in
PostgreSQL (--leases-postgres); its sinks must be Kafka topics on the cluster, PostgreSQL
tables or S3 buckets. Output, state changes and input offsets commit in one Kafka
transaction per --commit-interval, so a worker killed at any moment loses and duplicates
nothing (readers of the sink topics use read_committed). A PostgreSQL or S3 sink's rows
go through the topic <job>.<sink>.outbox, from which the workers deliver them exactly once
(PostgreSQL: rows and a progress row in one transaction; S3: objects named by outbox
offsets), one commit interval or so after they commit. --id names the worker: keep it when
the worker restarts, and unique among the job's workers. See docs/scale-out.md.`)
	brokers := fs.String("cluster", "", "kafka://HOST:PORT[,HOST:PORT...]: the Kafka cluster")
	jobFile := fs.String("job", "", "the job file")
	host, _ := os.Hostname()
	id := fs.String("id", host, "this worker's name among the job's workers")
	partitions := fs.Int("partitions", 0, "partitions of the internal topics when this worker creates them (0: the source topic's)")
	commit := fs.Duration("commit-interval", cluster.DefaultCommitInterval, "how often the worker commits its transaction")
	session := fs.Duration("session-timeout", cluster.DefaultSessionTimeout, "how long the group waits for a silent worker before moving its tasks")
	idle := fs.Duration("idle-timeout", cluster.DefaultIdleTimeout, "how long a source partition's reads wait without records before it stops holding back the watermark (time spent processing or committing does not count; negative: never)")
	data := fs.String("data", "", "directory of the worker's local copy of its tasks' state (Pebble): a task coming back restores from it plus its changelog's tail (empty: none, tasks restore from their whole changelogs)")
	snapshot := fs.String("snapshot", "", "s3://BUCKET[/PREFIX][?endpoint=URL&region=R&path_style=true]: write each task's state there every --snapshot-every commits, and restore a task that has no local state from it plus its changelog's tail (needs --data; credentials from the AWS environment)")
	snapEvery := fs.Int("snapshot-every", cluster.DefaultSnapshotEvery, "commits between snapshots")
	leases := fs.String("leases-postgres", "", "PostgreSQL connection string of the shard-lease table, for a job whose source is kinesis")
	leaseDur := fs.Duration("lease-duration", 0, "with --leases-postgres: how long a worker's shard leases last without renewal (0: 10s)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	listen := fs.String("listen", "127.0.0.1:0", "serve GET /metrics, GET /healthz and GET /api/v1/jobs/JOB/cluster (the whole job) on this address, without authentication (default: a free loopback port, logged; off: none)")
	if _, err := parseInterspersed(fs, args, 0, ""); err != nil {
		return err
	}
	addrs, ok := strings.CutPrefix(*brokers, "kafka://")
	if *brokers == "" {
		return fmt.Errorf("%w: --cluster kafka://HOST:PORT[,HOST:PORT...] is required", errUsage)
	}
	if !ok || addrs == "" {
		return fmt.Errorf("%w: --cluster kafka://HOST:PORT[,HOST:PORT...], not %q", errUsage, *brokers)
	}
	if *jobFile == "" {
		return fmt.Errorf("%w: --job FILE is required", errUsage)
	}
	log, err := newLogger(*logLevel, "text")
	if err != nil {
		return err
	}
	src, err := os.ReadFile(*jobFile)
	if err != nil {
		return err
	}
	spec, err := jobs.Parse(src)
	if err != nil {
		return fmt.Errorf("%s:\n%w", *jobFile, err)
	}
	metrics := cluster.NewMetrics()
	var snap *cluster.SnapshotStore
	if *snapshot != "" {
		if snap, err = cluster.ParseSnapshotURL(*snapshot); err != nil {
			return fmt.Errorf("%w: --snapshot: %w", errUsage, err)
		}
	}
	w, err := cluster.New(cluster.Config{Brokers: strings.Split(addrs, ","), Spec: spec, ID: *id, Partitions: *partitions,
		CommitInterval: *commit, SessionTimeout: *session, IdleTimeout: *idle, DataDir: *data, Snapshot: snap, SnapshotEvery: *snapEvery,
		Leases: *leases, LeaseDuration: *leaseDur, Log: log, Metrics: metrics})
	if err != nil {
		return err
	}
	ctx, stop := untilInterrupted()
	defer stop()
	if *listen != "off" {
		wait, err := serveWorker(ctx, *listen, w, spec.Name, metrics, log)
		if err != nil {
			return err
		}
		defer wait()
	}
	log.Info("worker started", "job", spec.Name, "id", *id, "stages", len(w.Plan().Stages))
	return w.Run(ctx)
}
