package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/internal/kafkaconn"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sinks/epochs"
	"github.com/runnel-dev/runnel/state"
)

// ErrConfig marks a Kafka sink configuration error.
var ErrConfig = fmt.Errorf("%w: kafka", sinks.ErrConfig)

// Config configures a Kafka sink.
type Config struct {
	Brokers []string
	Topic   string
	// KeyField names the row field used as record key; default the row's
	// key (the window key of window results).
	KeyField string
	// Headers maps record header names to the row fields that give
	// their values (a string as is, any other value as JSON; a missing
	// or null field gives no header).
	Headers map[string]string
	// Partitioner chooses a record's partition: murmur2 (default: the
	// hash of the key Kafka's Java client uses, so the sink agrees with
	// other producers of the topic), sarama (FNV-1a, as Sarama-based
	// producers), round_robin (ignores the key), or field
	// (PartitionField holds the partition number).
	Partitioner    string
	PartitionField string
	TLS            *kafkaconn.TLS
	SASL           *kafkaconn.SASL
	// Job and Sink name the transactional id and the progress group.
	Job, Sink string
	// TransactionTimeout bounds how long a crashed producer's open
	// transaction blocks read_committed consumers. Default 60s.
	TransactionTimeout time.Duration
	// Logger gets a WARN line for a call the brokers leave unanswered
	// (sinks.Watchdog); default slog.Default().
	Logger *slog.Logger
}

// Validate checks the configuration without contacting a broker.
func (c *Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return fmt.Errorf("%w: brokers: give at least one host:port", ErrConfig)
	case c.Topic == "":
		return fmt.Errorf("%w: topic is required", ErrConfig)
	case c.Job == "" || c.Sink == "":
		return fmt.Errorf("%w: job and sink names are required", ErrConfig)
	}
	switch c.Partitioner {
	case "", PartitionerMurmur2, PartitionerSarama, PartitionerRoundRobin:
		if c.PartitionField != "" {
			return fmt.Errorf("%w: partition_field needs partitioner: field", ErrConfig)
		}
	case PartitionerField:
		if c.PartitionField == "" {
			return fmt.Errorf("%w: partitioner field needs partition_field", ErrConfig)
		}
	default:
		return fmt.Errorf("%w: partitioner %q: use murmur2, sarama, round_robin or field", ErrConfig, c.Partitioner)
	}
	for name, field := range c.Headers {
		if name == "" || field == "" {
			return fmt.Errorf("%w: headers: give NAME: FIELD pairs with neither empty", ErrConfig)
		}
	}
	if c.SASL != nil {
		if err := c.SASL.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

// Partitioners of Config.Partitioner.
const (
	PartitionerMurmur2    = "murmur2"
	PartitionerSarama     = "sarama"
	PartitionerRoundRobin = "round_robin"
	PartitionerField      = "field"
)

func (c *Config) partitioner() kgo.Partitioner {
	switch c.Partitioner {
	case PartitionerSarama:
		return kgo.StickyKeyPartitioner(kgo.SaramaCompatHasher(fnv32a))
	case PartitionerRoundRobin:
		return kgo.RoundRobinPartitioner()
	case PartitionerField:
		return kgo.ManualPartitioner()
	}
	return kgo.StickyKeyPartitioner(nil) // murmur2, as Kafka's Java client
}

func fnv32a(b []byte) uint32 {
	h := fnv.New32a()
	h.Write(b)
	return h.Sum32()
}

func (c *Config) transactionalID() string { return "runnel." + c.Job + "." + c.Sink }

// progressGroup is the group whose offset on partition 0 of a topic is
// the last epoch committed there: runnel-sink.JOB.SINK, and .INCARNATION
// after it once the sink has one (see sinks/epochs), so a fresh start's
// epochs, counted from 1 again, are not taken for an earlier
// incarnation's. The transactional id stays the same across
// incarnations: a new one fences a run of the old still producing.
func (s *Sink) progressGroup() string {
	g := "runnel-sink." + s.cfg.Job + "." + s.cfg.Sink
	if inc := s.txn.Incarnation(); inc != "" {
		g += "." + inc
	}
	return g
}

// Sink writes rows as JSON records; see the package comment.
type Sink struct {
	cfg  Config
	opts []kgo.Opt
	cl   *kgo.Client
	txn  *epochs.Txn
	// topicID is the topic's id, which newer TxnOffsetCommit versions
	// name topics by (zero when the broker has none).
	topicID [16]byte
	// partitions is the topic's partition count when OpenState listed
	// it, which rows with partitioner field are checked against.
	partitions int
	// watch says the calls the brokers hold unanswered.
	watch *sinks.Watchdog
}

var _ sinks.Transactional = (*Sink)(nil)

// New checks cfg and creates the client (it connects lazily).
func New(cfg Config) (*Sink, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.TransactionTimeout == 0 {
		cfg.TransactionTimeout = 60 * time.Second
	}
	opts, err := kafkaconn.Options(cfg.Brokers, cfg.TLS, cfg.SASL)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	opts = append(opts, kgo.RecordPartitioner(cfg.partitioner()))
	s := &Sink{cfg: cfg, opts: opts, watch: sinks.NewWatchdog(cfg.Job, cfg.Sink, "kafka", "topic "+cfg.Topic, cfg.Logger)}
	return s, nil
}

func (s *Sink) record(r epochs.Row) (*kgo.Record, error) {
	v, err := json.Marshal(r.Value)
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: encode row: %w", s.cfg.Sink, err)
	}
	rec := &kgo.Record{Topic: s.cfg.Topic, Key: []byte(r.Key), Value: v}
	m, _ := r.Value.(map[string]any)
	for name, field := range s.cfg.Headers {
		if fv, ok := m[field]; ok && fv != nil {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: name, Value: []byte(fieldString(fv))})
		}
	}
	if len(rec.Headers) > 1 {
		slices.SortFunc(rec.Headers, func(a, b kgo.RecordHeader) int { return strings.Compare(a.Key, b.Key) })
	}
	if s.cfg.Partitioner == PartitionerField {
		p, ok := partitionOf(m[s.cfg.PartitionField])
		if !ok {
			return nil, fmt.Errorf("kafka sink %s: row field %s is %v, not a partition number: %s",
				s.cfg.Sink, s.cfg.PartitionField, m[s.cfg.PartitionField], v)
		}
		rec.Partition = p
	}
	return rec, nil
}

// checkPartition fails a row whose partition field names no partition of
// the topic when it is staged, not when its epoch commits: a commit that
// cannot succeed would fail every restart.
func (s *Sink) checkPartition(r epochs.Row) error {
	if s.cfg.Partitioner != PartitionerField {
		return nil
	}
	m, _ := r.Value.(map[string]any)
	p, ok := partitionOf(m[s.cfg.PartitionField])
	if !ok || (s.partitions > 0 && int(p) >= s.partitions) {
		return fmt.Errorf("kafka sink %s: row field %s is %v, not a partition of %s (0 to %d)",
			s.cfg.Sink, s.cfg.PartitionField, m[s.cfg.PartitionField], s.cfg.Topic, s.partitions-1)
	}
	return nil
}

// fieldString is a row field as a key or header value: a string as is,
// anything else as JSON.
func fieldString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// partitionOf reads a partition number from a row field (a JSON number
// or a Go integer).
func partitionOf(v any) (int32, bool) {
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case int64:
		f = float64(n)
	case int:
		f = float64(n)
	default:
		return 0, false
	}
	if f < 0 || f > math.MaxInt32 || f != math.Trunc(f) {
		return 0, false
	}
	return int32(f), true
}

func (s *Sink) rowOf(r sinks.Row) epochs.Row {
	key := r.Key
	if s.cfg.KeyField != "" {
		if m, ok := r.Value.(map[string]any); ok {
			key = ""
			if k := m[s.cfg.KeyField]; k != nil {
				key = fieldString(k)
			}
		}
	}
	return epochs.Row{Key: key, Value: r.Value}
}

// Write stages rows in a checkpointed job; otherwise it produces them at
// once with an idempotent, non-transactional producer (at least once).
func (s *Sink) Write(ctx context.Context, rows []sinks.Row) error {
	if s.txn != nil {
		if err := s.txn.Err(); err != nil {
			return err
		}
		for _, r := range rows {
			row := s.rowOf(r)
			if err := s.checkPartition(row); err != nil {
				return err
			}
			s.txn.Stage(row)
		}
		return nil
	}
	if s.cl == nil {
		cl, err := kgo.NewClient(s.opts...)
		if err != nil {
			return fmt.Errorf("kafka sink %s: %w", s.cfg.Sink, err)
		}
		s.cl = cl
	}
	recs := make([]*kgo.Record, 0, len(rows))
	for _, r := range rows {
		rec, err := s.record(s.rowOf(r))
		if err != nil {
			return err
		}
		recs = append(recs, rec)
	}
	done := s.watch.Watch(fmt.Sprintf("the produce of %d records", len(recs)))
	defer done()
	if err := s.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("kafka sink %s: produce to %s: %w", s.cfg.Sink, s.cfg.Topic, err)
	}
	return nil
}

// Close releases the client. Staged rows belong to no completed checkpoint.
func (s *Sink) Close() error {
	if s.cl != nil {
		s.cl.Close()
	}
	return nil
}

// OpenState creates the transactional producer (fencing any earlier one
// with the same id) and commits the restored epochs above the progress.
func (s *Sink) OpenState(ctx context.Context, sp *state.Space) error {
	if s.txn != nil {
		return fmt.Errorf("kafka sink %s: OpenState called twice", s.cfg.Sink)
	}
	t := epochs.NewTxn(sp, "kafka sink "+s.cfg.Sink, s.cfg.Topic, s.commitEpoch)
	s.txn = t
	fail := func(err error) error {
		return t.Fail(fmt.Errorf("open state: %w", err))
	}
	opts := append(s.opts[:len(s.opts):len(s.opts)], kgo.TransactionalID(s.cfg.transactionalID()),
		kgo.TransactionTimeout(s.cfg.TransactionTimeout), kgo.DefaultProduceTopic(s.cfg.Topic))
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fail(err)
	}
	s.cl = cl
	// InitProducerID: bumps the epoch of the transactional id, which
	// aborts a transaction a crashed producer left open.
	done := s.watch.Watch("the producer id's initialisation")
	_, _, err = cl.ProducerID(ctx)
	done()
	if err != nil {
		return fail(fmt.Errorf("init producer id %s: %w", s.cfg.transactionalID(), err))
	}
	td, err := s.topic(ctx, s.cfg.Topic)
	if err != nil {
		return fail(err)
	}
	s.topicID, s.partitions = td.ID, len(td.Partitions)
	return t.Restore(ctx)
}

// topic describes a topic.
func (s *Sink) topic(ctx context.Context, topic string) (kadm.TopicDetail, error) {
	topics, err := kadm.NewClient(s.cl).ListTopics(ctx, topic)
	if err == nil {
		err = topics.Error()
	}
	if err != nil {
		return kadm.TopicDetail{}, fmt.Errorf("topic %s: %w", topic, err)
	}
	return topics[topic], nil
}

// PreCommit stores the rows written since the last PreCommit under epoch.
func (s *Sink) PreCommit(ctx context.Context, epoch uint64) error {
	return s.txn.PreCommit(epoch)
}

// Commit writes every staged epoch <= epoch in a transaction of its own.
func (s *Sink) Commit(ctx context.Context, epoch uint64) error {
	return s.txn.Commit(ctx, epoch)
}

// progress returns the last epoch committed to topic, waiting for
// transactional offsets still in flight to settle.
func (s *Sink) progress(ctx context.Context, topic string) (int64, error) {
	offs, err := kadm.NewClient(s.cl).FetchOffsets(kadm.RequireStable(ctx), s.progressGroup())
	if errors.Is(err, kerr.GroupIDNotFound) {
		return 0, nil // nothing committed yet
	}
	if err != nil {
		return 0, fmt.Errorf("fetch progress of group %s: %w", s.progressGroup(), err)
	}
	if o, ok := offs.Lookup(topic, 0); ok {
		if o.Err != nil {
			return 0, fmt.Errorf("fetch progress of group %s: %w", s.progressGroup(), o.Err)
		}
		return o.At, nil
	}
	return 0, nil
}

// commitEpoch writes e's records and its progress in one transaction to
// the topic e was staged for, unless the progress shows it committed
// already. A restored epoch staged for a topic the sink no longer writes
// to (a deploy changed it) goes there, or, if that topic was deleted,
// fails with sinks.ErrStagedTargetGone.
func (s *Sink) commitEpoch(ctx context.Context, e epochs.Epoch) error {
	defer s.watch.Watch(fmt.Sprintf("the transaction of checkpoint epoch %d (%d records)", e.Epoch, len(e.Rows)))()
	topic, topicID := s.cfg.Topic, s.topicID
	if e.Target != "" && e.Target != s.cfg.Topic {
		topic = e.Target
		td, err := s.topic(ctx, topic)
		if errors.Is(err, kerr.UnknownTopicOrPartition) {
			return fmt.Errorf("%w: the %d rows of checkpoint epoch %d were staged for topic %q, which no longer exists "+
				"(create it again and restart the job to deliver them there; they are not written to %q): %w",
				sinks.ErrStagedTargetGone, len(e.Rows), e.Epoch, topic, s.cfg.Topic, err)
		}
		if err != nil {
			return err
		}
		topicID = td.ID
	}
	done, err := s.progress(ctx, topic)
	if err != nil {
		return err
	}
	if done >= int64(e.Epoch) || len(e.Rows) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, 0, len(e.Rows))
	for _, r := range e.Rows {
		rec, err := s.record(r)
		if err != nil {
			return err
		}
		rec.Topic = topic
		recs = append(recs, rec)
	}
	if err := s.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	err = s.cl.ProduceSync(ctx, recs...).FirstErr()
	if err == nil {
		err = s.addProgress(ctx, topic, topicID, int64(e.Epoch))
	}
	if err != nil {
		abortErr := s.cl.EndTransaction(ctx, kgo.TryAbort)
		return fmt.Errorf("epoch %d: %w (abort: %v)", e.Epoch, err, abortErr)
	}
	if err := s.cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		return fmt.Errorf("commit transaction of epoch %d: %w", e.Epoch, err)
	}
	return nil
}

// addProgress adds the progress group to the open transaction and commits
// offset epoch for partition 0 of topic (whose id is topicID) in it.
func (s *Sink) addProgress(ctx context.Context, topic string, topicID [16]byte, epoch int64) error {
	id, pepoch, err := s.cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = s.cfg.transactionalID(), id, pepoch, s.progressGroup()
	addResp, err := add.RequestWith(ctx, s.cl)
	if err == nil {
		err = kerr.ErrorForCode(addResp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("add progress offsets to the transaction: %w", err)
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = s.cfg.transactionalID(), s.progressGroup(), id, pepoch
	commit.Generation, commit.MemberID = -1, ""
	tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	tp.Partition, tp.Offset, tp.LeaderEpoch = 0, epoch, -1
	reqTopic := kmsg.NewTxnOffsetCommitRequestTopic()
	reqTopic.Topic, reqTopic.TopicID, reqTopic.Partitions = topic, topicID, []kmsg.TxnOffsetCommitRequestTopicPartition{tp}
	commit.Topics = []kmsg.TxnOffsetCommitRequestTopic{reqTopic}
	resp, err := commit.RequestWith(ctx, s.cl)
	if err != nil {
		return fmt.Errorf("commit progress offset: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("commit progress offset: %w", err)
			}
		}
	}
	return nil
}
