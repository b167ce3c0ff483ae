package kafka

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	TLS      *kafkaconn.TLS
	SASL     *kafkaconn.SASL
	// Job and Sink name the transactional id and the progress group.
	Job, Sink string
	// TransactionTimeout bounds how long a crashed producer's open
	// transaction blocks read_committed consumers. Default 60s.
	TransactionTimeout time.Duration
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
	if c.SASL != nil {
		if err := c.SASL.Validate(); err != nil {
			return fmt.Errorf("%w: %w", ErrConfig, err)
		}
	}
	return nil
}

func (c *Config) transactionalID() string { return "runnel." + c.Job + "." + c.Sink }
func (c *Config) progressGroup() string   { return "runnel-sink." + c.Job + "." + c.Sink }

// Sink writes rows as JSON records; see the package comment.
type Sink struct {
	cfg  Config
	opts []kgo.Opt
	cl   *kgo.Client
	txn  *txnState
	// topicID is the topic's id, which newer TxnOffsetCommit versions
	// name topics by (zero when the broker has none).
	topicID [16]byte
}

type txnState struct {
	sp      *state.Space
	staged  []epochs.Row
	pending []epochs.Epoch
	last    uint64
	failed  error
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
	s := &Sink{cfg: cfg, opts: opts}
	return s, nil
}

func (s *Sink) record(r epochs.Row) (*kgo.Record, error) {
	v, err := json.Marshal(r.Value)
	if err != nil {
		return nil, fmt.Errorf("kafka sink %s: encode row: %w", s.cfg.Sink, err)
	}
	return &kgo.Record{Topic: s.cfg.Topic, Key: []byte(r.Key), Value: v}, nil
}

func (s *Sink) rowOf(r sinks.Row) epochs.Row {
	key := r.Key
	if s.cfg.KeyField != "" {
		if m, ok := r.Value.(map[string]any); ok {
			switch k := m[s.cfg.KeyField].(type) {
			case string:
				key = k
			case nil:
				key = ""
			default:
				b, _ := json.Marshal(k)
				key = string(b)
			}
		}
	}
	return epochs.Row{Key: key, Value: r.Value}
}

// Write stages rows in a checkpointed job; otherwise it produces them at
// once with an idempotent, non-transactional producer (at least once).
func (s *Sink) Write(ctx context.Context, rows []sinks.Row) error {
	if s.txn != nil {
		if s.txn.failed != nil {
			return s.txn.failed
		}
		for _, r := range rows {
			s.txn.staged = append(s.txn.staged, s.rowOf(r))
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
	t := &txnState{sp: sp}
	s.txn = t
	fail := func(err error) error {
		t.failed = fmt.Errorf("kafka sink %s: open state: %w", s.cfg.Sink, err)
		return t.failed
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
	if _, _, err := cl.ProducerID(ctx); err != nil {
		return fail(fmt.Errorf("init producer id %s: %w", s.cfg.transactionalID(), err))
	}
	topics, err := kadm.NewClient(cl).ListTopics(ctx, s.cfg.Topic)
	if err == nil {
		err = topics.Error()
	}
	if err != nil {
		return fail(fmt.Errorf("topic %s: %w", s.cfg.Topic, err))
	}
	s.topicID = topics[s.cfg.Topic].ID
	staged, err := epochs.Load(sp)
	if err != nil {
		return fail(err)
	}
	for _, e := range staged {
		if err := s.commitEpoch(ctx, e); err != nil {
			return fail(err)
		}
		if err := epochs.Forget(sp, e); err != nil {
			return fail(err)
		}
		t.last = e.Epoch
	}
	return nil
}

// PreCommit stores the rows written since the last PreCommit under epoch.
func (s *Sink) PreCommit(ctx context.Context, epoch uint64) error {
	t := s.txn
	if t == nil {
		return errors.New("kafka sink: PreCommit before OpenState")
	}
	if t.failed != nil {
		return t.failed
	}
	if epoch <= t.last {
		return fmt.Errorf("kafka sink %s: PreCommit epoch %d is not after the last one, %d", s.cfg.Sink, epoch, t.last)
	}
	t.last = epoch
	if len(t.staged) == 0 {
		return nil
	}
	e, err := epochs.Stage(t.sp, epoch, t.staged)
	if err != nil {
		return fmt.Errorf("kafka sink %s: %w", s.cfg.Sink, err)
	}
	t.pending = append(t.pending, e)
	t.staged = nil
	return nil
}

// Commit writes every staged epoch <= epoch in a transaction of its own.
func (s *Sink) Commit(ctx context.Context, epoch uint64) error {
	t := s.txn
	if t == nil {
		return errors.New("kafka sink: Commit before OpenState")
	}
	if t.failed != nil {
		return t.failed
	}
	for len(t.pending) > 0 && t.pending[0].Epoch <= epoch {
		e := t.pending[0]
		err := s.commitEpoch(ctx, e)
		if err == nil {
			err = epochs.Forget(t.sp, e)
		}
		if err != nil {
			t.failed = fmt.Errorf("kafka sink %s: commit epoch %d (restart the job from its checkpoint): %w", s.cfg.Sink, e.Epoch, err)
			return t.failed
		}
		t.pending = t.pending[1:]
	}
	return nil
}

// progress returns the last epoch committed, waiting for transactional
// offsets still in flight to settle.
func (s *Sink) progress(ctx context.Context) (int64, error) {
	offs, err := kadm.NewClient(s.cl).FetchOffsets(kadm.RequireStable(ctx), s.cfg.progressGroup())
	if errors.Is(err, kerr.GroupIDNotFound) {
		return 0, nil // nothing committed yet
	}
	if err != nil {
		return 0, fmt.Errorf("fetch progress of group %s: %w", s.cfg.progressGroup(), err)
	}
	if o, ok := offs.Lookup(s.cfg.Topic, 0); ok {
		if o.Err != nil {
			return 0, fmt.Errorf("fetch progress of group %s: %w", s.cfg.progressGroup(), o.Err)
		}
		return o.At, nil
	}
	return 0, nil
}

// commitEpoch writes e's records and its progress in one transaction,
// unless the progress shows it committed already.
func (s *Sink) commitEpoch(ctx context.Context, e epochs.Epoch) error {
	done, err := s.progress(ctx)
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
		recs = append(recs, rec)
	}
	if err := s.cl.BeginTransaction(); err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	err = s.cl.ProduceSync(ctx, recs...).FirstErr()
	if err == nil {
		err = s.addProgress(ctx, int64(e.Epoch))
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
// offset epoch for partition 0 of the topic in it.
func (s *Sink) addProgress(ctx context.Context, epoch int64) error {
	id, pepoch, err := s.cl.ProducerID(ctx)
	if err != nil {
		return err
	}
	add := kmsg.NewPtrAddOffsetsToTxnRequest()
	add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = s.cfg.transactionalID(), id, pepoch, s.cfg.progressGroup()
	addResp, err := add.RequestWith(ctx, s.cl)
	if err == nil {
		err = kerr.ErrorForCode(addResp.ErrorCode)
	}
	if err != nil {
		return fmt.Errorf("add progress offsets to the transaction: %w", err)
	}
	commit := kmsg.NewPtrTxnOffsetCommitRequest()
	commit.TransactionalID, commit.Group, commit.ProducerID, commit.ProducerEpoch = s.cfg.transactionalID(), s.cfg.progressGroup(), id, pepoch
	commit.Generation, commit.MemberID = -1, ""
	tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
	tp.Partition, tp.Offset, tp.LeaderEpoch = 0, epoch, -1
	topic := kmsg.NewTxnOffsetCommitRequestTopic()
	topic.Topic, topic.TopicID, topic.Partitions = s.cfg.Topic, s.topicID, []kmsg.TxnOffsetCommitRequestTopicPartition{tp}
	commit.Topics = []kmsg.TxnOffsetCommitRequestTopic{topic}
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
