package cluster

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/sinks"
)

// The delivery loop of a worker's outboxes (outbox.go). Each outbox
// partition's rows reach their target exactly once, whoever delivers
// them and however often a delivery is cut short, because the target
// itself records how far the partition was delivered:
//
//   - PostgreSQL: the rows of offsets [from, to) merge into the table in
//     one transaction that moves the partition's progress row from from to
//     to (sinks/postgres CommitAt); a replay, or a second deliverer, finds
//     the row elsewhere and writes nothing, and goes on from there.
//   - S3: each segment (the rows before a marker) is put as objects named
//     by the marker's offset (sinks/s3 PutAt): a replay replaces them with
//     the same rows. A position object says where to start again; it may
//     lag, which costs replays only.
//
// A worker delivers the outbox partitions whose tasks the group gave it
// (for a first-stage sink, the source partitions mapped to them), so the
// delivery moves with the tasks; during a move two workers may deliver
// one partition for a moment, which the targets' records make harmless.

// deliverBatch bounds the rows of one PostgreSQL transaction.
const deliverBatch = 5000

// deliverRetry is how long a partition whose delivery failed waits.
const deliverRetry = time.Second

// outPart is one outbox partition this worker delivers.
type outPart struct {
	ob *outbox
	id tp
	// task names the partition in its target's progress (outboxTask);
	// topicID is the outbox topic's ID (zero from a broker without IDs).
	task    string
	topicID kadm.TopicID
	pos     int64 // the target's position: the next offset to deliver
	// next is the offset after the last record taken from the fetches.
	next int64
	recs []*kgo.Record
}

// delivery is the state of the delivery loop.
type delivery struct {
	w      *Worker
	cl     *kgo.Client
	parts  map[tp]*outPart
	broken bool // the client must be made again (a delivery failed)
	synced time.Time
}

// startDelivery runs the delivery loop until the returned function is
// called (it waits for the loop to end).
func (w *Worker) startDelivery(ctx context.Context) (stop func()) {
	if len(w.outboxes) == 0 {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		d := &delivery{w: w, parts: map[tp]*outPart{}}
		d.run(ctx)
		if d.cl != nil {
			d.cl.Close()
		}
	}()
	return func() {
		cancel()
		<-done
	}
}

// wanted lists the outbox partitions this worker delivers now.
func (w *Worker) wantedOutboxes() map[tp]*outbox {
	w.mu.Lock()
	assigned := slices.Collect(maps.Keys(w.mu.assigned))
	w.mu.Unlock()
	want := map[tp]*outbox{}
	for _, ob := range w.outboxes {
		stage := w.plan.Stages[ob.stage]
		for _, a := range assigned {
			switch {
			case stage.Index > 0 && a.topic == stage.Input:
				want[tp{ob.topic, a.partition}] = ob
			case stage.Index == 0 && w.src != nil && w.isSource(a.topic):
				want[tp{ob.topic, a.partition % w.partitions}] = ob
			}
		}
		if stage.Index == 0 && w.kin != nil {
			// Shards have no partitions: every worker delivers (the
			// targets' records keep that exactly once).
			for p := range w.partitions {
				want[tp{ob.topic, p}] = ob
			}
		}
	}
	return want
}

func (d *delivery) run(ctx context.Context) {
	for ctx.Err() == nil {
		if err := d.sync(ctx); err != nil {
			if ctx.Err() == nil {
				d.w.fail(FailOutboxDelivery, "", "outbox delivery: cannot start reading the outboxes; retrying", err)
				d.broken = true
				sleepCtx(ctx, deliverRetry)
			}
			continue
		}
		if len(d.parts) == 0 {
			sleepCtx(ctx, d.w.cfg.CommitInterval)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, d.w.cfg.CommitInterval)
		fs := d.cl.PollRecords(pctx, 4*deliverBatch)
		cancel()
		for _, fe := range fs.Errors() {
			if ctx.Err() == nil && pctx.Err() == nil {
				d.w.fail(FailOutboxDelivery, tp{fe.Topic, fe.Partition}.String(), "outbox delivery: fetch failed; fetching again", fe.Err)
			}
		}
		fs.EachPartition(func(p kgo.FetchTopicPartition) {
			part := d.parts[tp{p.Topic, p.Partition}]
			if part == nil {
				return
			}
			for _, r := range p.Records {
				if r.Offset >= part.next {
					part.recs = append(part.recs, r)
					part.next = r.Offset + 1
				}
			}
		})
		for _, id := range slices.SortedFunc(maps.Keys(d.parts), compareTP) {
			part := d.parts[id]
			if len(part.recs) == 0 {
				continue
			}
			if err := d.deliver(ctx, part); err != nil {
				if ctx.Err() != nil {
					return
				}
				d.w.fail(FailOutboxDelivery, part.id.String(),
					fmt.Sprintf("outbox delivery to sink %s failed at position %d; the partition is read again from its target's position", part.ob.sink, part.pos), err)
				d.broken = true
			}
		}
		if d.broken {
			sleepCtx(ctx, deliverRetry)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// sync makes the outbox client consume the partitions this worker
// delivers, each from its target's position. The client is made again
// when the set changes or a delivery failed, so no record fetched before
// that can be taken for one after it.
func (d *delivery) sync(ctx context.Context) error {
	if !d.broken && d.cl != nil && time.Since(d.synced) < d.w.cfg.CommitInterval {
		return nil
	}
	want := d.w.wantedOutboxes()
	d.synced = time.Now()
	if !d.broken && d.cl != nil && maps.EqualFunc(want, d.parts, func(a *outbox, b *outPart) bool { return a == b.ob }) {
		return nil
	}
	if d.cl != nil {
		d.cl.Close()
		d.cl = nil
	}
	clear(d.parts)
	var names []string
	for id := range want {
		names = append(names, id.topic)
	}
	var topicIDs map[string]kadm.TopicID
	if len(names) > 0 {
		var err error
		if topicIDs, err = d.w.topicIDs(ctx, slices.Compact(slices.Sorted(slices.Values(names)))...); err != nil {
			return fmt.Errorf("outbox topic IDs: %w", err)
		}
	}
	offsets := map[string]map[int32]kgo.Offset{}
	for id, ob := range want {
		task := outboxTask(topicIDs[id.topic], id.partition)
		pos, err := ob.position(ctx, task, id.partition)
		if err != nil {
			return err
		}
		d.parts[id] = &outPart{ob: ob, id: id, task: task, topicID: topicIDs[id.topic], pos: pos, next: pos}
		if offsets[id.topic] == nil {
			offsets[id.topic] = map[int32]kgo.Offset{}
		}
		offsets[id.topic][id.partition] = kgo.NewOffset().At(pos)
	}
	if len(offsets) == 0 {
		d.broken = false
		return nil
	}
	cl, err := kgo.NewClient(append(slices.Clone(d.w.opts),
		kgo.ClientID(TransactionalID(d.w.cfg.Spec.Name, d.w.cfg.ID)+".deliver"),
		kgo.ConsumePartitions(offsets),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.FetchMaxWait(d.w.cfg.CommitInterval))...)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	d.cl = cl
	d.broken = false
	d.checkRetention(ctx, slices.Collect(maps.Keys(offsets)))
	return nil
}

// checkRetention says, in an ERROR line, when an outbox partition's
// oldest record is past its target's position: Kafka's retention deleted
// rows that were never delivered (the reader goes on from the oldest).
func (d *delivery) checkRetention(ctx context.Context, topics []string) {
	starts, err := kadm.NewClient(d.cl).ListStartOffsets(ctx, topics...)
	if err != nil {
		d.w.cfg.Log.Error("outbox delivery: cannot check the outboxes' oldest offsets", "err", err)
		return
	}
	for id, part := range d.parts {
		if o, ok := starts.Lookup(id.topic, id.partition); ok && o.Err == nil && o.Offset > part.pos {
			d.w.fail(FailOutboxLost, id.String(), fmt.Sprintf("outbox rows of sink %s lost: the topic's retention deleted them before they were delivered", part.ob.sink),
				fmt.Errorf("delivered up to offset %d, oldest offset now %d", part.pos, o.Offset))
		}
	}
}

// position is the outbox partition's next offset to deliver, by its
// target's record of task. A PostgreSQL progress row of the partition
// written before tasks named the topic's ID (an S3 position likewise) is
// taken over by task first.
func (ob *outbox) position(ctx context.Context, task string, p int32) (int64, error) {
	legacy := outboxTask(kadm.TopicID{}, p)
	if ob.pg != nil {
		if legacy != task {
			if err := ob.pg.MoveProgress(ctx, legacy, task); err != nil {
				return 0, err
			}
		}
		return ob.pg.Position(ctx, task)
	}
	if legacy != task {
		if err := ob.s3.MovePosition(ctx, legacy, task); err != nil {
			return 0, err
		}
	}
	return ob.s3.Position(ctx, task)
}

// deliver writes the partition's fetched records to the target.
func (d *delivery) deliver(ctx context.Context, part *outPart) error {
	if part.ob.pg != nil {
		return d.deliverPG(ctx, part)
	}
	return d.deliverS3(ctx, part)
}

// deliverPG merges the fetched records into the table, in transactions
// of at most deliverBatch rows, each moving the progress row.
func (d *delivery) deliverPG(ctx context.Context, part *outPart) error {
	for len(part.recs) > 0 {
		n, vals := 0, make([]any, 0, min(len(part.recs), deliverBatch))
		for ; n < len(part.recs) && len(vals) < deliverBatch; n++ {
			r := part.recs[n]
			if isOutboxMarker(r) {
				continue
			}
			v, err := decodeRow(r)
			if err != nil {
				return err
			}
			vals = append(vals, v)
		}
		if len(vals) == 0 {
			// Markers only: nothing to write; the position stays.
			part.recs = part.recs[n:]
			continue
		}
		to := part.recs[n-1].Offset + 1
		done, err := part.ob.pg.CommitAt(ctx, part.task, part.pos, to, vals)
		if err != nil {
			return err
		}
		switch {
		case done == to:
			d.w.cfg.Log.Debug("outbox delivered", "sink", part.ob.sink, "partition", part.id.partition, "from", part.pos, "to", to, "rows", len(vals))
			part.pos = to
			part.recs = part.recs[n:]
		case done > part.pos:
			// Delivered already (by this partition's previous deliverer,
			// or one delivering it beside this one): skip what it did.
			d.w.cfg.Log.Info("outbox rows delivered already: skipped", "sink", part.ob.sink, "partition", part.id.partition,
				"from", part.pos, "delivered_to", done)
			part.pos = done
			part.recs = slices.DeleteFunc(part.recs, func(r *kgo.Record) bool { return r.Offset < done })
		default:
			return fmt.Errorf("sink %s: progress of outbox partition %d is %d, behind the %d this worker read it at: was it reset?",
				part.ob.sink, part.id.partition, done, part.pos)
		}
	}
	return nil
}

// deliverS3 puts every complete segment of the fetched records, then
// stores the position after the last.
func (d *delivery) deliverS3(ctx context.Context, part *outPart) error {
	moved := false
	for {
		i := slices.IndexFunc(part.recs, isOutboxMarker)
		if i < 0 {
			break
		}
		marker := part.recs[i]
		rows := make([]sinks.Row, 0, i)
		for _, r := range part.recs[:i] {
			v, err := decodeRow(r)
			if err != nil {
				return err
			}
			rows = append(rows, sinks.Row{Key: string(r.Key), Value: v})
		}
		if len(rows) > 0 {
			id := fmt.Sprintf("p%d-%012d", part.id.partition, marker.Offset)
			if part.topicID != (kadm.TopicID{}) {
				// Apart from the segments of an earlier topic of the
				// name, whose offsets the new one counts again.
				id = fmt.Sprintf("p%d-%s-%012d", part.id.partition, kafkaID(part.topicID), marker.Offset)
			}
			if err := part.ob.s3.PutAt(ctx, id, rows, marker.Timestamp); err != nil {
				return err
			}
		}
		part.pos = marker.Offset + 1
		part.recs = part.recs[i+1:]
		moved = true
	}
	if !moved {
		return nil
	}
	return part.ob.s3.SetPosition(ctx, part.task, part.pos)
}

func isOutboxMarker(r *kgo.Record) bool {
	_, ok := header(r, hdrOutboxEnd)
	return ok
}

func decodeRow(r *kgo.Record) (any, error) {
	var v any
	if err := json.Unmarshal(r.Value, &v); err != nil {
		return nil, fmt.Errorf("%s/%d offset %d: %w", r.Topic, r.Partition, r.Offset, err)
	}
	return v, nil
}
