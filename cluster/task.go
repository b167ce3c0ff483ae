package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
	kafkasrc "github.com/runnel-dev/runnel/sources/kafka"
	"github.com/runnel-dev/runnel/state"
)

// Headers of repartition records: a record's event time, or (on a record
// without key and value) the name of the producer task whose watermark the
// value holds ("idle" when the producer is idle).
const (
	hdrTime      = "runnel-time"
	hdrWatermark = "runnel-watermark"
	idleValue    = "idle"
	// hdrGeneration on an idle record: the group generation its producer
	// wrote it in (Watermarks).
	hdrGeneration = "runnel-generation"
)

// task is one (stage, partition) in this worker: the stage's operator
// instances and the state of its watermarks. Only the worker's loop uses
// it.
type task struct {
	id    tp
	name  string
	stage *Stage
	ops   map[string]operators.Operator
	keys  map[string]engine.KeyFunc // keyed operators the stage feeds
	// Stage 0: decoding, event times, the partition's watermark.
	dec      kafkasrc.Decoder
	evt      engine.EventTimeFunc
	maxEvent int64
	bound    int64
	// Stages after 0: records from the repartition topic, the watermark
	// over the producers, the keyed operator's state.
	json      *sources.Decoder
	marks     *Watermarks
	store     *LogStore
	detect    *detectLog // a detect operator's state (detect.go)
	metaDirty bool
	// With a data directory: the task's local state, the changelog
	// records written in the open transaction, the offset of the last of
	// them (under the worker's produceMu; -1: none yet), and the topic ID
	// of the changelog as the task restored (kept with the offset).
	space   *state.Space
	pending []Change
	logEnd  int64
	logID   kadm.TopicID

	side []sideRecord // side output records not routed yet (sideout.go)

	sent    int64     // the last watermark written to the stages fed
	idle    bool      // an idle record was written and no record came since
	idleGen int32     // the group generation of that idle record
	last    time.Time // when the last record came
	// lastRead is the worker's read clock when the last record came (or
	// the task was made).
	lastRead time.Duration
}

// newTask makes the task of partition id, restoring its state from its
// changelog.
func (w *Worker) newTask(ctx context.Context, id tp) (*task, error) {
	t := &task{id: id, name: id.String(), ops: map[string]operators.Operator{}, keys: map[string]engine.KeyFunc{},
		maxEvent: NoWatermark, sent: NoWatermark, last: time.Now(), lastRead: w.readClock.now(), logEnd: -1}
	for i := range w.plan.Stages {
		if s := &w.plan.Stages[i]; s.Input == id.topic || (s.Index == 0 && w.isSource(id.topic)) {
			t.stage = s
			break
		}
	}
	if t.stage == nil {
		return nil, fmt.Errorf("cluster: partition %s is of no stage of job %s", t.name, w.cfg.Spec.Name)
	}
	for _, n := range t.stage.Nodes {
		w.store = nil
		op, err := w.nodes[n].New()
		if err != nil {
			t.close()
			return nil, fmt.Errorf("cluster: task %s: operator %s: %w", t.name, n, err)
		}
		t.ops[n] = op
		if n == t.stage.Keyed {
			t.store = w.store
			if w.isDetect(n) {
				if t.detect, err = w.newDetectLog(op, t); err != nil {
					t.close()
					return nil, err
				}
			}
		}
	}
	w.wireSideOutputs(t)
	for _, k := range w.feeds[t.stage.Index] {
		kf, err := w.nodes[k].Key()
		if err != nil {
			t.close()
			return nil, fmt.Errorf("cluster: task %s: key of %s: %w", t.name, k, err)
		}
		t.keys[k] = kf
	}
	if t.stage.Index == 0 {
		src := w.built.Graph.Sources[0]
		t.dec = w.newSourceDecoder()
		t.bound = src.Watermark.Milliseconds()
		if src.EventTime != nil {
			f, err := src.EventTime()
			if err != nil {
				t.close()
				return nil, fmt.Errorf("cluster: task %s: event time: %w", t.name, err)
			}
			t.evt = f
		}
		return t, nil
	}
	t.json = sources.NewDecoder(sources.FormatJSON)
	t.marks = NewWatermarks(w.producers[t.stage.Keyed])
	if err := w.restore(ctx, t); err != nil {
		t.close()
		if errors.Is(err, errLocal) && w.local != nil {
			// The task's state may be half applied: make it again,
			// from its changelog alone.
			w.dropLocal(t.name, err)
			return w.newTask(ctx, id)
		}
		return nil, err
	}
	if t.detect != nil {
		if err := t.detect.open(); err != nil {
			t.close()
			return nil, fmt.Errorf("cluster: task %s: %w", t.name, err)
		}
	}
	return t, nil
}

func (w *Worker) isSource(topic string) bool {
	if w.kin != nil {
		return strings.HasPrefix(topic, kinesisTask)
	}
	for _, s := range w.src.Config().Topics {
		if s == topic {
			return true
		}
	}
	return false
}

func (t *task) close() {
	for _, op := range t.ops {
		op.Close()
	}
	if t.detect != nil {
		t.detect.close()
	}
}

// onWatermark hands wm to the stage's operators that have timers, in
// order, and passes what they emit on.
func (t *task) onWatermark(ctx context.Context, wm int64, route func(from string, recs []operators.Record) error, out *collect) error {
	for _, n := range t.stage.Nodes {
		h, ok := t.ops[n].(operators.WatermarkHandler)
		if !ok {
			continue
		}
		out.recs = out.recs[:0]
		if err := h.OnWatermark(ctx, wm, out); err != nil {
			return err
		}
		if len(out.recs) > 0 {
			if err := route(n, append([]operators.Record(nil), out.recs...)); err != nil {
				return err
			}
		}
	}
	return nil
}

type collect struct{ recs []operators.Record }

func (c *collect) Emit(r operators.Record) { c.recs = append(c.recs, r) }

// process runs a partition's fetched records through the task.
func (w *Worker) process(ctx context.Context, t *task, recs []*kgo.Record) error {
	wasIdle := t.touch(w.readClock.now())
	w.cfg.Metrics.in(w.cfg.Spec.Name, t.stage.Index, countData(recs))
	if t.stage.Index == 0 {
		if err := w.processSource(ctx, t, recs); err != nil {
			return err
		}
		w.sourceWatermark(ctx, t, wasIdle)
		return nil
	}
	return w.processRepartition(ctx, t, recs)
}

func (w *Worker) processSource(ctx context.Context, t *task, krecs []*kgo.Record) error {
	recs := make([]operators.Record, 0, len(krecs))
	for _, kr := range krecs {
		v, err := t.dec.Decode(kr.Value)
		if err != nil {
			// The source's bad-record policy is the server's; a worker
			// stops, so the record is neither lost nor skipped silently.
			return fmt.Errorf("cluster: %s offset %d: decode: %w", t.name, kr.Offset, err)
		}
		recs = append(recs, operators.Record{Value: v, EventTime: kr.Timestamp.UnixMilli(),
			Origin: fmt.Sprintf("%s@%d", t.name, kr.Offset)})
	}
	return w.routeSource(ctx, t, recs)
}

// routeSource runs decoded source records through the event time
// function and the first stage's operators.
func (w *Worker) routeSource(ctx context.Context, t *task, recs []operators.Record) error {
	if t.evt != nil {
		var err error
		if recs, err = t.evt(ctx, recs); err != nil {
			return fmt.Errorf("cluster: %s: event time: %w", t.name, err)
		}
	}
	for _, r := range recs {
		t.maxEvent = max(t.maxEvent, r.EventTime)
	}
	return w.route(ctx, t, w.built.Graph.Sources[0].ID, recs)
}

func (w *Worker) processRepartition(ctx context.Context, t *task, krecs []*kgo.Record) error {
	route := func(from string, recs []operators.Record) error { return w.route(ctx, t, from, recs) }
	keyed := t.ops[t.stage.Keyed]
	var batch []operators.Record
	var out collect
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		out.recs = out.recs[:0]
		if err := keyed.Process(ctx, &operators.Batch{Records: batch}, &out); err != nil {
			return fmt.Errorf("cluster: task %s: %w", t.name, err)
		}
		if t.detect != nil {
			t.detect.touched(batch)
		}
		batch = nil
		if len(out.recs) > 0 {
			if err := route(t.stage.Keyed, append([]operators.Record(nil), out.recs...)); err != nil {
				return err
			}
		}
		return w.routeSide(ctx, t)
	}
	if t.marks.Generation(w.generation()) {
		t.metaDirty = true
	}
	for _, kr := range krecs {
		if producer, ok := header(kr, hdrWatermark); ok {
			if err := flush(); err != nil {
				return err
			}
			if open, ok := strings.CutPrefix(string(kr.Value), openPrefix); ok {
				wm, err := strconv.ParseInt(open, 10, 64)
				if err != nil {
					return fmt.Errorf("cluster: %s offset %d: watermark %q: %w", t.name, kr.Offset, kr.Value, err)
				}
				t.marks.Open(producer, wm)
			} else if string(kr.Value) == idleValue {
				gen, _ := header(kr, hdrGeneration)
				g, _ := strconv.ParseInt(gen, 10, 32) // none: generation 0, which every later one outdates
				t.marks.Idle(producer, int32(g))
			} else {
				wm, err := strconv.ParseInt(string(kr.Value), 10, 64)
				if err != nil {
					return fmt.Errorf("cluster: %s offset %d: watermark %q: %w", t.name, kr.Offset, kr.Value, err)
				}
				t.marks.Update(producer, wm)
			}
			t.metaDirty = true
			if wm := t.marks.Current(); wm > t.sent {
				if err := t.onWatermark(ctx, wm, route, &out); err != nil {
					return fmt.Errorf("cluster: task %s: %w", t.name, err)
				}
				if err := w.routeSide(ctx, t); err != nil {
					return err
				}
				t.sent = wm
				w.cfg.Metrics.taskWatermark(w.cfg.Spec.Name, t)
				if len(t.keys) > 0 {
					w.sendWatermark(ctx, t, strconv.FormatInt(wm, 10))
				}
			}
			continue
		}
		ts, _ := header(kr, hdrTime)
		et, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return fmt.Errorf("cluster: %s offset %d: event time %q: %w", t.name, kr.Offset, ts, err)
		}
		v, err := t.json.Decode(kr.Value)
		if err != nil {
			return fmt.Errorf("cluster: %s offset %d: decode: %w", t.name, kr.Offset, err)
		}
		batch = append(batch, operators.Record{Value: v, Key: string(kr.Key), EventTime: et,
			Origin: fmt.Sprintf("%s@%d", t.name, kr.Offset)})
	}
	return flush()
}

func header(r *kgo.Record, key string) (string, bool) {
	for _, h := range r.Headers {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// route passes what node (or the source) from emitted to what reads it:
// operators of the same stage run now; keyed operators get the records
// through their repartition topic; sinks through their topics.
func (w *Worker) route(ctx context.Context, t *task, from string, recs []operators.Record) error {
	outs := w.outs[from]
	for i, to := range outs {
		batch := recs
		if i < len(outs)-1 {
			// A later reader may change the values in place (JS writes
			// through to maps): each but the last gets copies.
			batch = make([]operators.Record, len(recs))
			for j, r := range recs {
				r.Value = operators.ValueOf(r.Value).Copy().Any()
				batch[j] = r
			}
		}
		switch {
		case w.sinks[to] != nil:
			w.cfg.Metrics.out(w.cfg.Spec.Name, t.stage.Index, len(batch))
			for _, r := range batch {
				v, err := operators.ValueOf(r.Value).Export()
				if err != nil {
					return fmt.Errorf("cluster: sink %s: %w", to, err)
				}
				rec, err := w.sinks[to].Record(sinks.Row{Key: r.Key, Value: v})
				if err != nil {
					return err
				}
				w.produce(ctx, rec, nil)
			}
		case w.outboxes[to] != nil:
			if err := w.toOutbox(ctx, t, to, batch); err != nil {
				return err
			}
		case t.keys[to] != nil:
			if err := t.keys[to](ctx, batch); err != nil {
				return fmt.Errorf("cluster: task %s: key of %s: %w", t.name, to, err)
			}
			topic := w.plan.Repartition[to]
			w.cfg.Metrics.out(w.cfg.Spec.Name, t.stage.Index, len(batch))
			for _, r := range batch {
				val, err := encodeValue(r.Value)
				if err != nil {
					return fmt.Errorf("cluster: task %s: to %s: %w", t.name, topic, err)
				}
				w.produce(ctx, &kgo.Record{Topic: topic, Partition: partitionOf(r.Key, w.partitions), Key: []byte(r.Key),
					Value: val, Headers: []kgo.RecordHeader{{Key: hdrTime, Value: strconv.AppendInt(nil, r.EventTime, 10)}}}, nil)
			}
		default:
			var out collect
			if err := t.ops[to].Process(ctx, &operators.Batch{Records: batch}, &out); err != nil {
				return fmt.Errorf("cluster: task %s: %w", t.name, err)
			}
			if len(out.recs) > 0 {
				if err := w.route(ctx, t, to, out.recs); err != nil {
					return err
				}
			}
			if err := w.routeSide(ctx, t); err != nil {
				return err
			}
		}
	}
	return nil
}

// encodeValue is a record's value as JSON: raw JSON as it is.
func encodeValue(v any) ([]byte, error) {
	val := operators.ValueOf(v)
	if b, ok := val.Raw(); ok {
		return b, nil
	}
	x, err := val.Export()
	if err != nil {
		return nil, err
	}
	return json.Marshal(x)
}

// partitionOf is the repartition partition of key: FNV-1a, so it is the
// same in every worker and version.
func partitionOf(key string, n int32) int32 {
	h := fnv.New32a()
	h.Write([]byte(key))
	return int32(h.Sum32() % uint32(n))
}

// flushChangelog writes the task's state changes and, if it changed, its
// watermark bookkeeping to its changelog partition.
func (w *Worker) flushChangelog(ctx context.Context, t *task) error {
	if t.stage.Index == 0 {
		return nil
	}
	topic := w.plan.Changelog[t.stage.Keyed]
	write := func(changes []Change, err error) error {
		if err != nil {
			return fmt.Errorf("cluster: task %s: %w", t.name, err)
		}
		for _, c := range changes {
			w.produceChange(ctx, t, topic, c)
		}
		return nil
	}
	if t.store != nil {
		if err := write(t.store.Changes()); err != nil {
			return err
		}
	}
	if t.detect != nil {
		if err := write(t.detect.changes()); err != nil {
			return err
		}
	}
	if t.metaDirty {
		b, err := json.Marshal(t.marks)
		if err != nil {
			return err
		}
		w.produceChange(ctx, t, topic, Change{Key: metaKey, Value: b})
		t.metaDirty = false
	}
	return nil
}

// produceChange writes c to the task's changelog partition and, with
// local state, keeps it and its offset for saveLocal.
func (w *Worker) produceChange(ctx context.Context, t *task, topic string, c Change) {
	r := &kgo.Record{Topic: topic, Partition: t.id.partition, Key: c.Key, Value: c.Value}
	if t.space == nil {
		w.produce(ctx, r, nil)
		return
	}
	t.pending = append(t.pending, c)
	w.produce(ctx, r, func(r *kgo.Record) { t.logEnd = max(t.logEnd, r.Offset) })
}
