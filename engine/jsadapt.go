package engine

import (
	"context"
	"fmt"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
)

// PresetKey is a Node.Key for keyed nodes whose records were keyed
// upstream (a JS chain's Key stage, a window Combiner's partials): the
// exchange hashes Record.Key as it is.
func PresetKey() (KeyFunc, error) {
	return func(context.Context, []operators.Record) error { return nil }, nil
}

// ChainEventTime makes an EventTimeFactory from a compiled JS chain whose
// stages set event times (js.EventTime, possibly after filters): each task
// gets its own chain and VM. Records the chain drops (on_error skip or
// dead_letter) leave the batch.
func ChainEventTime(cp *js.ChainProgram) EventTimeFactory {
	return func() (EventTimeFunc, error) {
		c, err := cp.New()
		if err != nil {
			return nil, fmt.Errorf("event-time chain: %w", err)
		}
		// out is the chain's own buffer: never the caller's recs.
		var out []operators.Record
		collect := operators.EmitterFunc(func(r operators.Record) { out = append(out, r) })
		return func(ctx context.Context, recs []operators.Record) ([]operators.Record, error) {
			clear(out)
			out = out[:0]
			if err := c.Process(ctx, &operators.Batch{Records: recs}, collect); err != nil {
				return nil, err
			}
			return out, nil
		}, nil
	}
}

// ChainNode makes a Node.New from a compiled JS chain (map, filter, key
// stages fused into one operator per task).
func ChainNode(cp *js.ChainProgram) func() (operators.Operator, error) {
	return func() (operators.Operator, error) { return cp.New() }
}

// chainStats is js.Chain's counters.
type chainStats interface {
	Stats() (in, out int64, stages []js.StageStats)
	Batches() (native, goja int64)
}
