package engine

import (
	"context"
	"encoding/json"
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

// JSONFieldEventTime is FieldEventTime that also reads the field of raw
// JSON records (a stream source with RawJSON feeding a JS chain) without
// decoding the rest of the record.
func JSONFieldEventTime(field string) EventTimeFactory {
	return func() (EventTimeFunc, error) {
		var fields js.JSONFields
		return func(ctx context.Context, recs []operators.Record) ([]operators.Record, error) {
			for i := range recs {
				var v any
				switch x := recs[i].Value.(type) {
				case map[string]any:
					v = x[field]
				case json.RawMessage:
					var err error
					if v, _, err = fields.Get(x, field); err != nil {
						return nil, fmt.Errorf("record %s: event time field %q: %w", recs[i].Origin, field, err)
					}
				default:
					return nil, fmt.Errorf("record %s is not an object, so it has no event time field %q", recs[i].Origin, field)
				}
				t, err := ParseEventTime(v)
				if err != nil {
					return nil, fmt.Errorf("record %s: field %q: %w", recs[i].Origin, field, err)
				}
				recs[i].EventTime = t
			}
			return recs, nil
		}, nil
	}
}
