package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/runnel-dev/runnel/client/consumer"
	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/kinesisconn"
)

func init() {
	register("consume", "read a stream as a worker of a consumer group", runConsume)
}

func runConsume(args []string) error {
	fs := newFlags("consume", "consume STREAM --group NAME [--server URL | --kinesis-endpoint URL --leases-postgres DSN]", `
Runs one worker of consumer group NAME on STREAM and prints each record it is handed on
stdout as a JSON line: shard, sequence_number, sub_sequence_number, key, data (or
data_base64 when the data is not UTF-8), worker, handled (the time). Workers of one group share the shards
through leases; a record is printed before its batch is checkpointed, so every record is
printed at least once across the group's workers, and a shard's records in order (a child
shard only after its parents). KPL aggregated records are printed as their user records.

With --server (default) the leases live on the Runnel server (its consumer groups API; the
group is created with --lease-duration and --start when missing); it exits 1 at once when the
server does not answer, the stream does not exist or the token is refused, and retries what
fails later. With --kinesis-endpoint
(or neither flag and AWS's endpoint for $AWS_REGION) the records come from any Kinesis API and
the leases from a PostgreSQL table (--leases-postgres, a pgx connection string).

Interrupt (SIGINT, SIGTERM) hands the worker's shards off: batches in hand finish and are
checkpointed, leases are released, and the worker leaves the group. Events (lease taken,
lost, handed off) go to stderr as log lines.`)
	server := addServerFlag(fs)
	group := fs.String("group", "", "consumer group name (required)")
	worker := fs.String("worker", "", "this worker's name in the group (default HOST-PID-RANDOM)")
	lease := fs.Duration("lease-duration", consumergroups.DefaultLeaseDuration, "how long a worker keeps its leases without a heartbeat (for a group this command creates)")
	start := fs.String("start", "trim_horizon", "where a shard without a checkpoint is read from: trim_horizon or latest")
	maxRecords := fs.Int("max-records", 1000, "records per GetRecords call")
	idle := fs.Duration("idle", 250*time.Millisecond, "pause after a read that found nothing new")
	endpoint := fs.String("kinesis-endpoint", "", "read through this Kinesis endpoint instead of a Runnel server (leases then in --leases-postgres)")
	region := fs.String("region", "", "AWS region with --kinesis-endpoint (default: the AWS default chain)")
	pgDSN := fs.String("leases-postgres", "", "PostgreSQL connection string of the lease table, for a Kinesis endpoint")
	logLevel := fs.String("log-level", "info", "stderr log level: debug, info, warn, error")
	pos, err := parseInterspersed(fs, args, 1, "STREAM")
	if err != nil {
		return err
	}
	if *group == "" {
		return fmt.Errorf("%w: --group is required", errUsage)
	}
	cfg := consumergroups.Config{Stream: pos[0], Name: *group, LeaseDuration: *lease, Start: *start}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		return fmt.Errorf("%w: --log-level %q: use debug, info, warn or error", errUsage, *logLevel)
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := untilInterrupted()
	defer stop()

	var g consumer.Group
	switch {
	case *pgDSN != "":
		conn := kinesisconn.Conn{Endpoint: *endpoint, Region: *region}
		if err := conn.Validate(); err != nil {
			return fmt.Errorf("%w: --kinesis-endpoint: %v", errUsage, err)
		}
		kc, err := conn.Client(ctx, false)
		if err != nil {
			if strings.HasPrefix(err.Error(), "no region") {
				// Its words are for a job file's region field.
				return fmt.Errorf("%w: no AWS region: give --region or set AWS_REGION", errUsage)
			}
			return err
		}
		pool, err := pgxpool.New(ctx, *pgDSN)
		if err != nil {
			return fmt.Errorf("--leases-postgres: %w", err)
		}
		defer pool.Close()
		leases, err := consumer.PostgresLeases(ctx, pool, kc, pos[0], *group, cfg, consumer.PostgresOptions{})
		if err != nil {
			return err
		}
		g = consumer.Group{Stream: pos[0], Kinesis: kc, Leases: leases}
	case *endpoint != "":
		return fmt.Errorf("%w: --kinesis-endpoint needs --leases-postgres (a Kinesis endpoint keeps no leases)", errUsage)
	default:
		// The worker retries whatever fails once it runs, as a server may
		// come and go; what fails before it starts (no server there, no
		// such stream, a missing or refused token) is an error to report.
		if err := newClient(*server).do("GET", "/api/v1/streams/"+url.PathEscape(pos[0]), nil, nil); err != nil {
			return err
		}
		g = consumer.Runnel(*server, pos[0], *group, bearerToken(), cfg)
	}
	g.Options = consumer.Options{Worker: *worker, MaxRecords: *maxRecords, IdleTimeBetweenReads: *idle, Logger: log}
	g.EnsureDefaults()
	p := &linePrinter{w: bufio.NewWriterSize(os.Stdout, 64<<10), worker: g.Worker}
	return consumer.Run(ctx, g, p.handle)
}

// linePrinter writes a batch's records as JSON lines and flushes them
// before the batch is checkpointed.
type linePrinter struct {
	mu     sync.Mutex
	w      *bufio.Writer
	worker string
}

type consumedLine struct {
	Shard          string `json:"shard"`
	SequenceNumber string `json:"sequence_number"`
	SubSequence    uint64 `json:"sub_sequence_number"`
	Key            string `json:"key"`
	Data           string `json:"data,omitempty"`
	DataBase64     []byte `json:"data_base64,omitempty"`
	Worker         string `json:"worker"`
	// Handled is when the line was written (RFC 3339, nanoseconds).
	Handled string `json:"handled"`
}

func (p *linePrinter) handle(_ context.Context, b consumer.Batch) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range b.Records {
		l := consumedLine{Shard: b.ShardID, SequenceNumber: r.SequenceNumber, SubSequence: r.SubSequenceNumber, Key: r.PartitionKey, Worker: p.worker,
			Handled: time.Now().UTC().Format(time.RFC3339Nano)}
		if utf8.Valid(r.Data) {
			l.Data = string(r.Data)
		} else {
			l.DataBase64 = r.Data
		}
		line, err := json.Marshal(l)
		if err != nil {
			return err
		}
		p.w.Write(append(line, '\n'))
	}
	return p.w.Flush()
}
