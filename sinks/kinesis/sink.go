package kinesis

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/client/producer"
	"github.com/runnel-dev/runnel/internal/backoff"
	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/state"
)

// ErrConfig marks a Kinesis sink configuration error.
var ErrConfig = fmt.Errorf("%w: kinesis", sinks.ErrConfig)

// DefaultIDField is the field holding each record's deterministic id.
const DefaultIDField = "runnel_id"

// Config configures a Kinesis sink.
type Config struct {
	Stream string
	kinesisconn.Conn
	// KeyField names the row field used as partition key; default the
	// row's key (the window key of window results), or the record id for
	// rows without one.
	KeyField string
	// IDField names the field the record id is written to.
	IDField string
	// Aggregate packs the records bound for one shard into KPL
	// aggregated records (consumers de-aggregate them: the KCL, Runnel's
	// kinesis source and `runnel tail`).
	Aggregate bool
	// Job and Sink name the sink in record ids and logs.
	Job, Sink string
	// Linger is how long a record may wait for its batch; default 100ms.
	Linger time.Duration
	// FlushTimeout bounds the flush at a checkpoint and at Close; a
	// record not acknowledged by then fails it. Default 2m.
	FlushTimeout time.Duration
	// Logger receives retried failures; nil means slog.Default().
	Logger *slog.Logger
	// api replaces the SDK client in tests.
	api producer.API
}

// endpoint names the endpoint in logs.
func (c *Config) endpoint() string {
	if c.Endpoint != "" {
		return c.Endpoint
	}
	return "AWS"
}

// Validate checks the configuration without contacting the endpoint.
func (c *Config) Validate() error {
	switch {
	case c.Stream == "":
		return fmt.Errorf("%w: stream is required", ErrConfig)
	case c.Job == "" || c.Sink == "":
		return fmt.Errorf("%w: job and sink names are required", ErrConfig)
	}
	if err := c.Conn.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return nil
}

// Sink writes rows as JSON records; see the package comment.
type Sink struct {
	cfg Config
	api producer.API
	// p is the producer, nil until it started: a sink whose endpoint did
	// not answer at New starts it at its first Write or flush.
	p  atomic.Pointer[producer.Producer]
	sp *state.Space
	// epoch is the checkpoint epoch the rows being written follow.
	epoch uint64
	seen  map[[32]byte]uint32 // equal rows so far in this epoch
	// watch says a checkpoint flush that waits on the endpoint (down,
	// paused, throttling) in the logs and the job's warnings.
	watch *sinks.Watchdog
	mu    struct {
		sync.Mutex
		failed  error // the first record that could not be written
		lost    int   // records that could not be written
		written int64
	}

	// inc is the sink's incarnation, part of every record id ("" for a
	// job restored from a checkpoint taken before sinks kept one).
	inc string
}

var _ sinks.Transactional = (*Sink)(nil)

// callTimeout bounds one call to the endpoint: a PutRecords, or the
// listing of the stream's shards that starts the producer. An endpoint
// that takes the connection and does not answer (a paused process) is
// then warned of and retried, as one that refuses it is.
const callTimeout = 10 * time.Second

// New checks cfg and starts the producer, which lists the stream's
// shards. A missing stream or refused credentials fail it; an endpoint
// that cannot be reached or does not answer does not: the producer is
// then started by the first Write or checkpoint flush, retried with
// backoff, so a job starts while its Kinesis is down and a checkpoint
// fails only when its flush cannot complete within FlushTimeout.
func New(ctx context.Context, cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.IDField == "" {
		cfg.IDField = DefaultIDField
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = 2 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	s := &Sink{cfg: cfg, seen: map[[32]byte]uint32{}, api: cfg.api,
		watch: sinks.NewWatchdog(cfg.Job, cfg.Sink, "kinesis", "stream "+cfg.Stream+" at "+cfg.endpoint(), cfg.Logger)}
	if s.api == nil {
		c, err := cfg.Conn.Client(ctx, false)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		s.api = c
	}
	if err := s.start(ctx); err != nil {
		if !kinesisconn.Retryable(err) {
			return nil, err
		}
		cfg.Logger.Warn("kinesis sink: endpoint not reachable; the sink starts writing when it is", "sink", cfg.Sink,
			"stream", cfg.Stream, "endpoint", cfg.endpoint(), "err", err)
	}
	return s, nil
}

// start makes one attempt to start the producer, bounded by
// callTimeout. An attempt that gets no answer in time is an error a
// retry can help.
func (s *Sink) start(ctx context.Context) error {
	sctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	p, err := producer.New(sctx, producer.Target{Stream: s.cfg.Stream, Client: s.api}, producer.Options{
		Aggregate: s.cfg.Aggregate, Linger: s.cfg.Linger, RecordTTL: s.cfg.FlushTimeout, RequestTimeout: callTimeout,
		OnResult: s.result, Logger: s.cfg.Logger.With("sink", s.cfg.Sink, "endpoint", s.cfg.endpoint()),
	})
	switch {
	case err == nil:
		s.p.Store(p)
		return nil
	case ctx.Err() == nil && sctx.Err() != nil:
		return fmt.Errorf("kinesis sink %s: %w: no answer from %s within %s", s.cfg.Sink, errNoAnswer, s.cfg.endpoint(), callTimeout)
	}
	return fmt.Errorf("kinesis sink %s: %w", s.cfg.Sink, err)
}

var errNoAnswer = errors.New("list shards")

// producer returns the producer, starting it first if New could not:
// retried with backoff, warning when a series of failures starts and
// every tenth, until it starts, fails for good or ctx ends.
func (s *Sink) producer(ctx context.Context) (*producer.Producer, error) {
	if p := s.p.Load(); p != nil {
		return p, nil
	}
	var b backoff.Backoff
	for failures := 0; ; failures++ {
		err := s.start(ctx)
		if err == nil {
			s.cfg.Logger.Info("kinesis sink: endpoint reachable again; writing", "sink", s.cfg.Sink, "stream", s.cfg.Stream,
				"endpoint", s.cfg.endpoint(), "failures", failures)
			return s.p.Load(), nil
		}
		if !kinesisconn.Retryable(err) || ctx.Err() != nil {
			return nil, err
		}
		if failures%10 == 0 {
			s.cfg.Logger.Warn("kinesis sink: endpoint not reachable; retrying with backoff", "sink", s.cfg.Sink,
				"stream", s.cfg.Stream, "endpoint", s.cfg.endpoint(), "call", "ListShards", "failures", failures+1, "err", err)
		}
		if serr := backoff.Sleep(ctx, b.Next()); serr != nil {
			return nil, fmt.Errorf("%w (%w)", err, serr)
		}
	}
}

func (s *Sink) result(r producer.Result) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Err == nil {
		s.mu.written++
		return
	}
	s.mu.lost++
	if s.mu.failed == nil {
		s.mu.failed = fmt.Errorf("kinesis sink %s: record %v (key %s) not written after %d attempts: %w", s.cfg.Sink, r.Meta, r.Key, r.Attempts, r.Err)
	}
}

// Written counts the records Kinesis acknowledged.
func (s *Sink) Written() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mu.written
}

func (s *Sink) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mu.failed != nil {
		s.cfg.Logger.Error("kinesis sink: records could not be written", "sink", s.cfg.Sink, "stream", s.cfg.Stream,
			"records", s.mu.lost, "err", s.mu.failed)
	}
	return s.mu.failed
}

// Write hands the rows to the producer; it blocks while the producer's
// buffer is full.
func (s *Sink) Write(ctx context.Context, rows []sinks.Row) error {
	if err := s.failure(); err != nil {
		return err
	}
	p, err := s.producer(ctx)
	if err != nil {
		return err
	}
	for _, row := range rows {
		data, id, err := s.encode(row)
		if err != nil {
			return err
		}
		key := row.Key
		if s.cfg.KeyField != "" {
			key = ""
			if m, ok := row.Value.(map[string]any); ok && m[s.cfg.KeyField] != nil {
				key = keyString(m[s.cfg.KeyField])
			}
		}
		if key == "" || len(key) > 256 {
			key = id
		}
		if err := p.PutRecord(ctx, producer.Record{Key: key, Data: data, Meta: id}); err != nil {
			return fmt.Errorf("kinesis sink %s: %w", s.cfg.Sink, err)
		}
	}
	return nil
}

func keyString(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// encode returns the row's JSON with its record id, and the id.
func (s *Sink) encode(row sinks.Row) ([]byte, string, error) {
	body, err := json.Marshal(row.Value)
	if err != nil {
		return nil, "", fmt.Errorf("kinesis sink %s: encode row: %w", s.cfg.Sink, err)
	}
	content := sha256.Sum256(body)
	n := s.seen[content]
	s.seen[content] = n + 1
	h := sha256.New()
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], s.epoch)
	binary.BigEndian.PutUint32(b[8:], n)
	h.Write([]byte(s.cfg.Job + "\x00" + s.cfg.Sink + "\x00"))
	if s.inc != "" {
		h.Write([]byte(s.inc + "\x00"))
	}
	h.Write(b[:])
	h.Write(content[:])
	id := hex.EncodeToString(h.Sum(nil)[:16])
	m, ok := row.Value.(map[string]any)
	if !ok {
		m = map[string]any{"value": row.Value}
	} else {
		m = copyMap(m)
	}
	m[s.cfg.IDField] = id
	out, err := json.Marshal(m)
	if err != nil {
		return nil, "", fmt.Errorf("kinesis sink %s: encode row: %w", s.cfg.Sink, err)
	}
	return out, id, nil
}

func copyMap(m map[string]any) map[string]any {
	out := make(map[string]any, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

var (
	epochKey       = []byte("epoch")
	incarnationKey = []byte("incarnation")
)

// OpenState reads the epoch the restored checkpoint ended and the sink's
// incarnation, so replayed rows get the ids they had. A job started
// without state (new, submitted again under a used name, replaced
// without a savepoint) draws a new incarnation: its epochs count from 1
// again, and its rows must not get the ids of an earlier run's. A
// checkpoint taken before sinks kept one restores without: its ids stay
// as they were.
func (s *Sink) OpenState(ctx context.Context, sp *state.Space) error {
	s.sp = sp
	v, ok, err := sp.Get(epochKey)
	if err != nil {
		return fmt.Errorf("kinesis sink %s: open state: %w", s.cfg.Sink, err)
	}
	if ok && len(v) == 8 {
		s.epoch = binary.BigEndian.Uint64(v)
	}
	inc, hasInc, err := sp.Get(incarnationKey)
	switch {
	case err != nil:
		return fmt.Errorf("kinesis sink %s: open state: %w", s.cfg.Sink, err)
	case hasInc:
		s.inc = string(inc)
	case !ok:
		var b [8]byte
		rand.Read(b[:])
		s.inc = hex.EncodeToString(b[:])
		if err := sp.Set(incarnationKey, []byte(s.inc)); err != nil {
			return fmt.Errorf("kinesis sink %s: open state: %w", s.cfg.Sink, err)
		}
	}
	return nil
}

// PreCommit waits until Kinesis acknowledged every row written so far,
// so the checkpoint completes only with them in the stream, and starts a
// new epoch of ids.
func (s *Sink) PreCommit(ctx context.Context, epoch uint64) error {
	fctx, cancel := context.WithTimeout(ctx, s.cfg.FlushTimeout)
	defer cancel()
	defer s.watch.Watch(fmt.Sprintf("the flush at checkpoint %d", epoch))()
	p, err := s.producer(fctx)
	if err != nil {
		return fmt.Errorf("kinesis sink %s: flush at checkpoint %d: %w", s.cfg.Sink, epoch, err)
	}
	if err := p.Flush(fctx); err != nil {
		return fmt.Errorf("kinesis sink %s: flush at checkpoint %d: %w", s.cfg.Sink, epoch, err)
	}
	if err := s.failure(); err != nil {
		return err
	}
	s.epoch = epoch
	clear(s.seen)
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], epoch)
	if s.sp != nil {
		if err := s.sp.Set(epochKey, b[:]); err != nil {
			return fmt.Errorf("kinesis sink %s: checkpoint %d: %w", s.cfg.Sink, epoch, err)
		}
	}
	return nil
}

// Commit has nothing to do: the rows are in Kinesis since PreCommit.
func (s *Sink) Commit(context.Context, uint64) error { return nil }

// Close sends what is buffered and stops the producer; a record that
// could not be written is its error.
func (s *Sink) Close() error {
	p := s.p.Load()
	if p == nil {
		return s.failure() // not started: no row was handed to it
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.FlushTimeout)
	defer cancel()
	err := p.Close(ctx)
	if ferr := s.failure(); ferr != nil {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("kinesis sink %s: close: %w", s.cfg.Sink, err)
	}
	return nil
}

// Stats are the producer's counters: records sent, Kinesis records (fewer
// with aggregation), requests, retries, failures.
func (s *Sink) Stats() producer.Snapshot {
	if p := s.p.Load(); p != nil {
		return p.Metrics().Snapshot()
	}
	return producer.Snapshot{}
}
