package kafka

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/sources"
)

// Offsets are positions in one incarnation of a topic: a topic deleted and
// created again under the same name numbers its records from 0 again. So
// the source binds what it reads to the topic's ID (Metadata v10+; a
// broker without topic IDs reports all zeros, and nothing is bound): each
// reader records the ID of its topic when it opens, a checkpoint records
// Bindings beside its offsets, and CheckPositions compares them before a
// restore. It also checks each offset against the partition's log as it
// is now: records deleted by retention while the job was down are
// skipped and counted, an offset past the log's end is not used.

// Bindings returns the IDs of the topics the source's readers read in this
// run (and those a restore found unchanged), by topic name.
func (s *Source) Bindings() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]string, len(s.mu.ids))
	for t, id := range s.mu.ids {
		out[t] = id.String()
	}
	return out
}

// bindTopic records the ID of topic for a reader about to read it, and
// returns it; a topic that changed ID since another reader of this run
// recorded it is an error.
func (s *Source) bindTopic(ctx context.Context, adm *kadm.Client, topic string) (kadm.TopicID, error) {
	details, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return kadm.TopicID{}, fmt.Errorf("kafka source: describe topic %s: %w", topic, err)
	}
	d, ok := details[topic]
	if !ok {
		return kadm.TopicID{}, fmt.Errorf("kafka source: topic %s: the broker does not describe it", topic)
	}
	if d.Err != nil {
		return kadm.TopicID{}, fmt.Errorf("kafka source: topic %s: %w", topic, d.Err)
	}
	return d.ID, s.sameTopic(topic, d.ID)
}

// sameTopic records id as topic's, or says that the topic was created
// again if the run already read another incarnation of it.
func (s *Source) sameTopic(topic string, id kadm.TopicID) error {
	if id == (kadm.TopicID{}) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	was, ok := s.mu.ids[topic]
	switch {
	case !ok:
		if s.mu.ids == nil {
			s.mu.ids = map[string]kadm.TopicID{}
		}
		s.mu.ids[topic] = id
	case was != id:
		return fmt.Errorf("kafka source: topic %s was deleted and created again while the job ran (topic ID %s, now %s): "+
			"the job's offsets are of the old topic; resume the job and it reads the new topic from its first record", topic, was, id)
	}
	return nil
}

// reads reports whether topic is one of the source's.
func (s *Source) reads(topic string) bool {
	if s.re != nil {
		return s.re.MatchString(topic)
	}
	return slices.Contains(s.cfg.Topics, topic)
}

// CheckPositions checks a checkpoint's offsets against the topics as they
// are now. A topic whose ID is not the bound one was deleted and created
// again: its partitions' offsets are dropped, so they are read from their
// first record, as partitions the checkpoint does not know are (all of
// the new topic is new to the job). Of a topic that is the same (or not
// bound: a checkpoint written before bindings, or a broker without topic
// IDs), an offset before the partition's log start resumes at the log
// start (the records in between were deleted by retention: lost, and the
// problem says how many), and an offset past the log's end is dropped
// (the log was truncated, or the topic created again where IDs cannot
// tell).
func (s *Source) CheckPositions(ctx context.Context, positions, bindings map[string]string) ([]sources.PositionProblem, error) {
	offsets := map[string]map[int32]int64{}
	for shard, pos := range positions {
		topic, part, err := parseShardID(shard)
		if err != nil || !s.reads(topic) {
			continue
		}
		off, err := strconv.ParseInt(pos, 10, 64)
		if err != nil || off < -1 {
			continue // Open says so
		}
		if offsets[topic] == nil {
			offsets[topic] = map[int32]int64{}
		}
		offsets[topic][part] = off
	}
	if len(offsets) == 0 {
		return nil, nil
	}
	cl, err := kgo.NewClient(s.opts...)
	if err != nil {
		return nil, fmt.Errorf("kafka source: %w", err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	topics := slices.Sorted(maps.Keys(offsets))
	details, err := adm.ListTopics(ctx, topics...)
	if err != nil {
		return nil, fmt.Errorf("kafka source: check the checkpoint's offsets: list topics: %w", err)
	}
	var out []sources.PositionProblem
	var same []string
	for _, topic := range topics {
		d, ok := details[topic]
		if s.re != nil && (!ok || errors.Is(d.Err, kerr.UnknownTopicOrPartition)) {
			p := sources.PositionProblem{Resume: map[string]string{},
				Problem: fmt.Sprintf("topic %s no longer exists (it was deleted since): the job no longer reads it; "+
					"records written to it after the checkpoint's offsets (%s) that the job had not read are lost", topic, offsetList(topic, offsets[topic]))}
			for part := range offsets[topic] {
				p.Resume[ShardID(topic, part)] = ""
			}
			out = append(out, p)
			continue
		}
		if !ok || d.Err != nil {
			continue // not read now: Shards says why
		}
		was := bindings[topic]
		if was != "" && d.ID != (kadm.TopicID{}) && was != d.ID.String() {
			p := sources.PositionProblem{Resume: map[string]string{},
				Problem: fmt.Sprintf("topic %s was deleted and created again since, or is another cluster's (topic ID %s, now %s): "+
					"the job reads it from its first record, not from the checkpoint's offsets", topic, was, d.ID)}
			for part := range offsets[topic] {
				p.Resume[ShardID(topic, part)] = ""
			}
			out = append(out, p)
			continue
		}
		if was != "" {
			if err := s.sameTopic(topic, d.ID); err != nil {
				return nil, err
			}
		}
		same = append(same, topic)
	}
	if len(same) == 0 {
		return out, nil
	}
	starts, err := adm.ListStartOffsets(ctx, same...)
	if err != nil {
		return nil, fmt.Errorf("kafka source: check the checkpoint's offsets: list start offsets: %w", err)
	}
	ends, err := adm.ListEndOffsets(ctx, same...)
	if err != nil {
		return nil, fmt.Errorf("kafka source: check the checkpoint's offsets: list end offsets: %w", err)
	}
	for _, topic := range same {
		for _, part := range slices.Sorted(maps.Keys(offsets[topic])) {
			off, shard := offsets[topic][part], ShardID(topic, part)
			first, ok1 := starts.Lookup(topic, part)
			end, ok2 := ends.Lookup(topic, part)
			if !ok1 || !ok2 || first.Err != nil || end.Err != nil {
				continue // a partition gone: it is not read
			}
			switch next := off + 1; {
			case next < first.Offset:
				out = append(out, sources.PositionProblem{Resume: map[string]string{shard: strconv.FormatInt(first.Offset-1, 10)},
					Problem: fmt.Sprintf("partition %s: retention deleted %d records after the checkpoint's offset %d before the job read them "+
						"(the partition now starts at offset %d): they are lost; the job reads on from offset %d",
						shard, first.Offset-next, off, first.Offset, first.Offset)})
			case next > end.Offset:
				out = append(out, sources.PositionProblem{Resume: map[string]string{shard: ""},
					Problem: fmt.Sprintf("partition %s: the checkpoint's offset %d is past the partition's end (offset %d): "+
						"its log was truncated, or the topic was deleted and created again on a broker without topic IDs; "+
						"the job reads the partition from its first record", shard, off, end.Offset)})
			}
		}
	}
	return out, nil
}

// offsetList lists a topic's checkpointed offsets, "T/P after O", sorted
// by partition.
func offsetList(topic string, offsets map[int32]int64) string {
	var b strings.Builder
	for i, part := range slices.Sorted(maps.Keys(offsets)) {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s after %d", ShardID(topic, part), offsets[part])
	}
	return b.String()
}
