package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/kafkaconn"
	"github.com/runnel-dev/runnel/sources"
)

// commitEvery is how often a reader commits its offsets to the group.
const commitEvery = 5 * time.Second

// retryPause is how long a reader waits before it fetches again after a
// fetch that brought only errors the client retries.
const retryPause = 250 * time.Millisecond

// Source reads Kafka partitions as shards. It holds no connection of its
// own: Shards uses a short-lived client and each reader has its own, so
// nothing outlives the job's readers.
type Source struct {
	cfg  Config
	re   *regexp.Regexp
	opts []kgo.Opt
	log  *slog.Logger
	mu   struct {
		sync.Mutex
		// ids are the IDs of the topics the job reads in this run, by
		// name (bound.go).
		ids map[string]kadm.TopicID
	}
}

var (
	_ sources.Source          = (*Source)(nil)
	_ sources.Discoverer      = (*Source)(nil)
	_ sources.PositionChecker = (*Source)(nil)
	_ sources.Resumer         = (*reader)(nil)
)

// New checks cfg and returns the source. log receives errors that do not
// stop the job (a failed commit of monitoring offsets); nil means
// slog.Default().
func New(cfg Config, log *slog.Logger) (*Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts, err := kafkaconn.Options(cfg.Brokers, cfg.TLS, cfg.SASL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	s := &Source{cfg: cfg, opts: opts, log: log}
	if cfg.TopicRegex != "" {
		s.re = regexp.MustCompile("^(?:" + cfg.TopicRegex + ")$")
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// DiscoverEvery is how often the job lists the partitions again.
func (s *Source) DiscoverEvery() time.Duration {
	switch {
	case s.cfg.DiscoverEvery < 0:
		return 0
	case s.cfg.DiscoverEvery == 0:
		return DefaultDiscoverEvery
	}
	return s.cfg.DiscoverEvery
}

// ShardID names a partition's shard.
func ShardID(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

func parseShardID(id string) (string, int32, error) {
	i := strings.LastIndexByte(id, '/')
	if i <= 0 {
		return "", 0, fmt.Errorf("kafka source: shard %q is not TOPIC/PARTITION", id)
	}
	p, err := strconv.ParseInt(id[i+1:], 10, 32)
	if err != nil || p < 0 {
		return "", 0, fmt.Errorf("kafka source: shard %q is not TOPIC/PARTITION", id)
	}
	return id[:i], int32(p), nil
}

// Shards lists the partitions of the configured topics, sorted. A topic
// named in topics that does not exist is an error; a regex may match none.
// So is a topic the job reads that was deleted and created again since
// (its ID changed): its readers' offsets are of the old topic.
func (s *Source) Shards(ctx context.Context) ([]sources.Shard, error) {
	cl, err := kgo.NewClient(s.opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	details, err := adm.ListTopics(ctx, s.cfg.Topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka source: list topics: %w", err)
	}
	var out []sources.Shard
	for _, name := range details.Names() {
		d := details[name]
		if s.re != nil && !s.re.MatchString(name) {
			continue
		}
		if d.Err != nil {
			return nil, fmt.Errorf("kafka source: topic %s: %w", name, d.Err)
		}
		if err := s.sameTopic(name, d.ID); err != nil {
			return nil, err
		}
		for _, p := range d.Partitions.Numbers() {
			out = append(out, sources.Shard{ID: ShardID(name, p)})
		}
	}
	slices.SortFunc(out, func(a, b sources.Shard) int {
		ta, pa, _ := parseShardID(a.ID)
		tb, pb, _ := parseShardID(b.ID)
		if c := strings.Compare(ta, tb); c != 0 {
			return c
		}
		return int(pa - pb)
	})
	return out, nil
}

// Open reads shard's partition after offset after, or from the configured
// start. The start is resolved to an offset here, so ResumePosition knows
// it before the first record arrives.
func (s *Source) Open(ctx context.Context, shard sources.Shard, after string) (sources.Reader, error) {
	topic, part, err := parseShardID(shard.ID)
	if err != nil {
		return nil, err
	}
	iso := kgo.ReadCommitted()
	if s.cfg.ReadUncommitted {
		iso = kgo.ReadUncommitted()
	}
	// Find the first offset before consuming: the client must not pick a
	// reset offset of its own, so an offset out of the partition's range
	// that the restore's check did not see (records deleted while the job
	// runs) is an error, not a silent skip.
	probe, err := kgo.NewClient(s.opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: %w", shard.ID, err)
	}
	adm := kadm.NewClient(probe)
	id, err := s.bindTopic(ctx, adm, topic)
	var start int64
	if err == nil {
		start, err = s.firstOffset(ctx, adm, topic, part, after, shard.FromStart)
	}
	probe.Close()
	if err != nil {
		return nil, err
	}
	opts := append(slices.Clip(s.opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().At(start)}}),
		kgo.FetchIsolationLevel(iso),
		kgo.ConsumeResetOffset(kgo.NoResetOffset()),
		// The fetch errors that say the topic is gone (gone.go); the
		// reader lets the client retry the other retryable ones.
		kgo.KeepRetryableFetchErrors(),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka source %s: %w", shard.ID, err)
	}
	return &reader{src: s, cl: cl, shard: shard.ID, topic: topic, part: part, id: id, start: start, next: start,
		end: start, dec: s.newDecoder(), committed: start}, nil
}

func (s *Source) newDecoder() Decoder {
	if s.cfg.NewDecoder != nil {
		return s.cfg.NewDecoder()
	}
	return sources.NewDecoder(s.cfg.Format)
}

func (s *Source) firstOffset(ctx context.Context, adm *kadm.Client, topic string, part int32, after string, fromStart bool) (int64, error) {
	if after != "" {
		off, err := strconv.ParseInt(after, 10, 64)
		if err != nil || off < -1 {
			return 0, fmt.Errorf("kafka source %s: position %q is not an offset", ShardID(topic, part), after)
		}
		return off + 1, nil
	}
	var listed kadm.ListedOffsets
	var err error
	start := s.cfg.Start
	if fromStart {
		// A partition the job found while running: all of it is new.
		start = StartEarliest
	}
	switch start {
	case StartLatest:
		if s.cfg.ReadUncommitted {
			listed, err = adm.ListEndOffsets(ctx, topic)
		} else {
			listed, err = adm.ListCommittedOffsets(ctx, topic)
		}
	case StartAtTimestamp:
		listed, err = adm.ListOffsetsAfterMilli(ctx, s.cfg.Timestamp.UnixMilli(), topic)
	default:
		listed, err = adm.ListStartOffsets(ctx, topic)
	}
	if err == nil {
		err = listed.Error()
	}
	if err != nil {
		return 0, fmt.Errorf("kafka source %s: find start %s: %w", ShardID(topic, part), start, err)
	}
	lo, ok := listed.Lookup(topic, part)
	if !ok || lo.Offset < 0 {
		return 0, fmt.Errorf("kafka source %s: the broker has no %s offset for the partition", ShardID(topic, part), start)
	}
	return lo.Offset, nil
}

type reader struct {
	src   *Source
	cl    *kgo.Client
	shard string
	topic string
	part  int32
	// id is the topic's ID when the reader opened (zero from a broker
	// without topic IDs).
	id    kadm.TopicID
	start int64
	next  int64
	// end is the partition's end offset (the high watermark, or the last
	// stable offset when reading committed records) as the last fetch
	// reported it: what a deleted topic held at least.
	end int64
	// goneChecks counts the checks in a row that found the topic gone.
	goneChecks int
	dec        Decoder
	pending    []*kgo.Record
	// committed is the offset last committed to the group.
	committed  int64
	lastCommit time.Time
}

// ResumePosition is the offset before the first one the reader reads.
func (r *reader) ResumePosition() string { return strconv.FormatInt(r.start-1, 10) }

func (r *reader) Read(ctx context.Context, buf []sources.Record) (int, error) {
	for len(r.pending) == 0 {
		fs := r.cl.PollRecords(ctx, len(buf))
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		var ferr error
		gone := false
		fs.EachError(func(t string, p int32, err error) {
			switch {
			case ferr != nil || errors.Is(err, context.Canceled):
			case errors.Is(err, kerr.OffsetOutOfRange):
				// The client picks no reset offset (see Open): say
				// what happened and what a resume does.
				also := ""
				if r.id == (kadm.TopicID{}) {
					also = ", or the topic was deleted and created again (a broker without topic IDs cannot tell)"
				}
				ferr = fmt.Errorf("kafka source %s: fetch at offset %d: %w: records the job had not read yet were deleted (retention) "+
					"or the partition's log was truncated%s; resume the job: its restore checks the checkpoint's offsets against the partition "+
					"and says which records it skips", r.shard, r.next, err, also)
			case errors.Is(err, kerr.UnknownTopicOrPartition), errors.Is(err, kerr.UnknownTopicID):
				gone = true
			case kerr.IsRetriable(err):
				// The client retries it (a leader moved, a broker
				// restarting).
			default:
				ferr = fmt.Errorf("kafka source %s: fetch: %w", r.shard, err)
			}
		})
		switch {
		case ferr == nil && gone:
			ferr = r.checkTopic(ctx)
		case !gone:
			r.goneChecks = 0
		}
		if ferr != nil {
			return 0, ferr
		}
		if len(fs.Records()) == 0 && len(fs.Errors()) > 0 {
			// Errors the client retries come back at once: pace them.
			select {
			case <-time.After(retryPause):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			switch {
			case p.Err != nil:
			case r.src.cfg.ReadUncommitted:
				r.end = max(r.end, p.HighWatermark)
			default:
				r.end = max(r.end, p.LastStableOffset)
			}
		})
		r.pending = fs.Records()
	}
	n := 0
	for _, rec := range r.pending[:min(len(buf), len(r.pending))] {
		v, err := r.dec.Decode(rec.Value)
		if err != nil {
			if n > 0 {
				break
			}
			r.pending = r.pending[1:]
			r.next = rec.Offset + 1
			return 0, &sources.RecordError{Shard: r.shard, Position: strconv.FormatInt(rec.Offset, 10), Err: err}
		}
		if m := r.src.cfg.Metadata; m != "" {
			v = withMetadata(v, m, rec)
		}
		buf[n] = sources.Record{Value: v, PartitionKey: string(rec.Key),
			Position: strconv.FormatInt(rec.Offset, 10), Arrival: rec.Timestamp.UnixMilli()}
		r.next = rec.Offset + 1
		n++
	}
	clear(r.pending[:n])
	r.pending = r.pending[n:]
	r.commitToGroup(ctx)
	return n, nil
}

// commitToGroup tells the group how far the job has read, at most every
// commitEvery. The job resumes from its checkpoints, never from these.
func (r *reader) commitToGroup(ctx context.Context) {
	g := r.src.cfg.Group
	if g == "" || r.next == r.committed || time.Since(r.lastCommit) < commitEvery {
		return
	}
	r.lastCommit = time.Now()
	os := kadm.Offsets{}
	os.Add(kadm.Offset{Topic: r.topic, Partition: r.part, At: r.next, LeaderEpoch: -1})
	resp, err := kadm.NewClient(r.cl).CommitOffsets(ctx, g, os)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		if ctx.Err() == nil {
			r.src.log.Error("kafka source: commit offsets to group (monitoring only; the job is unaffected)",
				"group", g, "shard", r.shard, "offset", r.next, "err", err)
		}
		return
	}
	r.committed = r.next
}

// Children is nil: a Kafka partition never ends.
func (r *reader) Children() []sources.Shard { return nil }

// Close commits the group offsets one last time and closes the client.
func (r *reader) Close() error {
	r.lastCommit = time.Time{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	r.commitToGroup(ctx)
	cancel()
	r.cl.Close()
	return nil
}

// withMetadata adds the record's Kafka metadata to v under field.
func withMetadata(v any, field string, rec *kgo.Record) any {
	h := make(map[string]any, len(rec.Headers))
	for _, kv := range rec.Headers {
		h[kv.Key] = string(kv.Value)
	}
	var key any
	if rec.Key != nil {
		key = string(rec.Key)
	}
	meta := map[string]any{"topic": rec.Topic, "partition": float64(rec.Partition), "offset": float64(rec.Offset),
		"timestamp": float64(rec.Timestamp.UnixMilli()), "key": key, "headers": h}
	m, ok := v.(map[string]any)
	if !ok {
		return map[string]any{"value": v, field: meta}
	}
	m[field] = meta
	return m
}
