package s3

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	mrand "math/rand/v2"
	"slices"
	"sync/atomic"
	"time"

	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	"github.com/google/uuid"

	"github.com/runnel-dev/runnel/sinks"
)

// task names the sink's one task in object names (the runtime runs one
// per sink).
const task = "0"

// Sink writes rows as objects; see the package comment.
type Sink struct {
	cfg Config
	cl  *s3.Client
	// opening is the client OpenState uses: the job's start waits on it,
	// and the server's start on the job's, so it does not outlast an
	// outage as cl does (it is cl when the caller gave the client).
	opening *s3.Client
	tmpl    template
	loc     *time.Location
	comp    compress.Compression
	// run tells this job's objects from those of an earlier job of the
	// same name: kept in the sink's state, fresh for a new job.
	run     string
	buffers map[string]*buffer
	seq     uint32
	txn     *txnState
	// errorRows counts rows sent to the error output.
	errorRows atomic.Int64
}

var _ sinks.Transactional = (*Sink)(nil)

// buffer is one object being filled: rows under one key prefix.
type buffer struct {
	prefix string
	// errors is set for an error-output buffer: lines are error
	// documents, always JSON lines.
	errors bool
	rows   []sinks.Row // Parquet: the rows
	arrive []int64     // Parquet: each row's arrival, epoch ms
	lines  bytes.Buffer
	size   int64
	opened time.Time
}

// New checks cfg and makes the client (it connects lazily).
func New(ctx context.Context, cfg Config) (*Sink, error) {
	cfg.EnsureDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Sink{cfg: cfg, buffers: map[string]*buffer{}, comp: compressions[cfg.Compression]}
	s.tmpl, _ = parseTemplate(cfg.Partition)
	s.loc, _ = time.LoadLocation(cfg.TimeZone)
	s.run = newRunID()
	watch := watchCalls(sinks.NewWatchdog(cfg.Job, cfg.Sink, "s3", "bucket "+cfg.Bucket, cfg.Logger))
	if cfg.Client != nil {
		s.cl = s3.New(cfg.Client.Options(), watch)
		return s, nil
	}
	cl, err := NewClient(ctx, cfg.Endpoint, cfg.Region, cfg.Profile, cfg.PathStyle)
	if err != nil {
		return nil, fmt.Errorf("s3 sink %s: %w", cfg.Sink, err)
	}
	log := cfg.Logger.With("job", cfg.Job, "sink", cfg.Sink)
	s.cl = s3.New(cl.Options(), watch, func(o *s3.Options) { o.Retryer = warnRetries{Retryer: o.Retryer, log: log} })
	s.opening = s3.New(cl.Options(), watch, func(o *s3.Options) { o.Retryer = warnRetries{Retryer: openingRetryer(o.Retryer), log: log} })
	return s, nil
}

// watchCalls has w watch each call of a client to S3, from its first
// attempt to its last retry's answer.
func watchCalls(w *sinks.Watchdog) func(*s3.Options) {
	mw := middleware.InitializeMiddlewareFunc("RunnelStallWatch", func(ctx context.Context, in middleware.InitializeInput,
		next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
		defer w.Watch("the " + awsmiddleware.GetOperationName(ctx) + " call")()
		return next.HandleInitialize(ctx, in)
	})
	return func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, func(st *middleware.Stack) error { return st.Initialize.Add(mw, middleware.After) })
	}
}

// NewClient makes an S3 client for endpoint (empty: AWS's) with the
// credentials of the AWS default chain, or of profile when it is set.
func NewClient(ctx context.Context, endpoint, region, profile string, pathStyle bool) (*s3.Client, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("load AWS configuration: %w", err)
	}
	if awsCfg.Region == "" {
		if endpoint == "" {
			return nil, fmt.Errorf("%w: region: none given and none in the AWS configuration", ErrConfig)
		}
		awsCfg.Region = "us-east-1"
	}
	return s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		o.UsePathStyle = pathStyle
		if awsCfg.Retryer == nil && awsCfg.RetryMaxAttempts == 0 && awsCfg.RetryMode == "" {
			o.Retryer = outageRetryer{outageStandard()}
		}
	}), nil
}

// warnRetries logs each retry as a WARN, so that a job whose S3 server is
// down says so while its sink waits.
type warnRetries struct {
	aws.Retryer
	log *slog.Logger
}

func (r warnRetries) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.Retryer.RetryDelay(attempt, err)
	if derr == nil {
		r.log.Warn("S3 call failed; retrying", "attempt", attempt, "of", r.MaxAttempts(), "in", d.Round(time.Millisecond), "err", err)
	}
	return d, derr
}

// outageRetryer marks the retryer NewClient chose itself, when the AWS
// configuration names none (no retryer, max_attempts or retry_mode).
type outageRetryer struct{ aws.Retryer }

// openingRetryer is the retryer of the client OpenState uses, given the
// running client's: the SDK's standard one instead of NewClient's own
// (which outlasts an outage), and the one the AWS configuration asked for
// (AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, max_attempts, retry_mode) otherwise.
func openingRetryer(running aws.Retryer) aws.Retryer {
	if _, ours := running.(outageRetryer); ours {
		return retry.NewStandard()
	}
	return running
}

// outageStandard is the SDK's standard retryer made to outlast a server
// restart (about half a minute): every call of the sink may be repeated
// (a put or copy to a fixed key, a delete), and a failed one fails the
// job. Without the retry quota, which an outage would use up at once.
// AWS_MAX_ATTEMPTS, AWS_RETRY_MODE, or max_attempts or retry_mode in the
// AWS configuration still rule.
func outageStandard() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = 12
		o.RateLimiter = ratelimit.None
		// Half jitter, not the SDK's full: the wait is not cut short by
		// chance (the eleven waits of twelve attempts add up to 18–36 s).
		o.Backoff = retry.BackoffDelayerFunc(func(attempt int, _ error) (time.Duration, error) {
			d := min(100*time.Millisecond<<min(attempt, 10), 5*time.Second)
			return d/2 + mrand.N(d/2), nil
		})
	})
}

func newRunID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ErrorRows is the number of rows sent to the error output so far.
func (s *Sink) ErrorRows() int64 { return s.errorRows.Load() }

// Write adds rows to their objects' buffers and closes the objects that
// reached the size or age limit: into the staging prefix in a
// checkpointed job, published at once otherwise.
func (s *Sink) Write(ctx context.Context, rows []sinks.Row) error {
	if s.txn != nil {
		if err := s.txn.log.Err(); err != nil {
			return err
		}
	}
	now := time.Now()
	full := s.add(rows, now)
	for _, b := range s.buffers {
		if s.cfg.BufferInterval == NoWait || now.Sub(b.opened) >= s.cfg.BufferInterval || b.size >= s.cfg.BufferBytes {
			full = append(full, b)
		}
	}
	slices.SortFunc(full, func(a, b *buffer) int { return cmp.Compare(a.prefix, b.prefix) })
	full = slices.CompactFunc(full, func(a, b *buffer) bool { return a == b })
	for _, b := range full {
		if err := s.flush(ctx, b); err != nil {
			return s.fail(err)
		}
	}
	return nil
}

// add puts rows, arrived at now, in their objects' buffers (or the error
// output's) and returns the buffers that reached BufferBytes.
func (s *Sink) add(rows []sinks.Row, now time.Time) []*buffer {
	var full []*buffer
	for _, r := range rows {
		raw, err := json.Marshal(r.Value)
		if err != nil {
			s.toErrors(fmt.Appendf(nil, "%v", r.Value), now.UnixMilli(), "RowNotEncodable", err.Error())
			continue
		}
		m, _ := r.Value.(map[string]any)
		ts, err := s.rowTime(m, now)
		var part string
		if err == nil {
			part, err = s.tmpl.render(m, ts)
		}
		if err != nil {
			e := err.(*errPartition)
			s.toErrors(raw, now.UnixMilli(), e.code, e.msg)
			continue
		}
		b := s.buffer(s.cfg.Prefix+part, false, now)
		if s.cfg.Format == FormatParquet {
			b.rows = append(b.rows, r)
			b.arrive = append(b.arrive, now.UnixMilli())
		} else {
			b.lines.Write(raw)
			b.lines.WriteByte('\n')
		}
		b.size += int64(len(raw)) + 1
		if b.size >= s.cfg.BufferBytes {
			full = append(full, b)
		}
	}
	return full
}

func (s *Sink) buffer(prefix string, errs bool, now time.Time) *buffer {
	b := s.buffers[prefix]
	if b == nil {
		b = &buffer{prefix: prefix, errors: errs, opened: now}
		s.buffers[prefix] = b
	}
	return b
}

// errorDoc is what Firehose writes for a record it could not deliver
// or convert (its documented error-output fields); rawData is the row as
// JSON, base64-encoded.
type errorDoc struct {
	AttemptsMade           int    `json:"attemptsMade"`
	ArrivalTimestamp       int64  `json:"arrivalTimestamp"`
	ErrorCode              string `json:"ErrorCode"`
	ErrorMessage           string `json:"ErrorMessage"`
	AttemptEndingTimestamp int64  `json:"attemptEndingTimestamp"`
	RawData                string `json:"rawData"`
}

// Error-output types: the first key segment under ErrorPrefix.
const (
	errTypeConversion   = "format-conversion-failed"
	errTypePartitioning = "partitioning-failed"
)

// toErrors adds a row that cannot be written to the error output, and
// says so in an ERROR log line.
func (s *Sink) toErrors(raw []byte, arrival int64, code, msg string) {
	now := time.Now()
	typ := errTypePartitioning
	if code != "PartitionKeyMissing" && code != "EventTimeMissing" && code != "EventTimeInvalid" {
		typ = errTypeConversion
	}
	doc, _ := json.Marshal(errorDoc{AttemptsMade: 1, ArrivalTimestamp: arrival, ErrorCode: code, ErrorMessage: msg,
		AttemptEndingTimestamp: now.UnixMilli(), RawData: base64.StdEncoding.EncodeToString(raw)})
	prefix := s.cfg.ErrorPrefix + typ + "/" + time.UnixMilli(arrival).In(s.loc).Format("dt=2006-01-02/hh=15/")
	b := s.buffer(prefix, true, now)
	b.lines.Write(doc)
	b.lines.WriteByte('\n')
	b.size += int64(len(doc)) + 1
	n := s.errorRows.Add(1)
	s.cfg.Logger.Error("s3 sink: row sent to the error output", "job", s.cfg.Job, "sink", s.cfg.Sink,
		"code", code, "error", msg, "error_prefix", s.cfg.ErrorPrefix+typ+"/", "error_rows", n)
}

// flush closes b's object: encoded and put under its final key, or
// under its staging key in a checkpointed job.
func (s *Sink) flush(ctx context.Context, b *buffer) error {
	delete(s.buffers, b.prefix)
	body, ext, ctype, err := s.encode(b)
	if err != nil {
		return err
	}
	if body == nil {
		return nil // every row went to the error output
	}
	epoch := uint64(0)
	if s.txn != nil {
		epoch = s.txn.log.Last() + 1
	}
	seq := s.seq
	s.seq++
	name := fmt.Sprintf("%s-%s-%s-%010d-%s-%06d", keySegment(s.cfg.Job), keySegment(s.cfg.Sink), s.run, epoch, task, seq)
	if s.cfg.Suffix == SuffixRandom {
		name = uuid.NewString()
	}
	final := b.prefix + name + ext
	key := final
	if s.txn != nil {
		key = fmt.Sprintf("%s%010d/%s-%06d%s", s.stagingRun(), epoch, task, seq, ext)
	}
	if _, err := s.cl.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key),
		Body: bytes.NewReader(body), ContentLength: aws.Int64(int64(len(body))), ContentType: aws.String(ctype)}); err != nil {
		return fmt.Errorf("put s3://%s/%s: %w", s.cfg.Bucket, key, err)
	}
	if s.txn != nil {
		s.txn.objects = append(s.txn.objects, object{Staged: key, Final: final, Bucket: s.cfg.Bucket})
	}
	return nil
}

// stagingJob is the staging prefix of every run of this job's sink;
// stagingRun that of this run.
func (s *Sink) stagingJob() string {
	return s.cfg.StagingPrefix + keySegment(s.cfg.Job) + "/" + keySegment(s.cfg.Sink) + "/"
}

func (s *Sink) stagingRun() string { return s.stagingJob() + s.run + "/" }

func (s *Sink) fail(err error) error {
	if s.txn != nil {
		return s.txn.log.Fail(err)
	}
	return fmt.Errorf("s3 sink %s: %w", s.cfg.Sink, err)
}

// flushAll closes every open object, in key order; then the error
// objects that rows of those objects went to.
func (s *Sink) flushAll(ctx context.Context) error {
	for len(s.buffers) > 0 {
		for _, k := range slices.Sorted(maps.Keys(s.buffers)) {
			if err := s.flush(ctx, s.buffers[k]); err != nil {
				return s.fail(err)
			}
		}
	}
	return nil
}

// Close publishes what is buffered when the job is not checkpointed. In
// a checkpointed job, buffered rows belong to no completed checkpoint:
// the restarted job writes them again.
func (s *Sink) Close() error {
	if s.txn != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return s.flushAll(ctx)
}
