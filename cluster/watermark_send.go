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

// touch notes that records came, and reports whether the task was idle.
func (t *task) touch() (wasIdle bool) {
	t.last = time.Now()
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

// keepIdle announces source task t idle in group generation gen when it
// has had no record since quiet for the idle timeout, and again when it
// is idle by a mark of an earlier generation, which no longer counts (a
// finished shard's mark counts in every one).
func (w *Worker) keepIdle(ctx context.Context, t *task, gen int32, quiet time.Time) {
	switch {
	case t.idle:
		if t.idleGen != gen && t.idleGen != FinalGeneration {
			w.sendIdle(ctx, t, gen)
		}
	case time.Since(quiet) >= w.cfg.IdleTimeout:
		w.sendIdle(ctx, t, gen)
	}
}

// generation returns the job's group generation as this worker knows it.
func (w *Worker) generation() int32 {
	_, gen := w.sess.Client().GroupMetadata()
	return gen
}
