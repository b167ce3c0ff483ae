package main

import (
	_ "embed"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/web"
	"github.com/runnel-dev/runnel/web/kinesis"
)

func init() {
	register("serve", "run the server: stream log, Kinesis API, REST API, jobs, web UI", runServe)
}

func runServe(args []string) error {
	fs := newFlags("serve", "serve [--data DIR] [--addr 127.0.0.1:7070] [--demo] [--auth]", `
Starts the Runnel server on one port: the Kinesis Data Streams API (POST /), the REST API
(/api/v1), the web UI (/), Prometheus metrics (/metrics) and /healthz. It stops cleanly on
SIGINT or SIGTERM: in-flight requests finish, every shard is flushed and closed.

With --auth (the default when --addr is not a loopback address) every call needs a token:
create one with 'runnel tokens create NAME --role admin --data DIR'. See docs/security.md.`)
	data := fs.String("data", "./data", "data directory")
	addr := fs.String("addr", "127.0.0.1:7070", "listen address (binds to loopback unless told otherwise)")
	demo := fs.Bool("demo", false, "also start the built-in demo (generator → JS → windows → anomaly detection → live UI)")
	fsync := fs.String("fsync", "always", "always: fsync before every acknowledgement; interval: acknowledge once written and fsync every --fsync-interval (a machine crash can lose that much)")
	fsyncEvery := fs.Duration("fsync-interval", 100*time.Millisecond, "sync period for --fsync=interval")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	logFormat := fs.String("log-format", "text", "text or json")
	debugAddr := fs.String("debug-addr", "", "serve net/http/pprof on this address (off by default), e.g. 127.0.0.1:6060")
	pyroURL := fs.String("pyroscope-url", "", "send continuous profiles to this Pyroscope server (off by default)")
	pyroEvery := fs.Duration("pyroscope-upload", 15*time.Second, "how often profiles are sent to --pyroscope-url")
	sec := addSecurityFlags(fs)
	filesRoot := fs.String("files-root", "", "directory that jobs' file sources and sinks are confined beneath (default DATA/files, created if missing); job files name paths relative to it")
	channelsS3 := fs.String("channels-s3-endpoint", "", "S3 endpoint URL the delivery jobs of Kinesis channels write to, path-style (default: AWS's; credentials from the AWS default chain)")
	shardLimits := fs.Bool("shard-limits", false, "enforce AWS's per-shard throughput limits on the Kinesis API (writes 1 MiB/s or 1,000 records/s, reads 2 MiB/s and 5 calls/s)")
	shardLimitScale := fs.Float64("shard-limits-scale", 1, "with --shard-limits: multiply the per-shard limits by this (0.1 rehearses throttling with a tenth of the traffic)")
	limits := addLimitFlags(fs)
	kf := addKinesisFlags(fs)
	cf := addClusterFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	log, err := newLogger(*logLevel, *logFormat)
	if err != nil {
		return err
	}
	opts := streams.Options{Logger: log, UpdateVisibility: kinesis.RecommendedUpdateVisibility}
	httpLimits, err := limits.apply(&opts, log)
	if err != nil {
		return err
	}
	switch *fsync {
	case "always":
	case "interval":
		if *fsyncEvery <= 0 {
			return fmt.Errorf("%w: --fsync-interval must be positive", errUsage)
		}
		opts.SyncInterval = *fsyncEvery
		log.Warn("fsync=interval: acknowledged records can be lost if the machine crashes", "interval", *fsyncEvery)
	default:
		return fmt.Errorf("%w: --fsync must be always or interval, not %q", errUsage, *fsync)
	}
	security, err := sec.config(*addr, *data, log)
	if err != nil {
		return err
	}
	store, err := streams.Open(*data, opts)
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close store", "err", err)
		}
		log.Info("stopped")
	}()
	if err := kf.createStreams(store, log); err != nil {
		return err
	}
	faults, err := kf.faults()
	if err != nil {
		return err
	}
	tlsCfg, err := kf.tlsConfig(*data, log)
	if err != nil {
		return err
	}
	failpoint, err := failpointsFromEnv(log)
	if err != nil {
		return err
	}
	files, err := openFilesRoot(*filesRoot, *data)
	if err != nil {
		return err
	}
	defer files.Close()
	mgr, err := jobs.NewManager(jobs.ManagerConfig{Store: store, Dir: filepath.Join(*data, "jobs"), Logger: log, Failpoint: failpoint, Files: files})
	if err != nil {
		return err
	}
	defer mgr.Close()
	// The jobs found running start in the background while the server
	// answers; /readyz says when they have.
	go func() {
		<-mgr.Booted()
		log.Info("jobs started: each job found running has begun its run, failed to start or been stopped")
	}()
	if *demo {
		if err := startDemo(mgr, log); err != nil {
			return err
		}
	}
	// Iterators and paging tokens are signed with a key kept beside the
	// streams, so that they outlive a restart.
	tokenKey, err := kinesis.LoadTokenKey(filepath.Join(*data, "kinesis-token.key"))
	if err != nil {
		return err
	}
	groups, err := consumergroups.Open(filepath.Join(*data, "consumer-groups"), store, consumergroups.Options{Logger: log})
	if err != nil {
		return err
	}
	guard := web.NewGuard(httpLimits, log)
	cfg := web.Config{Store: store, Logger: log, Jobs: mgr, Security: security, Guard: guard, Groups: groups,
		Kinesis: kinesis.New(store, kinesis.Options{Logger: log, ShardLimits: *shardLimits, ShardLimitScale: *shardLimitScale, TokenKey: tokenKey,
			Faults: faults, AccountSettingsFile: filepath.Join(*data, "kinesis-account.json")})}
	if err := kinesis.EnableChannels(cfg.Kinesis, kinesis.ChannelOptions{Jobs: mgr, File: filepath.Join(*data, "kinesis-channels.json"),
		S3Endpoint: *channelsS3, S3PathStyle: *channelsS3 != ""}); err != nil {
		return err
	}
	stopCluster, err := cf.start(&cfg, log)
	if err != nil {
		return err
	}
	defer stopCluster()
	// The listener serves HTTP/2 itself, over TLS and without it (h2c,
	// for SubscribeToShard), each stream under the guard's limits.
	srv := web.New(cfg)
	ctx, stop := untilInterrupted()
	defer stop()
	if *debugAddr != "" {
		if err := startDebug(ctx, *debugAddr, log); err != nil {
			return err
		}
	}
	if *pyroURL != "" {
		p, err := startProfiling(*pyroURL, *pyroEvery, log)
		if err != nil {
			return err
		}
		defer p.Stop()
	}
	if tlsCfg != nil {
		return web.ListenAndServeGuarded(ctx, *addr, srv, 10*time.Second, func(a net.Addr) {
			log.Info("listening", "addr", a.String(), "data", *data, "ui", "https://"+a.String()+"/", "tls", true)
		}, guard, tlsCfg)
	}
	return web.ListenAndServeGuarded(ctx, *addr, srv, 10*time.Second, func(a net.Addr) {
		log.Info("listening", "addr", a.String(), "data", *data, "ui", "http://"+a.String()+"/")
	}, guard, nil)
}

//go:embed demo.yaml
var demoJob []byte

// startDemo submits the demo job unless a job named demo is already there
// (it then restarted with the server, or the user stopped it).
func startDemo(mgr *jobs.Manager, log *slog.Logger) error {
	if _, err := mgr.Get("demo"); err == nil {
		return nil
	}
	job, err := demoJobFile()
	if err != nil {
		return err
	}
	if _, err := mgr.Submit(job); err != nil {
		return fmt.Errorf("start the demo job: %w", err)
	}
	log.Info("demo job started", "job", "demo")
	return nil
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("%w: --log-level %q: use debug, info, warn or error", errUsage, level)
	}
	o := &slog.HandlerOptions{Level: lv}
	// Repeats of one message are rate-limited (see rateLimited).
	switch format {
	case "text":
		return slog.New(newRateLimited(slog.NewTextHandler(os.Stderr, o), 20)), nil
	case "json":
		return slog.New(newRateLimited(slog.NewJSONHandler(os.Stderr, o), 20)), nil
	}
	return nil, fmt.Errorf("%w: --log-format must be text or json", errUsage)
}
