package cluster

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/operators"
	pgsink "github.com/runnel-dev/runnel/sinks/postgres"
	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

// A worker's PostgreSQL and S3 sinks go through an outbox: the task
// writes the sink's rows, inside its Kafka transaction, to the topic
// <job>.<sink>.outbox, so they commit exactly once together with its state
// and input offsets; a delivery loop (deliver.go) reads the outbox
// read_committed and writes the rows to the target with the target's own
// atomicity, keyed by the outbox offsets.

// hdrOutboxEnd marks the record that ends a transaction's rows in an
// outbox partition (no key, no value; the header's value names the task).
// The records between two such markers are a segment: what the S3 sink
// puts as one set of objects, named by the marker's offset.
const hdrOutboxEnd = "runnel-outbox-end"

// OutboxTopic names the outbox topic of a PostgreSQL or S3 sink.
func OutboxTopic(job, sink string) string { return job + "." + sink + ".outbox" }

// outbox is a PostgreSQL or S3 sink of a worker's job.
type outbox struct {
	sink  string
	topic string
	stage int
	pg    *pgsink.Sink
	s3    *s3sink.Sink
}

// newOutbox returns the outbox of sink s, or nil when it is neither a
// PostgreSQL nor an S3 sink.
func newOutbox(job string, s engine.SinkNode) *outbox {
	ob := &outbox{sink: s.ID, topic: OutboxTopic(job, s.ID)}
	switch x := s.Sink.(type) {
	case *pgsink.Sink:
		ob.pg = x
	case *s3sink.Sink:
		ob.s3 = x
	default:
		return nil
	}
	return ob
}

// outboxTopics lists the job's outbox topics in sink order.
func (w *Worker) outboxTopics() []string {
	var ts []string
	for _, s := range w.built.Graph.Sinks {
		if ob := w.outboxes[s.ID]; ob != nil {
			ts = append(ts, ob.topic)
		}
	}
	return ts
}

// outboxPartition is the outbox partition of task t's rows: a later
// stage's task writes to its own partition, so a window key's rows stay in
// one partition in order; a first-stage task to its partition modulo the
// outbox's.
func (w *Worker) outboxPartition(t *task) int32 {
	if t.id.partition < 0 {
		return 0
	}
	return t.id.partition % w.partitions
}

// toOutbox adds records for sink `to` to its outbox partition in the open
// transaction.
func (w *Worker) toOutbox(ctx context.Context, t *task, to string, recs []operators.Record) error {
	ob := w.outboxes[to]
	p := w.outboxPartition(t)
	w.cfg.Metrics.out(w.cfg.Spec.Name, t.stage.Index, len(recs))
	for _, r := range recs {
		val, err := encodeValue(r.Value)
		if err != nil {
			return fmt.Errorf("cluster: task %s: sink %s: %w", t.name, to, err)
		}
		w.produce(ctx, &kgo.Record{Topic: ob.topic, Partition: p, Key: []byte(r.Key), Value: val}, nil)
	}
	if len(recs) > 0 {
		if w.outboxDirty == nil {
			w.outboxDirty = map[tp]string{}
		}
		w.outboxDirty[tp{ob.topic, p}] = t.name
	}
	return nil
}

// sealOutboxes ends the open transaction's rows in each outbox partition
// it wrote to with a marker.
func (w *Worker) sealOutboxes(ctx context.Context) {
	ids := make([]tp, 0, len(w.outboxDirty))
	for id := range w.outboxDirty {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, compareTP)
	for _, id := range ids {
		w.produce(ctx, &kgo.Record{Topic: id.topic, Partition: id.partition,
			Headers: []kgo.RecordHeader{{Key: hdrOutboxEnd, Value: []byte(w.outboxDirty[id])}}}, nil)
	}
	clear(w.outboxDirty)
}

func compareTP(a, b tp) int {
	return cmp.Or(cmp.Compare(a.topic, b.topic), cmp.Compare(a.partition, b.partition))
}

// outboxTask names partition p of the outbox topic of ID id in its
// target's progress: outbox/ID/P, so the progress of a topic deleted and
// created again under its name (its offsets from 0 again: the job's
// Kafka cluster is new, or an operator re-created its topics) is not
// taken for the new topic's. Without an ID (a broker before Kafka 2.8)
// the name is outbox/P.
func outboxTask(id kadm.TopicID, p int32) string {
	if id == (kadm.TopicID{}) {
		return "outbox/" + strconv.Itoa(int(p))
	}
	return "outbox/" + kafkaID(id) + "/" + strconv.Itoa(int(p))
}
