package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/runnel-dev/runnel/client/producer"
	"github.com/runnel-dev/runnel/consumergroups"
)

// Handler handles one batch of a shard's records, in the shard's order.
// Run checkpoints after the last record of the batch once it returns nil;
// an error makes Run hand the same batch again after a backoff. ctx ends
// when the worker loses the shard's lease or stops; the handler must not
// keep b after returning.
type Handler func(ctx context.Context, b Batch) error

// Batch is records of one shard, in order.
type Batch struct {
	ShardID string
	Records []Record
	// MillisBehindLatest is how far the batch is behind the shard's tip.
	MillisBehindLatest int64
}

// Record is one user record: a Kinesis record, or one of the user records
// a KPL aggregated record packs.
type Record struct {
	PartitionKey    string
	ExplicitHashKey string // set only inside aggregated records
	Data            []byte
	SequenceNumber  string
	// SubSequenceNumber is the user record's index in its aggregated
	// record (0 for a record that is not aggregated).
	SubSequenceNumber uint64
	Aggregated        bool
	ArrivalTime       time.Time
}

// KinesisAPI is the part of the Kinesis API a worker reads with;
// *kinesis.Client implements it.
type KinesisAPI interface {
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, opts ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
	GetShardIterator(ctx context.Context, in *kinesis.GetShardIteratorInput, opts ...func(*kinesis.Options)) (*kinesis.GetShardIteratorOutput, error)
	GetRecords(ctx context.Context, in *kinesis.GetRecordsInput, opts ...func(*kinesis.Options)) (*kinesis.GetRecordsOutput, error)
}

// SyncResult is what a lease store answers a worker's Sync.
type SyncResult struct {
	LeaseDuration time.Duration
	Start         string // trim_horizon or latest
	Leases        []consumergroups.Lease
}

// LeaseStore keeps a group's leases and checkpoints and runs the lease
// protocol (package consumergroups) for a worker. Checkpoint and Release
// return an error wrapping consumergroups.ErrLeaseLost when the worker no
// longer holds the lease at epoch.
type LeaseStore interface {
	Sync(ctx context.Context, worker string) (SyncResult, error)
	Checkpoint(ctx context.Context, shard, worker string, epoch uint64, cp consumergroups.Checkpoint) error
	Release(ctx context.Context, shard, worker string, epoch uint64, cp *consumergroups.Checkpoint) error
	Leave(ctx context.Context, worker string) error
}

// Group says what a worker consumes and with whom.
type Group struct {
	// Stream is the stream's name (on AWS, its name, not its ARN).
	Stream string
	// Kinesis reads the records.
	Kinesis KinesisAPI
	// Leases keeps the group's leases: ServerLeases for a Runnel server,
	// PostgresLeases for any Kinesis endpoint.
	Leases LeaseStore
	Options
}

// Options tune a worker. The zero value is valid; EnsureDefaults fills
// what is unset.
type Options struct {
	// Worker names this worker in the group; default HOST-PID-RANDOM.
	// Two live workers must not share a name.
	Worker string
	// MaxRecords bounds a GetRecords call (and so a batch of Kinesis
	// records). Default 1000.
	MaxRecords int
	// IdleTimeBetweenReads is the pause after a read that found nothing
	// new. Default 250ms.
	IdleTimeBetweenReads time.Duration
	// SyncInterval is the time between two Syncs (heartbeats). Default a
	// third of the group's lease duration.
	SyncInterval time.Duration
	// ShutdownTimeout bounds the graceful hand-off when Run's context ends:
	// the batches in hand finish, are checkpointed and their leases
	// released. Default 30s.
	ShutdownTimeout time.Duration
	// RetryBackoff is the first delay before handing a failed batch again
	// (doubling up to 30s). Default 100ms.
	RetryBackoff time.Duration
	// Logger gets the worker's log: failures it retries at WARN (failed
	// reads once per kind of failure and shard, then in a summary), a
	// shard reader that stopped (refused credentials among them) and a
	// damaged aggregated record at ERROR, reads that work again and lease
	// changes (taken, handed off, lost, shard finished) at INFO. Default:
	// slog.Default()'s handler at WARN and above, so that a worker is
	// quiet while all is well; pass a logger at INFO to see its leases
	// move.
	Logger *slog.Logger
	// Registerer, when set, gets the worker's metrics.
	Registerer prometheus.Registerer
}

// EnsureDefaults fills what is unset.
func (o *Options) EnsureDefaults() {
	if o.Worker == "" {
		host, _ := os.Hostname()
		o.Worker = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), strconv.FormatInt(time.Now().UnixNano()%(1<<30), 36))
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = 1000
	}
	if o.IdleTimeBetweenReads <= 0 {
		o.IdleTimeBetweenReads = 250 * time.Millisecond
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 100 * time.Millisecond
	}
	if o.Logger == nil {
		o.Logger = slog.New(minLevel{slog.Default().Handler(), slog.LevelWarn})
	}
}

// Validate checks a group's settings.
func (g *Group) Validate() error {
	switch {
	case g.Stream == "":
		return errors.New("consumer: Group.Stream is required")
	case g.Kinesis == nil:
		return errors.New("consumer: Group.Kinesis is required")
	case g.Leases == nil:
		return errors.New("consumer: Group.Leases is required")
	}
	if err := consumergroups.ValidName("worker", g.Worker); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	return nil
}

// Runnel returns a group on a Runnel server at serverURL: records are read
// through the server's Kinesis API, leases kept by its consumer-groups API
// (created with create's settings when missing). token is a bearer token
// from `runnel tokens create` ("" for none: see producer.Runnel for how
// requests are then signed).
func Runnel(serverURL, stream, group, token string, create consumergroups.Config) Group {
	t := producer.Runnel(serverURL, stream, token)
	return Group{Stream: stream, Kinesis: t.Client.(*kinesis.Client), Leases: ServerLeases(serverURL, stream, group, token, create)}
}

// Kinesis returns a group on any Kinesis endpoint (AWS config cfg) whose
// leases a PostgreSQL table keeps (see PostgresLeases).
func Kinesis(cfg aws.Config, stream string, leases LeaseStore) Group {
	return Group{Stream: stream, Kinesis: kinesis.NewFromConfig(cfg, func(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} }), Leases: leases}
}

// minLevel passes on the records of at least level to h.
type minLevel struct {
	h     slog.Handler
	level slog.Level
}

func (m minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= m.level && m.h.Enabled(ctx, l)
}

func (m minLevel) Handle(ctx context.Context, r slog.Record) error { return m.h.Handle(ctx, r) }

func (m minLevel) WithAttrs(as []slog.Attr) slog.Handler {
	return minLevel{m.h.WithAttrs(as), m.level}
}

func (m minLevel) WithGroup(name string) slog.Handler { return minLevel{m.h.WithGroup(name), m.level} }
