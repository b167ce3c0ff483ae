package producer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/prometheus/client_golang/prometheus"
)

// API is the part of the Kinesis Data Streams API the producer calls;
// *kinesis.Client implements it.
type API interface {
	PutRecords(ctx context.Context, in *kinesis.PutRecordsInput, optFns ...func(*kinesis.Options)) (*kinesis.PutRecordsOutput, error)
	ListShards(ctx context.Context, in *kinesis.ListShardsInput, optFns ...func(*kinesis.Options)) (*kinesis.ListShardsOutput, error)
}

// Target names the stream to produce to and the client that reaches it.
type Target struct {
	Stream string
	Client API
}

// Runnel returns a target on a Runnel server at serverURL (such as
// http://127.0.0.1:7070): the server speaks the Kinesis API on POST /, so
// the producer uses one code path for Runnel and for AWS. With a bearer
// token (from `runnel tokens create`) the requests carry it instead of a
// signature. Without one they are signed with AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY from the environment when set (keys made with
// `runnel tokens create --aws`), else with placeholder keys, which a server
// without --auth accepts.
func Runnel(serverURL, stream, token string) Target {
	hc := &http.Client{Timeout: 2 * time.Minute}
	var creds aws.CredentialsProvider = aws.AnonymousCredentials{}
	if token != "" {
		hc.Transport = bearer{token: token, next: http.DefaultTransport}
	} else {
		id, secret := os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY")
		if id == "" || secret == "" {
			id, secret = "runnel", "runnel"
		}
		creds = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: id, SecretAccessKey: secret, Source: "runnel"}, nil
		})
	}
	c := kinesis.New(kinesis.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(strings.TrimRight(serverURL, "/")),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   hc,
		Credentials:  creds,
	})
	return Target{Stream: stream, Client: c}
}

// bearer sends a Runnel bearer token with every request (the SDK does not
// sign them: its credentials are anonymous).
type bearer struct {
	token string
	next  http.RoundTripper
}

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return b.next.RoundTrip(r)
}

// Kinesis returns a target on any Kinesis endpoint described by an AWS
// SDK configuration (region, credentials, optional BaseEndpoint).
func Kinesis(cfg aws.Config, stream string) Target {
	return Target{Stream: stream, Client: kinesis.NewFromConfig(cfg)}
}

// noRetries turns off the SDK's own retries: the producer retries records
// itself, per record, in order.
func noRetries(o *kinesis.Options) { o.Retryer = aws.NopRetryer{} }

// Ordering says what order the producer keeps.
type Ordering int

const (
	// PerKey keeps the records of one partition key in Put order in the
	// stream, across retries and reshards.
	PerKey Ordering = iota
	// Unordered fills batches freely; a retried record may land after a
	// later record of its key.
	Unordered
)

// Options tune a producer. The zero value is valid; EnsureDefaults fills
// what is unset.
type Options struct {
	// Aggregate packs user records bound for one shard into KPL
	// aggregated records of at most AggregateMaxBytes.
	Aggregate         bool
	AggregateMaxBytes int // default 50 KiB (the KPL's AggregationMaxSize)
	// Linger is how long a record may wait for its batch to fill.
	Linger time.Duration // default 100ms
	// MaxConcurrency bounds the PutRecords calls in flight.
	MaxConcurrency int // default 24
	// MaxBufferedRecords and MaxBufferedBytes bound the records accepted
	// and not yet reported; Put blocks when they are reached, or returns
	// ErrBufferFull with FailWhenFull.
	MaxBufferedRecords int // default 100,000
	MaxBufferedBytes   int // default 64 MiB
	FailWhenFull       bool
	// RecordTTL is how long a record may stay unacknowledged before it is
	// reported failed; MaxAttempts (0: no bound) bounds its PutRecords
	// attempts.
	RecordTTL   time.Duration // default 30s
	MaxAttempts int
	// BackoffBase and BackoffMax bound the delay before a shard's retry:
	// base·2^failures, capped, with jitter.
	BackoffBase time.Duration // default 100ms
	BackoffMax  time.Duration // default 5s
	// RequestTimeout bounds one PutRecords call.
	RequestTimeout time.Duration // default 30s
	// NoRateLimit stops the producer from pacing each shard to Kinesis's
	// write limits (1 MiB/s and 1,000 records/s); throttled records are
	// retried either way.
	NoRateLimit bool
	Ordering    Ordering
	// OnResult receives each record's outcome exactly once, from the
	// producer's goroutines; it must not block for long nor call Flush or
	// Close.
	OnResult func(Result)
	// Registerer, when set, registers the producer's metrics.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// EnsureDefaults fills unset options with their defaults.
func (o *Options) EnsureDefaults() {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	defDur := func(v *time.Duration, d time.Duration) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&o.AggregateMaxBytes, 50<<10)
	def(&o.MaxConcurrency, 24)
	def(&o.MaxBufferedRecords, 100_000)
	def(&o.MaxBufferedBytes, 64<<20)
	defDur(&o.Linger, 100*time.Millisecond)
	defDur(&o.RecordTTL, 30*time.Second)
	defDur(&o.BackoffBase, 100*time.Millisecond)
	defDur(&o.BackoffMax, 5*time.Second)
	defDur(&o.RequestTimeout, 30*time.Second)
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
}

// Validate reports options that cannot work.
func (o *Options) Validate() error {
	if o.AggregateMaxBytes > maxRecordBytes {
		return fmt.Errorf("producer: AggregateMaxBytes %d exceeds Kinesis's record limit of %d", o.AggregateMaxBytes, maxRecordBytes)
	}
	if o.Ordering != PerKey && o.Ordering != Unordered {
		return fmt.Errorf("producer: unknown Ordering %d", o.Ordering)
	}
	return nil
}

// Limits of PutRecords.
const (
	maxBatchRecords = 500
	maxBatchBytes   = 5 << 20
	maxRecordBytes  = 1 << 20 // data plus partition key
	maxKeyChars     = 256
)

// Result is one record's outcome.
type Result struct {
	Key  string
	Data []byte
	// ShardID and SequenceNumber are set when the record was acknowledged.
	// SubSequence is the record's index within its aggregated record, or
	// -1 when it was sent alone.
	ShardID        string
	SequenceNumber string
	SubSequence    int
	Attempts       int
	Err            error
	// Meta is the value given to PutRecord.
	Meta any
}

// Record is a record for PutRecord: Meta is handed back in its Result,
// for callers that match results to what they put.
type Record struct {
	Key  string
	Data []byte
	Meta any
}

var (
	// ErrBufferFull is returned by Put with FailWhenFull when the buffer
	// holds MaxBufferedRecords or MaxBufferedBytes.
	ErrBufferFull = errors.New("producer: buffer full")
	// ErrClosed is returned by Put after Close, and reported for records a
	// Close whose context ended gave up on.
	ErrClosed = errors.New("producer: closed")
	// ErrTooLarge is returned by Put for a record over Kinesis's 1 MiB.
	ErrTooLarge = errors.New("producer: record over 1 MiB (data plus partition key)")
)

// record is one user record in the buffer.
type record struct {
	key      string
	data     []byte
	hash     hashKey
	enq      time.Time
	attempts int
	lastErr  error
	meta     any
}

func (r *record) size() int { return len(r.key) + len(r.data) }

// Producer sends records to one stream. Its methods are safe for
// concurrent use.
type Producer struct {
	api     API
	stream  string
	opts    Options
	log     *slog.Logger
	metrics *Metrics
	sem     chan struct{} // bounds PutRecords in flight
	ctx     context.Context
	cancel  context.CancelFunc // ends in-flight calls at a hard close
	wg      sync.WaitGroup

	mu struct {
		sync.Mutex
		ranges     []shardRange
		byID       map[string]*queue // open shards' queues
		queues     []*queue          // every live queue, retired ones included
		buffered   int
		bytes      int
		closing    bool
		flushing   int
		space      chan struct{} // closed when room is made in the buffer
		empty      chan struct{} // closed when the buffer empties
		refreshing bool
		lastList   time.Time
	}
}

// New lists the target stream's shards and starts a producer. ctx bounds
// that listing only; Close stops the producer.
func New(ctx context.Context, t Target, opts Options) (*Producer, error) {
	if t.Stream == "" || t.Client == nil {
		return nil, fmt.Errorf("producer: a target needs a stream name and a client")
	}
	opts.EnsureDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	ranges, err := listOpenShards(ctx, t.Client, t.Stream)
	if err != nil {
		return nil, fmt.Errorf("producer: list shards of %s: %w", t.Stream, err)
	}
	p := &Producer{api: t.Client, stream: t.Stream, opts: opts, log: opts.Logger,
		sem: make(chan struct{}, opts.MaxConcurrency)}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	p.metrics = newMetrics(t.Stream, p)
	if opts.Registerer != nil {
		if err := opts.Registerer.Register(p.metrics); err != nil {
			return nil, fmt.Errorf("producer: register metrics: %w", err)
		}
	}
	p.mu.byID = map[string]*queue{}
	p.mu.space = make(chan struct{})
	p.mu.lastList = time.Now()
	p.mu.Lock()
	p.installLocked(ranges)
	p.mu.Unlock()
	return p, nil
}

// Metrics returns the producer's metrics (a prometheus.Collector).
func (p *Producer) Metrics() *Metrics { return p.metrics }

// Put buffers a record for the stream and returns at once, unless the
// buffer is full: then it waits for room (or ctx), or with FailWhenFull
// returns ErrBufferFull. The record's outcome goes to Options.OnResult.
// data must not be changed after the call.
func (p *Producer) Put(ctx context.Context, key string, data []byte) error {
	return p.PutRecord(ctx, Record{Key: key, Data: data})
}

// PutRecord is Put with a Meta value handed back in the record's Result.
func (p *Producer) PutRecord(ctx context.Context, rec Record) error {
	key, data := rec.Key, rec.Data
	if key == "" || utf8.RuneCountInString(key) > maxKeyChars {
		return fmt.Errorf("producer: partition key must be 1-%d characters, got %d", maxKeyChars, utf8.RuneCountInString(key))
	}
	r := &record{key: key, data: data, hash: hashOf(key), meta: rec.Meta}
	if r.size() > maxRecordBytes {
		return ErrTooLarge
	}
	p.mu.Lock()
	for {
		if p.mu.closing {
			p.mu.Unlock()
			return ErrClosed
		}
		if p.mu.buffered < p.opts.MaxBufferedRecords && (p.mu.bytes+r.size() <= p.opts.MaxBufferedBytes || p.mu.buffered == 0) {
			break
		}
		if p.opts.FailWhenFull {
			p.mu.Unlock()
			return ErrBufferFull
		}
		space := p.mu.space
		p.mu.Unlock()
		select {
		case <-space:
		case <-ctx.Done():
			return fmt.Errorf("producer: waiting for room in the buffer: %w", ctx.Err())
		}
		p.mu.Lock()
	}
	r.enq = time.Now()
	q := p.mu.byID[p.mu.ranges[shardFor(p.mu.ranges, r.hash)].id]
	q.recs = append(q.recs, r)
	q.bytes += r.size()
	p.mu.buffered++
	p.mu.bytes += r.size()
	p.mu.Unlock()
	q.signal()
	return nil
}

// Flush sends every buffered record without waiting for its linger time
// and returns when the buffer is empty (records Put meanwhile included),
// or when ctx ends.
func (p *Producer) Flush(ctx context.Context) error {
	p.mu.Lock()
	p.mu.flushing++
	p.signalAllLocked()
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		p.mu.flushing--
		p.mu.Unlock()
	}()
	for {
		p.mu.Lock()
		if p.mu.buffered == 0 {
			p.mu.Unlock()
			return nil
		}
		if p.mu.empty == nil {
			p.mu.empty = make(chan struct{})
		}
		empty := p.mu.empty
		p.mu.Unlock()
		select {
		case <-empty:
		case <-ctx.Done():
			return fmt.Errorf("producer: flush: %w", ctx.Err())
		}
	}
}

// Close refuses new records, sends the buffered ones and stops. When ctx
// ends first, it cancels the calls in flight and reports every record
// still buffered as failed with ErrClosed; it then returns ctx's error.
func (p *Producer) Close(ctx context.Context) error {
	p.mu.Lock()
	p.mu.closing = true
	p.signalAllLocked()
	close(p.mu.space) // wake blocked Puts: they see closing
	p.mu.space = make(chan struct{})
	p.mu.Unlock()
	err := p.Flush(ctx)
	if err != nil {
		p.cancel()
	}
	p.wg.Wait()
	p.cancel()
	if err != nil {
		// Workers have exited: report what is left.
		p.mu.Lock()
		var left []*record
		for _, q := range p.mu.queues {
			left = append(left, q.recs...)
			q.recs = nil
		}
		p.mu.Unlock()
		for _, r := range left {
			r.lastErr = ErrClosed
			p.fail(r)
		}
		return err
	}
	return nil
}

func (p *Producer) signalAllLocked() {
	for _, q := range p.mu.queues {
		q.signal()
	}
}

// installLocked adopts a new list of open shards: queues of shards still
// open are kept, new shards get queues that wait until the queues of the
// shards that closed are empty, and those are retired.
func (p *Producer) installLocked(ranges []shardRange) {
	open := map[string]bool{}
	for _, s := range ranges {
		open[s.id] = true
	}
	var old, moved []*queue
	for id, q := range p.mu.byID {
		if !open[id] {
			q.retired = true
			delete(p.mu.byID, id)
			old = append(old, q)
			moved = append(moved, q)
		}
	}
	for _, q := range p.mu.queues {
		if q.retired && !q.drained() {
			old = append(old, q)
		}
	}
	for _, s := range ranges {
		if q := p.mu.byID[s.id]; q != nil {
			q.shard = s
			continue
		}
		q := newQueue(s, &p.opts)
		q.waitFor = old
		p.mu.byID[s.id] = q
		p.mu.queues = append(p.mu.queues, q)
		p.wg.Add(1)
		go p.runQueue(q)
	}
	p.mu.ranges = ranges
	// The records a closed shard's queue has not sent go to the queues of
	// the shards that hold their hash keys now, ahead of anything newer:
	// an aggregated record must go to the shard that holds all its user
	// records. Those queues wait until the closed ones are drained.
	for _, q := range moved {
		rs := q.recs
		q.recs, q.bytes = nil, 0
		p.requeueLocked(q, rs)
	}
	p.signalAllLocked()
}

// refresh lists the shards again, at most once a second, in the
// background; a result from an unexpected shard asks for it.
func (p *Producer) refresh() {
	p.mu.Lock()
	if p.mu.refreshing || p.mu.closing || time.Since(p.mu.lastList) < time.Second {
		p.mu.Unlock()
		return
	}
	p.mu.refreshing = true
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		ctx, cancel := context.WithTimeout(p.ctx, p.opts.RequestTimeout)
		ranges, err := listOpenShards(ctx, p.api, p.stream)
		cancel()
		p.mu.Lock()
		defer p.mu.Unlock()
		p.mu.refreshing = false
		p.mu.lastList = time.Now()
		if err != nil {
			p.log.Error("producer: list shards after a misrouted record", "stream", p.stream, "err", err)
			p.metrics.listErrors.Inc()
			return
		}
		p.installLocked(ranges)
	}()
}

// resolveLocked takes n records of size bytes out of the buffer.
func (p *Producer) resolveLocked(n, size int) {
	p.mu.buffered -= n
	p.mu.bytes -= size
	close(p.mu.space)
	p.mu.space = make(chan struct{})
	if p.mu.buffered == 0 && p.mu.empty != nil {
		close(p.mu.empty)
		p.mu.empty = nil
	}
}

func (p *Producer) fail(r *record) {
	p.metrics.failed.Inc()
	p.log.Error("producer: record failed", "stream", p.stream, "key", r.key, "attempts", r.attempts, "err", r.lastErr)
	if p.opts.OnResult != nil {
		p.opts.OnResult(Result{Key: r.key, Data: r.data, SubSequence: -1, Attempts: r.attempts, Err: r.lastErr, Meta: r.meta})
	}
	p.mu.Lock()
	p.resolveLocked(1, r.size())
	p.mu.Unlock()
}
