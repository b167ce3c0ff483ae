package window

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
)

// Operator is a keyed event-time window in one task. It implements
// operators.Operator, operators.WatermarkHandler, operators.SideOutputs
// (the late output, and dead letters when OnError is dead_letter) and
// operators.Stateful.
type Operator struct {
	cfg   Config
	comp  *Compiled
	aggs  *aggregate.Instance
	key   *js.Chain
	store Store
	cache *cachedStore // the store, once OpenState gave the operator a space
	names []string     // result column names

	size, every, gap, lateness int64
	wm                         int64 // current watermark
	dirty                      map[Entry]struct{}
	late, dead                 operators.Emitter

	stats struct {
		in, late, lateWindows, fired, errors atomic.Int64
	}
	keyed collectEmitter
}

// New makes an operator instance for one task.
func (c *Compiled) New() (*Operator, error) {
	aggs, err := c.aggs.Instance()
	if err != nil {
		return nil, fmt.Errorf("window %q: %w", c.cfg.ID, err)
	}
	op := &Operator{cfg: c.cfg, comp: c, aggs: aggs, wm: math.MinInt64, dirty: map[Entry]struct{}{},
		size: c.cfg.Size.Milliseconds(), every: c.cfg.Every.Milliseconds(), gap: c.cfg.Gap.Milliseconds(),
		lateness: c.cfg.AllowedLateness.Milliseconds()}
	if c.cfg.Kind == Tumbling {
		op.every = op.size
	}
	if c.cfg.NewStore != nil {
		op.store = c.cfg.NewStore(stateCodec{aggs})
	} else {
		op.store = NewMemStore()
	}
	for _, col := range c.ResultColumns() {
		op.names = append(op.names, col.Name)
	}
	if c.key != nil {
		if op.key, err = c.key.New(); err != nil {
			return nil, err
		}
	}
	return op, nil
}

// Codec encodes window state for stores that keep bytes (Pebble): the
// accumulators with aggregate.Instance.Marshal, readable by any operator
// instance of the same Compiled, in any process.
type Codec interface {
	Marshal(s *State) ([]byte, error)
	Unmarshal(b []byte) (*State, error)
}

type stateCodec struct{ aggs *aggregate.Instance }

func (c stateCodec) Marshal(s *State) ([]byte, error) { return c.aggs.Marshal(s.Accs) }

func (c stateCodec) Unmarshal(b []byte) (*State, error) {
	accs, err := c.aggs.Unmarshal(b)
	if err != nil {
		return nil, err
	}
	return &State{Accs: accs}, nil
}

// ResultColumns returns the result columns (see Compiled.ResultColumns).
func (op *Operator) ResultColumns() []Column { return op.comp.ResultColumns() }

// Stats are an operator's counters.
type Stats struct {
	In          int64 // records processed
	Late        int64 // records in no open window: counted, sent to the late output
	LateWindows int64 // (record, window) pairs dropped as too late, sliding windows included
	Fired       int64 // results emitted, re-fires included
	Errors      int64 // records whose key or custom aggregate failed
	Windows     int   // (key, window) states held
	Watermark   int64
}

// Stats returns the counters; In, Late, Fired and Errors may be read from
// any goroutine, Windows and Watermark only from the task's.
func (op *Operator) Stats() Stats {
	return Stats{In: op.stats.in.Load(), Late: op.stats.late.Load(), LateWindows: op.stats.lateWindows.Load(),
		Fired: op.stats.fired.Load(), Errors: op.stats.errors.Load(), Windows: op.store.Len(), Watermark: op.wm}
}

// LateRecords returns the number of records that were too late.
func (op *Operator) LateRecords() int64 { return op.stats.late.Load() }

// SideOutputNames lists "late" and, with on_error dead_letter, the
// operator's dead-letter output.
func (op *Operator) SideOutputNames() []string {
	names := []string{operators.LateOutput}
	if op.cfg.OnError.Mode == js.DeadLetter {
		names = append(names, operators.DeadLetterOutput(op.cfg.ID))
	}
	return names
}

// SetSideOutput wires the late or dead-letter output.
func (op *Operator) SetSideOutput(name string, out operators.Emitter) {
	switch name {
	case operators.LateOutput:
		op.late = out
	case operators.DeadLetterOutput(op.cfg.ID):
		op.dead = out
		if op.key != nil {
			op.key.SetSideOutput(name, out)
		}
	}
}

type collectEmitter struct{ recs []operators.Record }

func (c *collectEmitter) Emit(r operators.Record) { c.recs = append(c.recs, r) }

// Process adds each record to its windows. A record for a window that has
// already fired but is within allowed lateness updates it, and the window
// re-fires when the batch is done; a record with no open window is late.
func (op *Operator) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	recs := in.Records
	if op.key != nil {
		op.keyed.recs = op.keyed.recs[:0]
		if err := op.key.Process(ctx, in, &op.keyed); err != nil {
			return err
		}
		recs = op.keyed.recs
	}
	op.stats.in.Add(int64(len(in.Records)))
	for i := range recs {
		r := &recs[i]
		if op.cfg.KeyFunc != nil {
			k, err := op.cfg.KeyFunc(*r)
			if err != nil {
				if err := op.fail(r, err); err != nil {
					return err
				}
				continue
			}
			r.Key = k
		}
		var err error
		if p, ok := r.Value.(*Partial); ok {
			err = op.addPartial(r.Key, p)
		} else if op.cfg.Kind == Session {
			err = op.addSession(r)
		} else {
			err = op.addFixed(r)
		}
		var se *StoreError
		switch {
		case err == nil:
		case errors.As(err, &se):
			return fmt.Errorf("window %q: %w", op.cfg.ID, err)
		default:
			if err := op.fail(r, err); err != nil {
				return err
			}
		}
	}
	if len(op.dirty) > 0 {
		if err := op.refire(out); err != nil {
			return fmt.Errorf("window %q: %w", op.cfg.ID, err)
		}
	}
	clear(op.keyed.recs)
	return nil
}

// The store's operations for the operator: any error is a *StoreError, so
// Process tells it from a record's failure (which OnError handles).
func (op *Operator) get(key string, w Window) (*State, error) {
	s, err := op.store.Get(key, w)
	return s, storeFault(err)
}

func (op *Operator) put(key string, w Window, s *State) error {
	return storeFault(op.store.Put(key, w, s))
}

func (op *Operator) delete(key string, w Window) error {
	return storeFault(op.store.Delete(key, w))
}

// storeFault makes err (from a Store) a *StoreError, if it is not one.
func storeFault(err error) error {
	var se *StoreError
	if err == nil || errors.As(err, &se) {
		return err
	}
	return &StoreError{Err: err}
}

// expired reports whether a window ending at end can no longer change.
func (op *Operator) expired(end int64) bool { return end <= satSub(op.wm, op.lateness) }

func satSub(a, b int64) int64 {
	if a < math.MinInt64+b {
		return math.MinInt64
	}
	return a - b
}

// floorDiv rounds toward negative infinity, so windows before the epoch
// align like the ones after it.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func (op *Operator) addFixed(r *operators.Record) error {
	t := r.EventTime
	accepted := false
	for start := floorDiv(t, op.every) * op.every; start > t-op.size; start -= op.every {
		w := Window{start, start + op.size}
		if op.expired(w.End) {
			op.stats.lateWindows.Add(1)
			continue
		}
		s, err := op.get(r.Key, w)
		if err != nil {
			return err
		}
		if s == nil {
			accs, err := op.aggs.New()
			if err != nil {
				return err
			}
			s = &State{Accs: accs}
		}
		if err := op.aggs.Add(s.Accs, r.Value); err != nil {
			return err
		}
		if err := op.put(r.Key, w, s); err != nil {
			return err
		}
		if w.End <= op.wm {
			op.dirty[Entry{Key: r.Key, Window: w}] = struct{}{}
		}
		accepted = true
	}
	if !accepted {
		op.lateRecord(r)
	}
	return nil
}

func (op *Operator) addSession(r *operators.Record) error {
	accs, err := op.aggs.New()
	if err != nil {
		return err
	}
	if err := op.aggs.Add(accs, r.Value); err != nil {
		return err
	}
	return op.mergeSession(r.Key, Window{r.EventTime, r.EventTime + op.gap}, accs, 1, []operators.Record{*r})
}

// mergeSession adds the session w of key with accs, merged with every
// session of the key that overlaps or touches it (as in Flink, [a,b) and
// [b,c) merge: the gap was not exceeded). A key's sessions never touch
// each other, so one pass finds them all. If the merged session can no
// longer change, its n records are late instead (those of them in late go
// to the late output).
func (op *Operator) mergeSession(key string, w Window, accs []aggregate.Accumulator, n int64, late []operators.Record) error {
	var overlaps []Window
	wins, err := op.store.Windows(key)
	if err != nil {
		return storeFault(err)
	}
	for _, o := range wins {
		if o.Start <= w.End && w.Start <= o.End {
			overlaps = append(overlaps, o)
			w = Window{min(w.Start, o.Start), max(w.End, o.End)}
		}
	}
	if op.expired(w.End) {
		op.stats.lateWindows.Add(n)
		op.stats.late.Add(n)
		op.emitLate(late)
		return nil
	}
	for _, o := range overlaps {
		s, err := op.get(key, o)
		if err != nil {
			return err
		}
		if err := op.aggs.Merge(accs, s.Accs); err != nil {
			return err
		}
	}
	for _, o := range overlaps {
		if err := op.delete(key, o); err != nil {
			return err
		}
		delete(op.dirty, Entry{Key: key, Window: o})
	}
	if err := op.put(key, w, &State{Accs: accs}); err != nil {
		return err
	}
	if w.End <= op.wm {
		op.dirty[Entry{Key: key, Window: w}] = struct{}{}
	}
	return nil
}

// addPartial merges a combiner's pre-aggregate as if its records had come
// one by one.
func (op *Operator) addPartial(key string, p *Partial) error {
	op.stats.in.Add(p.Last - 1) // the batch counted the partial as one record
	if op.cfg.Kind == Session {
		return op.mergeSession(key, p.Window, p.Accs, p.N, p.Records)
	}
	w := p.Window
	if op.expired(w.End) {
		op.stats.lateWindows.Add(p.N)
		op.stats.late.Add(p.Last)
		op.emitLate(p.Records)
		return nil
	}
	s, err := op.get(key, w)
	if err != nil {
		return err
	}
	if s == nil {
		s = &State{Accs: p.Accs}
	} else if err := op.aggs.Merge(s.Accs, p.Accs); err != nil {
		return err
	}
	if err := op.put(key, w, s); err != nil {
		return err
	}
	if w.End <= op.wm {
		op.dirty[Entry{Key: key, Window: w}] = struct{}{}
	}
	return nil
}

func (op *Operator) lateRecord(r *operators.Record) {
	op.stats.late.Add(1)
	if op.late != nil {
		op.late.Emit(*r)
	}
}

func (op *Operator) emitLate(recs []operators.Record) {
	if op.late == nil {
		return
	}
	for _, r := range recs {
		op.late.Emit(r)
	}
}

// fail applies OnError to a record whose key or aggregate failed.
func (op *Operator) fail(r *operators.Record, cause error) error {
	op.stats.errors.Add(1)
	err := &js.Error{Job: op.cfg.Job, Operator: op.cfg.ID, Origin: r.Origin, Err: cause}
	switch op.cfg.OnError.Mode {
	case js.Skip:
		return nil
	case js.DeadLetter:
		if op.dead != nil {
			op.dead.Emit(operators.Record{Value: map[string]any{"error": err.Error(), "job": op.cfg.Job,
				"operator": op.cfg.ID, "origin": r.Origin, "record": r.Value}, Key: r.Key, EventTime: r.EventTime, Origin: r.Origin})
		}
		return nil
	}
	return err
}

// OnWatermark fires every window whose end is <= wm, in order of end, key
// and start, and drops the state of windows whose end + allowed lateness
// is <= wm.
func (op *Operator) OnWatermark(ctx context.Context, wm int64, out operators.Emitter) error {
	if err := op.advance(wm, out); err != nil {
		return fmt.Errorf("window %q: %w", op.cfg.ID, err)
	}
	return nil
}

func (op *Operator) advance(wm int64, out operators.Emitter) error {
	if wm <= op.wm {
		return nil
	}
	old := op.wm
	op.wm = wm
	fire, err := op.store.Range(old, wm)
	if err != nil {
		return storeFault(err)
	}
	for _, e := range fire {
		op.emit(e, out)
	}
	lo, hi := satSub(old, op.lateness), satSub(wm, op.lateness)
	if hi > lo {
		purge, err := op.store.Range(lo, hi)
		if err != nil {
			return storeFault(err)
		}
		for _, e := range purge {
			if err := op.delete(e.Key, e.Window); err != nil {
				return err
			}
			delete(op.dirty, Entry{Key: e.Key, Window: e.Window})
		}
	}
	return nil
}

// refire emits the windows updated by late records of this batch.
func (op *Operator) refire(out operators.Emitter) error {
	es := make([]Entry, 0, len(op.dirty))
	for e := range op.dirty {
		var err error
		if e.State, err = op.get(e.Key, e.Window); err != nil {
			return err
		}
		es = append(es, e)
	}
	clear(op.dirty)
	slices.SortFunc(es, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.Window.End, b.Window.End), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Window.Start, b.Window.Start))
	})
	for _, e := range es {
		op.emit(e, out)
	}
	return nil
}

// emit sends one result row. Its EventTime is the window's last
// millisecond, so a downstream window puts it in the matching window.
func (op *Operator) emit(e Entry, out operators.Emitter) {
	vals := op.aggs.Results(e.State.Accs)
	row := make(map[string]any, len(op.names))
	row["window_start"], row["window_end"], row["key"] = e.Window.Start, e.Window.End, e.Key
	for i, v := range vals {
		row[op.names[3+i]] = v
	}
	op.stats.fired.Add(1)
	out.Emit(operators.Record{Value: row, Key: e.Key, EventTime: e.Window.End - 1, Origin: op.cfg.ID})
}

// Close releases the operator's state and JS VMs. Durable state is not
// written: that is SnapshotState's job.
func (op *Operator) Close() error {
	op.store, op.cache = NewMemStore(), nil
	op.aggs.Close()
	if op.key != nil {
		return op.key.Close()
	}
	return nil
}
