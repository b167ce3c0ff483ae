package window

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/dop251/goja"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
)

// Partial is the pre-aggregate of one key's records in one window, made by
// a Combiner from one batch of one shard. Sent to the window Operator that
// owns the key (Record.Value = *Partial, Record.Key = the key), it is
// merged into the window's state as if its records had arrived one by one.
// Its accumulators are handed over: the combiner keeps no reference.
type Partial struct {
	Window Window
	Accs   []aggregate.Accumulator
	// N is the number of records folded in; Last the number of them whose
	// last window this is (all of them for tumbling and session windows).
	// If the partial arrives too late, Last records are counted late.
	N, Last int64
	// Records are those Last records, for the late output, unless the
	// combiner drops them (DropLateRecords). They are the records the
	// Combiner received — with a JS chain, the chain's input records, keyed.
	Records []operators.Record
}

// Combiner pre-aggregates, in a shard's task, the records bound for a
// window: per batch it folds each key's records into one Partial per
// window, so the exchange carries one record per (key, window, batch)
// instead of one per record. With a JS chain in front (NewCombiner(chain))
// it reads the aggregates' fields straight from the chain's JS results
// without exporting them (js.Chain.SetRawSink).
//
// It implements operators.Operator; Process emits *Partial records.
// Records must carry their key (a Key stage in the chain, or the window's
// KeyFunc); a window with KeyJS cannot be combined.
type Combiner struct {
	comp   *Compiled
	aggs   *aggregate.Instance
	chain  *js.Chain
	groups map[groupKey]*Partial
	// sessions holds the batch's sessions per key (session windows).
	sessions map[string][]*Partial
	err      error
	dropLate bool
	stats    struct{ in, out int64 }
}

// DropLateRecords stops keeping each record for the late output: late
// partials are then only counted. Use it when no late sink is wired; it
// saves a copy of every record.
func (cb *Combiner) DropLateRecords() { cb.dropLate = true }

type groupKey struct {
	key        string
	start, end int64
}

// NewCombiner makes a combiner for one shard task. chain may be nil (the
// records are Go values); otherwise the combiner takes over the chain's
// output (SetRawSink) and runs it in Process.
func (c *Compiled) NewCombiner(chain *js.Chain) (*Combiner, error) {
	if c.cfg.KeyJS != "" {
		return nil, fmt.Errorf("window %q: a window with its own key function cannot be combined; compute the key upstream", c.cfg.ID)
	}
	aggs, err := c.aggs.Instance()
	if err != nil {
		return nil, err
	}
	cb := &Combiner{comp: c, aggs: aggs, chain: chain, groups: map[groupKey]*Partial{}, sessions: map[string][]*Partial{}}
	if chain != nil {
		chain.SetRawSink(cb.take)
	}
	return cb, nil
}

// Process folds the batch (through the chain, if any) and emits one
// *Partial per key and window, ordered by key and window.
func (cb *Combiner) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	if cb.chain != nil {
		if err := cb.chain.Process(ctx, in, nopEmitter{}); err != nil {
			return err
		}
	} else {
		for i := range in.Records {
			r := &in.Records[i]
			cb.take(nil, r, r)
		}
	}
	for key, ps := range cb.sessions {
		for _, p := range ps {
			cb.groups[groupKey{key, p.Window.Start, p.Window.End}] = p
		}
	}
	clear(cb.sessions)
	if err := cb.err; err != nil {
		cb.err = nil
		clear(cb.groups)
		return err
	}
	keys := make([]groupKey, 0, len(cb.groups))
	for k := range cb.groups {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b groupKey) int {
		return cmp.Or(cmp.Compare(a.key, b.key), cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end))
	})
	for _, k := range keys {
		p := cb.groups[k]
		origin := ""
		if len(p.Records) > 0 {
			origin = p.Records[0].Origin
		}
		out.Emit(operators.Record{Value: p, Key: k.key, EventTime: k.end - 1, Origin: origin})
	}
	cb.stats.out += int64(len(keys))
	clear(cb.groups)
	return nil
}

type nopEmitter struct{}

func (nopEmitter) Emit(operators.Record) {}

// take folds one record: v is its JS value (nil: use rec.Value), rec
// carries its key and event time, src is the record to send late.
func (cb *Combiner) take(v goja.Value, rec, src *operators.Record) {
	if cb.err != nil {
		return
	}
	cb.stats.in++
	var value any = rec.Value
	if v != nil {
		value = js.RawValue(v)
	}
	key := rec.Key
	if f := cb.comp.cfg.KeyFunc; f != nil {
		r := *rec
		if v != nil {
			r.Value = v.Export()
		}
		k, err := f(r)
		if err != nil {
			cb.err = &js.Error{Job: cb.comp.cfg.Job, Operator: cb.comp.cfg.ID, Origin: rec.Origin, Err: err}
			return
		}
		key = k
	}
	late := *src
	late.Key = key
	t := rec.EventTime
	cfg := cb.comp.cfg
	if cfg.Kind == Session {
		cb.err = cb.takeSession(key, Window{t, t + cfg.Gap.Milliseconds()}, value, late)
		return
	}
	size, every := cfg.Size.Milliseconds(), cfg.Every.Milliseconds()
	if cfg.Kind == Tumbling {
		every = size
	}
	last := true
	for start := floorDiv(t, every) * every; start > t-size; start -= every {
		p, err := cb.group(groupKey{key, start, start + size})
		if err == nil {
			err = cb.aggs.Add(p.Accs, value)
		}
		if err != nil {
			cb.err = &js.Error{Job: cfg.Job, Operator: cfg.ID, Origin: rec.Origin, Err: err}
			return
		}
		p.N++
		if last {
			p.Last++
			if !cb.dropLate {
				p.Records = append(p.Records, late)
			}
			last = false
		}
	}
}

func (cb *Combiner) group(k groupKey) (*Partial, error) {
	if p := cb.groups[k]; p != nil {
		return p, nil
	}
	accs, err := cb.aggs.New()
	if err != nil {
		return nil, err
	}
	p := &Partial{Window: Window{k.start, k.end}, Accs: accs}
	cb.groups[k] = p
	return p, nil
}

// takeSession merges the record's session with the batch's sessions of the
// key that overlap or touch it.
func (cb *Combiner) takeSession(key string, w Window, value any, late operators.Record) error {
	accs, err := cb.aggs.New()
	if err == nil {
		err = cb.aggs.Add(accs, value)
	}
	p := &Partial{Window: w, Accs: accs, N: 1, Last: 1}
	if !cb.dropLate {
		p.Records = []operators.Record{late}
	}
	kept := cb.sessions[key][:0]
	for _, o := range cb.sessions[key] {
		if err != nil || o.Window.Start > p.Window.End || p.Window.Start > o.Window.End {
			kept = append(kept, o)
			continue
		}
		err = cb.aggs.Merge(p.Accs, o.Accs)
		p.Window = Window{min(p.Window.Start, o.Window.Start), max(p.Window.End, o.Window.End)}
		p.N += o.N
		p.Last += o.Last
		p.Records = append(p.Records, o.Records...)
	}
	if err != nil {
		return &js.Error{Job: cb.comp.cfg.Job, Operator: cb.comp.cfg.ID, Origin: late.Origin, Err: err}
	}
	cb.sessions[key] = append(kept, p)
	return nil
}

// Stats returns the records folded and the partials emitted.
func (cb *Combiner) Stats() (in, partials int64) { return cb.stats.in, cb.stats.out }

// Close closes the chain, if any, and the aggregates' VM.
func (cb *Combiner) Close() error {
	cb.aggs.Close()
	if cb.chain != nil {
		return cb.chain.Close()
	}
	return nil
}
