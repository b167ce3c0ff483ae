package cluster

import (
	"context"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// A first-stage task's watermark and idleness, as the stages it feeds
// learn them: watermark records and idle records (with the group
// generation they hold in, see Watermarks) in every partition of their
// repartition topics.

// touch notes that records came, at read clock reading read (loop.go),
// and reports whether the task was idle.
func (t *task) touch(read time.Duration) (wasIdle bool) {
	t.last, t.lastRead = time.Now(), read
	wasIdle, t.idle = t.idle, false
	return wasIdle
}

// sourceWatermark writes a first-stage task's watermark to the stages it
// feeds when it advanced, or when the task was idle.
func (w *Worker) sourceWatermark(ctx context.Context, t *task, wasIdle bool) {
	wm := NoWatermark
	if t.maxEvent != NoWatermark {
		wm = t.maxEvent - t.bound
	}
	if wm > t.sent || (wasIdle && wm != NoWatermark) {
		t.sent = max(t.sent, wm)
		w.cfg.Metrics.taskWatermark(w.cfg.Spec.Name, t)
		w.sendWatermark(ctx, t, strconv.FormatInt(wm, 10))
	}
}

// sendWatermark writes value (a watermark or "idle") as task t's into
// every partition of the repartition topics t's stage feeds.
func (w *Worker) sendWatermark(ctx context.Context, t *task, value string) {
	w.sendWatermarkAs(ctx, t, t.name, value)
}

// sendWatermarkAs writes value as producer's into every partition of the
// repartition topics t's stage feeds.
func (w *Worker) sendWatermarkAs(ctx context.Context, t *task, producer, value string, more ...kgo.RecordHeader) {
	headers := append([]kgo.RecordHeader{{Key: hdrWatermark, Value: []byte(producer)}}, more...)
	for k := range t.keys {
		topic := w.plan.Repartition[k]
		for p := range w.partitions {
			w.produce(ctx, &kgo.Record{Topic: topic, Partition: p, Value: []byte(value), Headers: headers}, nil)
		}
	}
}

// sendIdle announces source task t idle in group generation gen
// (FinalGeneration: for good), to the stages it feeds.
func (w *Worker) sendIdle(ctx context.Context, t *task, gen int32) {
	t.idle, t.idleGen = true, gen
	if gen != FinalGeneration {
		w.idled = append(w.idled, t.id)
	}
	w.sendWatermarkAs(ctx, t, t.name, idleValue, kgo.RecordHeader{Key: hdrGeneration, Value: []byte(strconv.FormatInt(int64(gen), 10))})
}

// keepIdle announces source task t idle in group generation gen when its
// reads waited the idle timeout without a record (quiet is how long they
// did), and again when it is idle by a mark of an earlier generation,
// which no longer counts (a finished shard's mark counts in every one).
func (w *Worker) keepIdle(ctx context.Context, t *task, gen int32, quiet time.Duration) {
	switch {
	case t.idle:
		if t.idleGen != gen && t.idleGen != FinalGeneration {
			w.sendIdle(ctx, t, gen)
		}
	case quiet >= w.cfg.IdleTimeout:
		w.sendIdle(ctx, t, gen)
	}
}

// idle writes an idle record for each held shard whose reader has been
// free to read, with nothing read, for the idle timeout, once until it
// reads a record; the transaction then commits only if the shard's lease
// is still this worker's (fence.go). A reader handing a batch to the loop
// waits until the transaction holding it ends, however long the commit
// takes: that time does not count, or a shard held back by a slow commit
// would be taken for idle with records waiting, and the next stage's
// watermark would pass them by.
func (k *kinesisInput) idle(ctx context.Context) error {
	if k.w.cfg.IdleTimeout < 0 || len(k.w.feeds[0]) == 0 {
		return nil
	}
	gen := k.w.generation()
	if gen < 0 {
		return nil // not in the group yet
	}
	for s, epoch := range k.held() {
		t, err := k.task(ctx, s)
		if err != nil {
			return err
		}
		k.mu.Lock()
		handing, free := k.handing[s] > 0, k.released[s]
		k.mu.Unlock()
		if handing {
			continue // its records are on their way
		}
		if t.last.After(free) {
			free = t.last
		}
		n := len(k.w.idled)
		k.w.keepIdle(ctx, t, gen, time.Since(free))
		if len(k.w.idled) > n {
			k.idled[s] = epoch
		}
	}
	return nil
}

// generation returns the job's group generation as this worker knows it.
func (w *Worker) generation() int32 {
	_, gen := w.sess.Client().GroupMetadata()
	return gen
}
