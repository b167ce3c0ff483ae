package kafka

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A topic deleted under a running job. The reader's client consumes its
// partition directly and never adopts another incarnation of the topic:
// once the topic is deleted its fetches fail with UNKNOWN_TOPIC_ID (a
// fetch by ID, Kafka 3.1+) or UNKNOWN_TOPIC_OR_PARTITION (by name), for
// good. The client would retry those quietly forever, so the reader keeps
// them (kgo.KeepRetryableFetchErrors) and, on one, asks the broker what
// became of the topic. Right after a topic is created, or while a
// partition moves, the same errors come and go: a topic that is still
// there with its ID and the partition is read on.

// ErrTopicGone marks a read that failed because the partition's topic was
// deleted, or deleted and created again, while the reader read it.
var ErrTopicGone = errors.New("topic gone")

// goneChecks is how many checks in a row must find the topic gone before
// the reader says so: a broker whose metadata lags behind a topic's
// creation may not describe it yet.
const goneChecks = 3

// checkTopic is called when a fetch said the reader's topic or partition
// is unknown. It returns an error wrapping ErrTopicGone when goneChecks
// checks in a row found the topic deleted (and maybe created again),
// saying what the job lost, and nil when the topic is as the reader
// opened it (the client fetches again), the broker could not tell, or the
// checks have yet to agree.
func (r *reader) checkTopic(ctx context.Context) error {
	err := r.describeTopic(ctx)
	if err == nil {
		r.goneChecks = 0
		return nil
	}
	if r.goneChecks++; r.goneChecks < goneChecks {
		return nil
	}
	return err
}

// describeTopic asks the broker what became of the reader's topic: an
// error wrapping ErrTopicGone if it is gone, nil if it is there or the
// broker could not tell.
func (r *reader) describeTopic(ctx context.Context) error {
	// A metadata request of its own: kadm's answer from the client's
	// cache (up to MetadataMinAge old) would repeat one broker's view.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(r.topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, r.cl)
	if err != nil {
		return nil // the broker is out of reach: the client retries
	}
	i := slices.IndexFunc(resp.Topics, func(t kmsg.MetadataResponseTopic) bool { return t.Topic != nil && *t.Topic == r.topic })
	var terr error
	if i >= 0 {
		terr = kerr.ErrorForCode(resp.Topics[i].ErrorCode)
	}
	if i < 0 || errors.Is(terr, kerr.UnknownTopicOrPartition) {
		then := "it reads on without the topic"
		if r.src.re == nil {
			then = "it fails to start until the topic exists again"
		}
		return r.gone("deleted", then)
	}
	t := resp.Topics[i]
	id := kadm.TopicID(t.TopicID)
	switch {
	case terr != nil:
		return nil
	case r.id != (kadm.TopicID{}) && id != (kadm.TopicID{}) && id != r.id:
		return r.gone(fmt.Sprintf("deleted and created again (topic ID %s, now %s)", r.id, id),
			"it reads the new topic from its first record")
	case !slices.ContainsFunc(t.Partitions, func(p kmsg.MetadataResponseTopicPartition) bool { return p.Partition == r.part }):
		return r.gone(fmt.Sprintf("deleted and created again with %d partitions", len(t.Partitions)),
			"it reads the new topic's partitions from their first record")
	case r.id != (kadm.TopicID{}):
		return nil // the same topic: the error passes
	}
	// A broker without topic IDs: a topic created again can be told only
	// by a log that ends before the reader's offset.
	ends, err := kadm.NewClient(r.cl).ListEndOffsets(ctx, r.topic)
	if err != nil {
		return nil
	}
	if end, ok := ends.Lookup(r.topic, r.part); ok && end.Err == nil && end.Offset < r.next {
		return fmt.Errorf("kafka source %s: %w: the partition's log ends at offset %d, before offset %d the job reads next: "+
			"the topic was deleted and created again (a broker without topic IDs cannot tell it otherwise) or its log truncated; "+
			"resume the job: its restore reads the partition from its first record", r.shard, ErrTopicGone, end.Offset, r.next)
	}
	return nil
}

// gone says that the reader's topic was deleted (what) while the job
// read it, what that cost, and what a resume does (then).
func (r *reader) gone(what, then string) error {
	lost := "the job had read all the records its fetches reported; any written after them are lost"
	if n := r.end - r.next; n > 0 {
		lost = fmt.Sprintf("at least %d records from there on (offsets %d to %d) that the job had not read are lost", n, r.next, r.end-1)
	}
	return fmt.Errorf("kafka source %s: %w: topic %s was %s while the job read it, before offset %d; %s; "+
		"resume the job: %s", r.shard, ErrTopicGone, r.topic, what, r.next, lost, then)
}
