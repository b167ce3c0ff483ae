package cluster

import (
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/operators"
)

// restore sets the task's store and watermarks to its committed state:
// from its local state (with a data directory) and the changelog records
// after it, or else from its whole changelog partition. Then it sets its
// operators' watermark without emitting what the committed owner emitted
// already.
func (w *Worker) restore(ctx context.Context, t *task) error {
	topic := w.plan.Changelog[t.stage.Keyed]
	n := 0
	began := time.Now()
	defer func() { w.cfg.Metrics.restored(w.cfg.Spec.Name, n, time.Since(began)) }()
	apply := func(c Change) error {
		n++
		if len(c.Key) == 1 && c.Key[0] == keyMeta {
			if c.Value == nil {
				return nil
			}
			return t.marks.Restore(c.Value)
		}
		if len(c.Key) > 0 && c.Key[0] == keyDetect && t.detect != nil {
			return t.detect.apply(c)
		}
		if t.store == nil {
			return fmt.Errorf("%w: %s holds window state but %s keeps none", ErrChangelog, topic, t.stage.Keyed)
		}
		return t.store.Apply(c)
	}
	// Errors of the changelog's broker are not the local state's: they
	// are asked for before it is looked at. The topic ID is asked for
	// without local state too: before each commit the worker checks that
	// the changelog topic still has it (changelogRecreated).
	var err error
	if t.logID, err = w.changelogID(ctx, topic); err != nil {
		return fmt.Errorf("cluster: task %s: restore from %s: %w", t.name, topic, err)
	}
	if old, ok := w.logIDs[topic]; ok && old != t.logID && w.sess != nil {
		// The topic was created again since this worker's producer
		// wrote to it (for a task that has moved away since): the
		// producer keeps the ID it saw and would fail the task's
		// records (UNKNOWN_TOPIC_ID). Purged, it looks the topic up
		// again. A task of the worker still on the old ID writes no
		// record into the new topic: the check before the commit
		// aborts its transaction.
		w.sess.Client().PurgeTopicsFromProducing(topic)
	}
	if w.logIDs == nil {
		w.logIDs = map[string]kadm.TopicID{}
	}
	w.logIDs[topic] = t.logID
	var end int64
	if w.local != nil {
		if end, err = w.lastStable(ctx, topic, t.id.partition); err != nil {
			return fmt.Errorf("cluster: task %s: restore from %s: %w", t.name, topic, err)
		}
	}
	from, local, err := w.restoreLocal(ctx, t, topic, end, apply)
	if err != nil {
		return fmt.Errorf("cluster: task %s: restore from %w: %w", t.name, errLocal, err)
	}
	var tail []Change
	end, err = w.readChangelog(ctx, topic, t.id.partition, from, func(c Change) error {
		if t.space != nil {
			tail = append(tail, c)
		}
		return apply(c)
	})
	if err != nil {
		return fmt.Errorf("cluster: task %s: restore from %s: %w", t.name, topic, err)
	}
	if t.space != nil && end > from {
		// The local state now goes up to the end read.
		if err := writeLocal(t.space, tail, end-1, t.logID, true); err != nil {
			return fmt.Errorf("cluster: task %s: %w: %w", t.name, errLocal, err)
		}
	}
	if wm := t.marks.Current(); wm != NoWatermark {
		var discard collect
		if err := t.onWatermark(ctx, wm, func(string, []operators.Record) error { return nil }, &discard); err != nil {
			return err
		}
		t.side = nil // emitted by the committed owner already
	}
	w.cfg.Log.Info("task restored", "task", t.name, "changelog", topic, "local", local, "from_offset", from,
		"tail", len(tail), "end", end, "watermark", t.marks.Current())
	return nil
}

// restoreLocal applies the task's local state, if the worker keeps one
// and it is a prefix of the changelog, or else its snapshot, if the
// worker has a snapshot store and there is one; it returns the changelog
// offset to read on from and how many records it applied. A local state
// or snapshot is a prefix of the changelog if it records the changelog
// topic's ID (t.logID) and an offset below the changelog's last stable
// offset end.
func (w *Worker) restoreLocal(ctx context.Context, t *task, topic string, end int64, apply func(Change) error) (int64, int, error) {
	if w.local == nil {
		return 0, 0, nil
	}
	sp, err := w.local.space(t.stage.Keyed, t.name)
	if err != nil {
		return 0, 0, err
	}
	t.space = sp
	upTo, ok, err := localOffset(sp)
	if err != nil {
		return 0, 0, err
	}
	if !ok && w.snap == nil {
		return 0, 0, nil
	}
	if ok {
		id, err := localTopicID(sp)
		if err != nil {
			return 0, 0, err
		}
		if why := notPrefix(id, t.logID, upTo, end); why != "" {
			if lostRecords(id, t.logID, upTo, end) {
				w.fail(FailChangelogLost, t.name, fmt.Sprintf("changelog %s/%d (topic ID %s) lost committed records: it ends at offset %d, its copy in the local state goes up to offset %d; the local state is discarded and the task restores from what the changelog holds, without the lost records' changes",
					topic, t.id.partition, kafkaID(id), end, upTo), nil)
			} else {
				w.cfg.Log.Warn("local state discarded: "+why+"; the task restores from the changelog",
					"task", t.name, "changelog", topic, "local_topic_id", kafkaID(id), "changelog_topic_id", kafkaID(t.logID),
					"local_offset", upTo, "changelog_end", end)
			}
			if err := clearLocal(sp); err != nil {
				return 0, 0, err
			}
			ok = false
		}
	}
	if ok {
		n, err := scanLocal(sp, apply)
		if err != nil {
			return 0, 0, err
		}
		return upTo + 1, n, nil
	}
	if w.snap == nil {
		return 0, 0, nil
	}
	h, changes, ok, err := w.snap.get(ctx, t.stage.Keyed, t.id.partition)
	if err != nil {
		// The changelog holds the whole state: restore from it.
		w.fail(FailSnapshotRestore, t.name, fmt.Sprintf("snapshot %s unusable: the task restores from its whole changelog", w.snap.key(t.stage.Keyed, t.id.partition)), err)
		return 0, 0, nil
	}
	if !ok {
		return 0, 0, nil
	}
	if why := notPrefix(h.id, t.logID, h.upTo, end); why != "" {
		if lostRecords(h.id, t.logID, h.upTo, end) {
			w.fail(FailChangelogLost, t.name, fmt.Sprintf("changelog %s/%d (topic ID %s) lost committed records: it ends at offset %d, its copy in snapshot %s goes up to offset %d; the snapshot is ignored and the task restores from what the changelog holds, without the lost records' changes",
				topic, t.id.partition, kafkaID(h.id), end, w.snap.key(t.stage.Keyed, t.id.partition), h.upTo), nil)
			return 0, 0, nil
		}
		w.cfg.Log.Warn("snapshot ignored: "+why+"; the task restores from the changelog",
			"task", t.name, "changelog", topic, "snapshot", w.snap.key(t.stage.Keyed, t.id.partition),
			"snapshot_topic_id", kafkaID(h.id), "changelog_topic_id", kafkaID(t.logID), "snapshot_offset", h.upTo, "changelog_end", end)
		return 0, 0, nil
	}
	for _, c := range changes {
		if err := apply(c); err != nil {
			return 0, 0, fmt.Errorf("snapshot: %w", err)
		}
	}
	if err := writeLocal(sp, changes, h.upTo, t.logID, false); err != nil {
		return 0, 0, err
	}
	w.cfg.Log.Info("task state read from its snapshot", "task", t.name, "records", len(changes), "offset", h.upTo)
	return h.upTo + 1, len(changes), nil
}

// notPrefix says why a copy of a task's changelog (its local state or
// snapshot), going up to offset upTo of the changelog topic with ID id,
// is not a prefix of the changelog as it is now (topic ID now, last
// stable offset end), or returns "" when it is. A topic deleted and
// created again under the same name (the job started over, topics
// re-created by hand, another Kafka cluster at the same address) has
// another ID, and its offsets say nothing of the old topic's records. A
// copy that records no ID (written before workers recorded it) is bound
// to no topic: it is used only where the broker gives no topic IDs
// either, so it is discarded once when IDs come in.
func notPrefix(id, now kadm.TopicID, upTo, end int64) string {
	switch {
	case id != now && id == (kadm.TopicID{}):
		return "it records no changelog topic ID (written before workers recorded it)"
	case id != now:
		return "it copies another topic of the same name (the changelog topic was deleted and created again, or the brokers are another cluster's)"
	case lostRecords(id, now, upTo, end):
		return "the changelog topic it copies no longer reaches its offset (the topic lost committed records)"
	case upTo >= end:
		return "the changelog does not reach its offset (the broker gives no topic IDs: the topic was deleted and created again)"
	}
	return ""
}

// lostRecords says whether a copy of a changelog that goes up to offset
// upTo of the topic with ID id is ahead of that very topic as it is now
// (same ID, last stable offset end). A copy is written from committed
// changelog records, so the topic lost records it had committed (an
// unclean leader election, a broker's lost disk): that is damage, not a
// deliberate discard. Without topic IDs (all zero) it cannot be told from
// a topic deleted and created again, which notPrefix takes it for.
func lostRecords(id, now kadm.TopicID, upTo, end int64) bool {
	return id == now && id != (kadm.TopicID{}) && upTo >= end
}

// kafkaID is a topic ID as Kafka's tools show it (kafka-topics.sh
// --describe): URL-safe base64 without padding.
func kafkaID(id kadm.TopicID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// changelogID returns the topic ID of a changelog topic (all zero from a
// broker without topic IDs, before Kafka 2.8), retrying while the broker
// does not list the topic yet (a topic just created).
func (w *Worker) changelogID(ctx context.Context, topic string) (kadm.TopicID, error) {
	var err error
	for range 50 {
		var ids map[string]kadm.TopicID
		if ids, err = w.topicIDs(ctx, topic); err == nil {
			return ids[topic], nil
		}
		select {
		case <-ctx.Done():
			return kadm.TopicID{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return kadm.TopicID{}, fmt.Errorf("topic ID of %s: %w", topic, err)
}

// topicIDs asks the broker for the IDs of topics, once (see
// describeTopics).
func (w *Worker) topicIDs(ctx context.Context, topics ...string) (map[string]kadm.TopicID, error) {
	ts, err := w.describeTopics(ctx, topics...)
	if err != nil {
		return nil, err
	}
	ids := make(map[string]kadm.TopicID, len(ts))
	for name, t := range ts {
		ids[name] = t.TopicID
	}
	return ids, nil
}

// describeTopics asks the broker for the metadata of topics, once; a
// topic it does not list, or lists with an error, is an error. It asks
// the broker itself: kadm's ListTopics may answer from metadata some
// seconds old, from before a topic was created, or deleted and created
// again. (The answer also renews the admin client's metadata of those
// topics, which kadm's ListCommittedOffsets routes its request by: see
// lastStable.)
func (w *Worker) describeTopics(ctx context.Context, topics ...string) (map[string]kmsg.MetadataResponseTopic, error) {
	req := kmsg.NewPtrMetadataRequest()
	for _, topic := range topics {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, w.adminCl)
	if err != nil {
		return nil, err
	}
	out := make(map[string]kmsg.MetadataResponseTopic, len(topics))
	for _, t := range resp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return nil, fmt.Errorf("%s: %w", *t.Topic, err)
		}
		out[*t.Topic] = t
	}
	for _, topic := range topics {
		if _, ok := out[topic]; !ok {
			return nil, fmt.Errorf("%s not listed (%d topics listed)", topic, len(resp.Topics))
		}
	}
	return out, nil
}

// changelogRecreated returns the changelog topics of the worker's tasks
// that were deleted and created again since a task restored from them:
// the broker gives the topic another ID than the task's (t.logID). Such a
// task holds the old topic's state, which the open transaction writes
// into the new topic (a broker before Kafka 4.1 takes records by topic
// name; a later one fails them, UNKNOWN_TOPIC_ID), merged with records
// the old topic never saw, and binds its local state and snapshots to the
// old topic, which every restore then ignores. The loop aborts the
// transaction instead, and the tasks restore from the new topic, as they
// would on any other worker. A discard of the old topic's state is
// deliberate, not damage: a WARN says why, with both topic IDs. A broker
// that does not answer leaves the check to the next commit.
func (w *Worker) changelogRecreated(ctx context.Context) []string {
	var topics []string
	for _, t := range w.tasks {
		if t.stage.Index > 0 && !slices.Contains(topics, w.plan.Changelog[t.stage.Keyed]) {
			topics = append(topics, w.plan.Changelog[t.stage.Keyed])
		}
	}
	if len(topics) == 0 {
		return nil
	}
	// Bounded, so that an unreachable broker does not keep the
	// transaction open toward its timeout.
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	ids, err := w.topicIDs(cctx, topics...)
	cancel()
	if err != nil {
		w.cfg.Log.Warn("changelog topic IDs not checked before the commit (the next commit checks them)", "worker", w.cfg.ID, "err", err)
		return nil
	}
	var recreated []string
	for _, t := range w.tasks {
		if t.stage.Index == 0 {
			continue
		}
		topic := w.plan.Changelog[t.stage.Keyed]
		if now := ids[topic]; now != t.logID {
			w.cfg.Log.Warn("changelog topic deleted and created again under the task: the transaction aborts and the task restores from the new topic, dropping the state it holds of the old one",
				"task", t.name, "changelog", topic, "task_topic_id", kafkaID(t.logID), "changelog_topic_id", kafkaID(now))
			if !slices.Contains(recreated, topic) {
				recreated = append(recreated, topic)
			}
		}
	}
	return recreated
}
