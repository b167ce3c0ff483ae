package kinesis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/backoff"
	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/streams"
)

// Source reads a Kinesis stream's shards. It is safe for concurrent use by
// the tasks of one job.
type Source struct {
	cfg Config
	api *kinesis.Client
	log *slog.Logger
	// backoffMax bounds the waits between GetRecords retries; 0 is the
	// backoff package's default (tests shorten it).
	backoffMax time.Duration
	// eventGap is the longest gap a fan-out endpoint leaves between
	// SubscribeToShard events while idle; 0 is awsEventGap (tests
	// shorten it).
	eventGap time.Duration
	health   struct {
		throttled atomic.Int64 // calls refused for a limit, retried
		retried   atomic.Int64 // other failed calls, retried
		filtered  atomic.Int64 // KPL user records outside their shard's range
	}
	mu struct {
		sync.Mutex
		// ranges are the hash ranges of the shards seen so far.
		ranges map[string]streams.HashRange
		// initial are the shards of the first listing: Start applies to
		// them.
		initial map[string]bool
		listed  bool
		// consumerARN is the registered fan-out consumer, once known.
		consumerARN string
	}
}

var _ sources.Source = (*Source)(nil)

// New checks cfg and makes the client (loading credentials from the
// default chain or the named profile). log receives retried failures;
// nil means slog.Default().
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.EnsureDefaults()
	api, err := cfg.Conn.Client(ctx, cfg.Consumer != "")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if log == nil {
		log = slog.Default()
	}
	s := &Source{cfg: cfg, api: api, log: log}
	s.mu.ranges = map[string]streams.HashRange{}
	s.mu.initial = map[string]bool{}
	return s, nil
}

// Throttled counts calls the endpoint refused for a limit (and that were
// retried); Retried counts other failed calls that were retried; Filtered
// counts KPL user records dropped as outside their shard's hash range.
func (s *Source) Throttled() int64 { return s.health.throttled.Load() }
func (s *Source) Retried() int64   { return s.health.retried.Load() }
func (s *Source) Filtered() int64  { return s.health.filtered.Load() }

// ErrNoAnswer is the error of a call to the endpoint cut short by
// Config.CallTimeout: the endpoint took the request and did not answer.
// A retry can help.
var ErrNoAnswer = errors.New("kinesis source: no answer from the endpoint")

// retry runs call until it succeeds, fails for good, or ctx ends, each
// attempt bounded by CallTimeout and retryable failures followed by a
// backoff. what names the call and shard ("" for none) its shard in logs.
func (s *Source) retry(ctx context.Context, what, shard string, call func(context.Context) error) error {
	var b backoff.Backoff
	failed := 0 // failures other than throttling
	for {
		err := s.attempt(ctx, what, call)
		if err == nil {
			s.noteRecovered(what, shard, failed)
			return nil
		}
		if !kinesisconn.Retryable(err) || ctx.Err() != nil {
			return err
		}
		failed += s.noteRetry(what, shard, err, failed)
		if err := backoff.Sleep(ctx, b.Next()); err != nil {
			return err
		}
	}
}

// attempt runs one call with a context that ends after CallTimeout; a
// call cut short by it (not by ctx) returns ErrNoAnswer.
func (s *Source) attempt(ctx context.Context, what string, call func(context.Context) error) error {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	err := call(cctx)
	if err != nil && ctx.Err() == nil && cctx.Err() != nil {
		return fmt.Errorf("%s: %w within %s", what, ErrNoAnswer, s.cfg.CallTimeout)
	}
	return err
}

// endpoint names the endpoint in logs.
func (s *Source) endpoint() string {
	if s.cfg.Endpoint != "" {
		return s.cfg.Endpoint
	}
	return "AWS"
}

// noteRetry counts a retried failure. Failures other than throttling are
// logged as warnings (naming stream, shard, endpoint and call) when a
// series of them starts and every tenth time: failed is how many came
// before in the series. It returns 1 for such a failure, 0 for throttling.
func (s *Source) noteRetry(what, shard string, err error, failed int) int {
	if kinesisconn.Throttled(err) {
		s.health.throttled.Add(1)
		return 0
	}
	s.health.retried.Add(1)
	if failed%10 == 0 {
		s.log.Warn("kinesis source: call failed; retrying with backoff", "stream", s.cfg.Stream, "shard", shard,
			"endpoint", s.endpoint(), "call", what, "failures", failed+1, "err", err)
	}
	return 1
}

// noteRecovered logs a call that succeeded after failed failures other
// than throttling.
func (s *Source) noteRecovered(what, shard string, failed int) {
	if failed > 0 {
		s.log.Info("kinesis source: call succeeded again", "stream", s.cfg.Stream, "shard", shard,
			"endpoint", s.endpoint(), "call", what, "failures", failed)
	}
}

func hashRange(r *types.HashKeyRange) (streams.HashRange, error) {
	if r == nil {
		return streams.HashRange{}, errors.New("no hash key range")
	}
	lo, err := streams.ParseHashKey(deref(r.StartingHashKey))
	if err != nil {
		return streams.HashRange{}, err
	}
	hi, err := streams.ParseHashKey(deref(r.EndingHashKey))
	if err != nil {
		return streams.HashRange{}, err
	}
	return streams.HashRange{Start: lo, End: hi}, nil
}

// list returns every shard of the stream still in retention, open and
// closed, in the endpoint's order (by shard id: parents first).
func (s *Source) list(ctx context.Context) ([]types.Shard, error) {
	var out []types.Shard
	in := &kinesis.ListShardsInput{StreamName: aws.String(s.cfg.Stream),
		ShardFilter: &types.ShardFilter{Type: types.ShardFilterTypeFromTrimHorizon}}
	for {
		var page *kinesis.ListShardsOutput
		err := s.retry(ctx, "ListShards", "", func(ctx context.Context) (err error) {
			page, err = s.api.ListShards(ctx, in)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("kinesis source: list shards of %s: %w", s.cfg.Stream, err)
		}
		out = append(out, page.Shards...)
		if page.NextToken == nil || *page.NextToken == "" {
			return out, nil
		}
		in = &kinesis.ListShardsInput{NextToken: page.NextToken}
	}
}

// Shards lists the stream's shards with their parents, parents first.
func (s *Source) Shards(ctx context.Context) ([]sources.Shard, error) {
	list, err := s.list(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]sources.Shard, 0, len(list))
	s.mu.Lock()
	defer s.mu.Unlock()
	first := !s.mu.listed
	s.mu.listed = true
	for _, sh := range list {
		id := deref(sh.ShardId)
		r, err := hashRange(sh.HashKeyRange)
		if err != nil {
			return nil, fmt.Errorf("kinesis source: shard %s of %s: %w", id, s.cfg.Stream, err)
		}
		s.mu.ranges[id] = r
		if first {
			s.mu.initial[id] = true
		}
		ss := sources.Shard{ID: id}
		for _, p := range []*string{sh.ParentShardId, sh.AdjacentParentShardId} {
			if p != nil && *p != "" {
				ss.Parents = append(ss.Parents, *p)
			}
		}
		out = append(out, ss)
	}
	return out, nil
}

// learn records the hash ranges of children named by a closed shard.
func (s *Source) learn(children []types.ChildShard) ([]sources.Shard, error) {
	out := make([]sources.Shard, 0, len(children))
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range children {
		id := deref(c.ShardId)
		r, err := hashRange(c.HashKeyRange)
		if err != nil {
			return nil, fmt.Errorf("kinesis source: child shard %s: %w", id, err)
		}
		s.mu.ranges[id] = r
		out = append(out, sources.Shard{ID: id, Parents: append([]string(nil), c.ParentShards...)})
	}
	return out, nil
}

// shardRange returns the hash range of shard id, listing the stream again
// if the shard is new to the source.
func (s *Source) shardRange(ctx context.Context, id string) (streams.HashRange, bool, error) {
	s.mu.Lock()
	r, ok := s.mu.ranges[id]
	initial := s.mu.initial[id]
	s.mu.Unlock()
	if ok {
		return r, initial, nil
	}
	if _, err := s.Shards(ctx); err != nil {
		return r, false, err
	}
	s.mu.Lock()
	r, ok = s.mu.ranges[id]
	initial = s.mu.initial[id]
	s.mu.Unlock()
	if !ok {
		return r, false, fmt.Errorf("kinesis source: stream %s has no shard %s (expired?)", s.cfg.Stream, id)
	}
	return r, initial, nil
}

// startFor is where shard starts when the job has no position for it.
func (s *Source) startFor(shard string, initial bool) (types.ShardIteratorType, string) {
	if !initial {
		return types.ShardIteratorTypeTrimHorizon, ""
	}
	switch s.cfg.Start {
	case StartLatest:
		return types.ShardIteratorTypeLatest, ""
	case StartAtTimestamp:
		return types.ShardIteratorTypeAtTimestamp, ""
	case StartAtSequence, StartAfterSequence:
		seq, ok := s.cfg.Sequences[shard]
		if !ok {
			return types.ShardIteratorTypeTrimHorizon, ""
		}
		if s.cfg.Start == StartAtSequence {
			return types.ShardIteratorTypeAtSequenceNumber, seq
		}
		return types.ShardIteratorTypeAfterSequenceNumber, seq
	}
	return types.ShardIteratorTypeTrimHorizon, ""
}

// Open positions a reader on shard after the position after, or at the
// configured start.
func (s *Source) Open(ctx context.Context, shard sources.Shard, after string) (sources.Reader, error) {
	rng, initial, err := s.shardRange(ctx, shard.ID)
	if err != nil {
		return nil, err
	}
	u := &unpacker{rng: rng, skip: position{sub: -1}}
	// A shard the runtime says is new to the job (a reshard's child it
	// had not opened before a restore) is read from its beginning.
	typ, seq := s.startFor(shard.ID, initial && !shard.FromStart)
	at := s.cfg.Timestamp
	resume := ""
	switch {
	case after == "" && typ == types.ShardIteratorTypeLatest:
		// LATEST as the time the shard is opened: a checkpoint taken
		// before the first record, or an iterator renewed before it,
		// starts at that same time, so nothing that arrived since is
		// skipped.
		at = time.UnixMilli(time.Now().UnixMilli())
		typ, resume = types.ShardIteratorTypeAtTimestamp, timePosition(at)
	case strings.HasPrefix(after, "@"):
		if at, err = parseTimePosition(after); err != nil {
			return nil, fmt.Errorf("kinesis source %s: %w", shard.ID, err)
		}
		typ, seq, resume = types.ShardIteratorTypeAtTimestamp, "", after
	case after != "":
		p, err := parsePosition(after)
		if err != nil {
			return nil, fmt.Errorf("kinesis source %s: %w", shard.ID, err)
		}
		typ, seq = types.ShardIteratorTypeAfterSequenceNumber, p.seq
		if p.sub >= 0 {
			// Inside an aggregated record: read it again and skip the
			// user records already read.
			typ, u.skip = types.ShardIteratorTypeAtSequenceNumber, p
		}
	}
	base := readerBase{src: s, shard: shard.ID, unpack: u, dec: s.cfg.NewDecoder(),
		from: startAt{typ: typ, seq: seq, at: at}, resume: resume}
	if s.cfg.Consumer != "" {
		return s.openFanOut(ctx, base)
	}
	return s.openPoll(ctx, base)
}

// readerBase is what polling and fan-out readers share.
type readerBase struct {
	src      *Source
	shard    string
	unpack   *unpacker
	dec      Decoder
	pending  []raw
	children []sources.Shard
	// last is the position of the last Kinesis record unpacked: a
	// renewed iterator or subscription starts after it, or at from when
	// no record was read yet.
	last string
	from startAt
	// resume is where a job resumes the shard when its checkpoint came
	// before the first record (see sources.Resumer); "" where the
	// configured start already says it.
	resume string
}

var (
	_ sources.Resumer = (*pollReader)(nil)
	_ sources.Resumer = (*fanOutReader)(nil)
)

// startAt is where a reader starts: an iterator type with its sequence
// number or time.
type startAt struct {
	typ types.ShardIteratorType
	seq string
	at  time.Time
}

// ResumePosition is the time a shard opened at latest starts from.
func (b *readerBase) ResumePosition() string { return b.resume }

// timePosition is the position of a start at a time: "@" and epoch ms.
func timePosition(t time.Time) string { return "@" + strconv.FormatInt(t.UnixMilli(), 10) }

func parseTimePosition(s string) (time.Time, error) {
	ms, err := strconv.ParseInt(s[1:], 10, 64)
	if err != nil || ms < 0 {
		return time.Time{}, fmt.Errorf("position %q is not @EPOCH_MS", s)
	}
	return time.UnixMilli(ms), nil
}

func (b *readerBase) push(recs []types.Record) {
	before := b.unpack.filtered
	for _, r := range recs {
		b.pending = b.unpack.add(b.pending, r)
		b.last = deref(r.SequenceNumber)
	}
	b.src.health.filtered.Add(b.unpack.filtered - before)
}

func (b *readerBase) end(children []types.ChildShard) error {
	kids, err := b.src.learn(children)
	b.children = kids
	return err
}

func (b *readerBase) Children() []sources.Shard { return b.children }
