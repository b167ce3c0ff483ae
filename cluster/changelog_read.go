package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// readChangelog hands apply every committed record of a changelog
// partition from offset from, oldest first, up to its last stable offset
// (read committed: records of aborted transactions are skipped; an open
// transaction's are beyond the last stable offset), which it returns.
func (w *Worker) readChangelog(ctx context.Context, topic string, partition int32, from int64, apply func(Change) error) (int64, error) {
	end, err := w.lastStable(ctx, topic, partition)
	if err != nil {
		return 0, err
	}
	return end, w.readChangelogTo(ctx, topic, partition, from, end, apply)
}

func (w *Worker) readChangelogTo(ctx context.Context, topic string, partition int32, from, end int64, apply func(Change) error) error {
	if end <= from {
		return nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(w.opts),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {partition: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		// The last offset below the stable one is a transaction's
		// marker: keeping control records shows that the end is reached.
		kgo.KeepControlRecords())...)
	if err != nil {
		return err
	}
	defer cl.Close()
	next := from // the offset after the last record read
	for {
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if pctx.Err() != nil && fs.NumRecords() == 0 {
			// Nothing more arrived below the end: what was read is all
			// there is if the tail was compacted away. A broker that
			// does not deliver records it holds would otherwise cut the
			// task's state short.
			if err := w.tailGone(ctx, topic, partition, next, end); err != nil {
				return fmt.Errorf("read %s/%d: nothing came after offset %d for 10s, below the last stable offset %d: %w", topic, partition, next, end, err)
			}
			w.cfg.Log.Info("changelog read stopped short of its last stable offset: the records after the last one read were compacted away",
				"topic", topic, "partition", partition, "next", next, "end", end)
			return nil
		}
		for _, fe := range fs.Errors() {
			if !errors.Is(fe.Err, context.DeadlineExceeded) {
				return fmt.Errorf("read %s/%d: %w", topic, partition, fe.Err)
			}
		}
		done := false
		var aerr error
		fs.EachRecord(func(r *kgo.Record) {
			next = max(next, r.Offset+1)
			if r.Offset >= end-1 {
				done = true
			}
			if aerr != nil || r.Offset >= end || r.Attrs.IsControl() {
				return
			}
			aerr = apply(Change{Key: r.Key, Value: r.Value})
		})
		if aerr != nil {
			return aerr
		}
		if done {
			return nil
		}
	}
}

// tailGone asks the leader of a changelog partition whether it holds a
// record from offset next on below offset end, after a read that reached
// next got nothing more for a while. It returns nil if it holds none and
// its last stable offset still reaches end: the log cleaner removed the
// tail (tombstones and transaction markers past their retention), so the
// read is complete. It returns an error if the partition holds such a
// record (the read did not get it), if its last stable offset fell below
// end (it lost records), or if the leader does not answer.
func (w *Worker) tailGone(ctx context.Context, topic string, partition int32, next, end int64) error {
	meta := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = kmsg.StringPtr(topic)
	meta.Topics = append(meta.Topics, mt)
	mresp, err := meta.RequestWith(ctx, w.adminCl)
	if err != nil {
		return fmt.Errorf("leader of the partition: %w", err)
	}
	leader, id := int32(-1), kadm.TopicID{}
	for _, t := range mresp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return fmt.Errorf("leader of the partition: %w", err)
		}
		id = t.TopicID
		for _, p := range t.Partitions {
			if p.Partition == partition {
				leader = p.Leader
			}
		}
	}
	if leader < 0 {
		return errors.New("the partition has no leader")
	}
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = 0 // answer at once
	req.MaxBytes = 1 << 20
	req.IsolationLevel = 1 // read committed
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = partition, next, 1<<20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, w.adminCl.Broker(int(leader)))
	if err != nil {
		return fmt.Errorf("fetch from its leader: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return fmt.Errorf("fetch from its leader: %w", err)
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if p.Partition == partition {
				return tailHeld(p, next, end)
			}
		}
	}
	return errors.New("fetch from its leader: the partition is not in the answer")
}

// tailHeld says why a fetch answer from offset next does not show a tail
// gone below end (see tailGone), or returns nil when it does. Batches
// without records (the log cleaner keeps a producer's last one) and the
// records of aborted transactions (a read committed read skips them) do
// not count.
func tailHeld(p kmsg.FetchResponseTopicPartition, next, end int64) error {
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return fmt.Errorf("fetch from its leader: %w", err)
	}
	if p.LastStableOffset < end {
		return fmt.Errorf("its last stable offset is now %d: the partition lost records", p.LastStableOffset)
	}
	aborted := map[int64]int64{} // producer → first offset of its aborted transaction
	for _, a := range p.AbortedTransactions {
		aborted[a.ProducerID] = a.FirstOffset
	}
	b := p.RecordBatches
	for len(b) >= 12 {
		first := int64(binary.BigEndian.Uint64(b))
		size := 12 + int(int32(binary.BigEndian.Uint32(b[8:])))
		if first >= end {
			break
		}
		if size > len(b) || size < 12 {
			// Cut at the answer's size limit: it starts below the end
			// and may hold records.
			return fmt.Errorf("the partition holds a batch at offset %d", first)
		}
		var batch kmsg.RecordBatch
		if err := batch.ReadFrom(b[:size]); err != nil {
			return fmt.Errorf("the batch at offset %d does not decode: %w", first, err)
		}
		b = b[size:]
		const transactional, control = 0x10, 0x20
		if at, ok := aborted[batch.ProducerID]; ok && batch.Attributes&transactional != 0 && batch.Attributes&control == 0 && first >= at {
			continue
		}
		offsets, err := batchOffsets(batch)
		if err != nil {
			return fmt.Errorf("the batch at offset %d does not decode: %w", first, err)
		}
		for _, o := range offsets {
			if o >= next && o < end {
				return fmt.Errorf("the partition holds a record at offset %d", o)
			}
		}
	}
	return nil
}

// batchOffsets returns the offsets of a record batch's records (a
// compacted batch keeps some of the offsets it spans).
func batchOffsets(batch kmsg.RecordBatch) ([]int64, error) {
	recs, err := kgo.DefaultDecompressor().Decompress(batch.Records, kgo.CompressionCodecType(batch.Attributes&0x07))
	if err != nil {
		return nil, err
	}
	out := make([]int64, 0, batch.NumRecords)
	for range batch.NumRecords {
		l, n := binary.Varint(recs)
		if n <= 0 || l < 2 || int64(len(recs)-n) < l {
			return nil, errors.New("a record is cut")
		}
		body := recs[n : n+int(l)]
		recs = recs[n+int(l):]
		_, m := binary.Varint(body[1:]) // after the attributes: the timestamp delta
		if m <= 0 {
			return nil, errors.New("a record is cut")
		}
		delta, k := binary.Varint(body[1+m:])
		if k <= 0 {
			return nil, errors.New("a record is cut")
		}
		out = append(out, batch.FirstOffset+delta)
	}
	return out, nil
}

// lastStable returns the last stable offset of a partition, retrying while
// the broker does not list it yet (a topic just created).
//
// kadm's ListCommittedOffsets takes the topic's partitions and their
// leaders from the admin client's metadata cache, which may be up to 5 s
// old, but the ListOffsets request names the topic and the leader answers
// for the topic of that name as it is then: a stale cache routes the
// request to the wrong broker or asks for a partition the topic no longer
// has, which fails (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION)
// and is retried here past the cache's age: the cache never makes it
// return a deleted topic's offset. The offset may be of another topic
// than the ID the caller asked for before, if the topic was created again
// in between:
// restore asks for the ID first (which also renews the cached metadata
// of the topic), and a task restored across such a change holds a topic
// ID that is not the topic's, which the check before each commit
// (changelogRecreated) finds before anything of it is committed.
func (w *Worker) lastStable(ctx context.Context, topic string, partition int32) (int64, error) {
	var err error
	for range 50 {
		var ends kadm.ListedOffsets
		if ends, err = w.admin.ListCommittedOffsets(ctx, topic); err == nil {
			o, ok := ends.Lookup(topic, partition)
			if ok && o.Err == nil {
				return o.Offset, nil
			}
			err = fmt.Errorf("%s/%d not listed (%v)", topic, partition, errOr(o.Err, fmt.Errorf("%d topics listed", len(ends))))
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("last stable offset: %w", err)
}
