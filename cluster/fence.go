package cluster

import (
	"context"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-dev/runnel/client/consumer"
)

// A transaction is fenced by its input offsets: the broker refuses a
// transactional offset commit from a member of a generation the group has
// left behind (KIP-447), and the session then aborts the transaction. A
// transaction that read nothing has no offsets to commit and commits
// whatever the group says, so a zombie (a worker the group removed,
// silent past its session timeout, that has not heard of it yet) would
// commit what it writes without reading: idle marks. Such a mark carries
// the zombie's generation, which tasks in later generations ignore, but a
// task on a worker still reading in that generation (a cooperative
// rebalance lets members read on while it runs) would count the partition
// idle although its new owner has records to read, and fire windows
// before them. So a transaction that announces source partitions idle
// commits their offsets again, as the group last committed them, and is
// fenced like any other.
//
// A Kinesis shard belongs to whoever holds its lease, which the Kafka
// group does not follow: a worker that was silent past the lease
// duration may still be in the group and its generation while another
// worker took its shard over and reads it. Its idle mark would count in
// that generation. So a transaction that announces shards idle commits
// inside the lease table's fenced commit, as one with shard positions
// does, with each idle shard's lease at the epoch the worker held it by
// when it announced it: a lease taken over since refuses the commit and
// the transaction aborts.

// fenceIdle returns ctx for ending the open transaction: when it
// announced Kafka source partitions idle, the transaction's offset commit
// also carries their committed offsets (or, when the group has none of
// theirs yet, those of another partition of this worker).
func (w *Worker) fenceIdle(ctx context.Context) context.Context {
	if w.kin != nil || len(w.idled) == 0 {
		return ctx // a Kinesis source's transactions are fenced by its leases (kinesisInput.fenceIdle)
	}
	committed := w.sess.Client().CommittedOffsets()
	offset := func(id tp) (kgo.EpochOffset, bool) {
		eo, ok := committed[id.topic][id.partition]
		return eo, ok && eo.Offset >= 0
	}
	again := map[tp]kgo.EpochOffset{}
	for _, id := range w.idled {
		if eo, ok := offset(id); ok {
			again[id] = eo
		}
	}
	if len(again) == 0 {
		w.mu.Lock()
		for id := range w.mu.assigned {
			if eo, ok := offset(id); ok {
				again[id] = eo
				break
			}
		}
		w.mu.Unlock()
	}
	if len(again) == 0 {
		return ctx // the group committed nothing yet: nothing to fence with
	}
	return kgo.PreTxnCommitFnContext(ctx, func(req *kmsg.TxnOffsetCommitRequest) error {
		for i := range req.Topics {
			for _, p := range req.Topics[i].Partitions {
				delete(again, tp{req.Topics[i].Topic, p.Partition}) // read in this transaction: committed anyway
			}
		}
		for id, eo := range again {
			rp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
			rp.Partition, rp.Offset, rp.LeaderEpoch, rp.Metadata = id.partition, eo.Offset, eo.Epoch, &req.MemberID
			i := 0
			for i < len(req.Topics) && req.Topics[i].Topic != id.topic {
				i++
			}
			if i == len(req.Topics) {
				rt := kmsg.NewTxnOffsetCommitRequestTopic()
				rt.Topic = id.topic
				req.Topics = append(req.Topics, rt)
			}
			req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
		}
		return nil
	})
}

// fenceIdle adds to the fenced commit's checkpoints cps the leases of the
// shards announced idle in the open transaction that it has no position
// of: checked at the epoch each was announced by, their checkpoints left
// as they are.
func (k *kinesisInput) fenceIdle(cps []consumer.FencedCheckpoint) []consumer.FencedCheckpoint {
	for shard, epoch := range k.idled {
		if _, ok := k.pending[shard]; !ok {
			cps = append(cps, consumer.FencedCheckpoint{Shard: shard, Epoch: epoch, LeaseOnly: true})
		}
	}
	return cps
}
