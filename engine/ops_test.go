package engine

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sinks"
)

// Go-native test operators: the runtime is tested without JS.

type mapOp struct {
	f func(operators.Record) (operators.Record, bool)
}

func (m *mapOp) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	for _, r := range in.Records {
		if r2, ok := m.f(r); ok {
			out.Emit(r2)
		}
	}
	return nil
}

func (m *mapOp) Close() error { return nil }

func newMap(f func(operators.Record) (operators.Record, bool)) func() (operators.Operator, error) {
	return func() (operators.Operator, error) { return &mapOp{f: f}, nil }
}

func passThrough() func() (operators.Operator, error) {
	return newMap(func(r operators.Record) (operators.Record, bool) { return r, true })
}

// tumbling is a keyed tumbling-window count and sum of field, keyed by
// Record.Key (the runtime's key function sets it).
type tumbling struct {
	size  int64
	field string
	wins  map[int64]map[string]*acc
	fired int64 // watermark fired up to
	late  atomic.Int64
}

type acc struct {
	count int64
	sum   float64
}

func newTumbling(size int64, field string) func() (operators.Operator, error) {
	return func() (operators.Operator, error) {
		return &tumbling{size: size, field: field, wins: map[int64]map[string]*acc{}, fired: NoWatermark}, nil
	}
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && a < 0 {
		q--
	}
	return q
}

func (w *tumbling) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	for _, r := range in.Records {
		start := floorDiv(r.EventTime, w.size) * w.size
		if w.fired != NoWatermark && start+w.size <= w.fired {
			w.late.Add(1)
			continue
		}
		keys := w.wins[start]
		if keys == nil {
			keys = map[string]*acc{}
			w.wins[start] = keys
		}
		a := keys[r.Key]
		if a == nil {
			a = &acc{}
			keys[r.Key] = a
		}
		a.count++
		if m, ok := r.Value.(map[string]any); ok {
			switch v := m[w.field].(type) {
			case float64:
				a.sum += v
			case int64:
				a.sum += float64(v)
			}
		}
	}
	return nil
}

func (w *tumbling) OnWatermark(ctx context.Context, wm int64, out operators.Emitter) error {
	w.fired = wm
	var starts []int64
	for s := range w.wins {
		if wm == EndOfTime || s+w.size <= wm {
			starts = append(starts, s)
		}
	}
	sort.Slice(starts, func(a, b int) bool { return starts[a] < starts[b] })
	for _, s := range starts {
		keys := make([]string, 0, len(w.wins[s]))
		for k := range w.wins[s] {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			a := w.wins[s][k]
			out.Emit(operators.Record{Key: k, EventTime: s + w.size - 1, Value: map[string]any{
				"window_start": s, "window_end": s + w.size, "key": k, "count": a.count, "sum": a.sum}})
		}
		delete(w.wins, s)
	}
	return nil
}

func (w *tumbling) LateRecords() int64 { return w.late.Load() }

func (w *tumbling) Close() error { return nil }

// collect is a sink that keeps every row.
type collect struct {
	mu     sync.Mutex
	rows   []sinks.Row
	closed bool
	// gate, if set, is received from before each Write returns.
	gate chan struct{}
}

func (c *collect) Write(ctx context.Context, rows []sinks.Row) error {
	if c.gate != nil {
		select {
		case <-c.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rows = append(c.rows, rows...)
	return nil
}

func (c *collect) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *collect) snapshot() []sinks.Row {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sinks.Row(nil), c.rows...)
}

// windowRows renders window results as "start key count sum" lines, sorted.
func windowRows(rows []sinks.Row) []string {
	var out []string
	for _, r := range rows {
		m := r.Value.(map[string]any)
		out = append(out, fmt.Sprintf("%d %s %d %g", m["window_start"], m["key"], m["count"], m["sum"]))
	}
	sort.Strings(out)
	return out
}

// countSink counts rows.
type countSink struct{ n atomic.Int64 }

func (c *countSink) Write(ctx context.Context, rows []sinks.Row) error {
	c.n.Add(int64(len(rows)))
	return nil
}
func (c *countSink) Close() error { return nil }
