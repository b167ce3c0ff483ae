package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/sinks"
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

// EventTimeFailed decides about a record whose event time a source's
// event_time chain could not read (cause): keep it in its place (its
// EventTime still the arrival time), drop it, or fail the job (err).
type EventTimeFailed func(ctx context.Context, rec operators.Record, cause error) (keep bool, err error)

// EventTimeJSOr is EventTimeJS whose failures go to failed instead of
// failing the job: a JS chain whose EventTime stage dead-letters to a
// side output this adapter reads.
func EventTimeJSOr(job, src, functions string, opts js.Options, failed EventTimeFailed) (EventTimeFactory, error) {
	const op = "source"
	cp, err := js.CompileChain(js.ChainSpec{Job: job, Functions: functions, Options: opts, KeepRaw: true,
		Stages: []js.Stage{{Operator: op, Kind: js.EventTime, Src: src, OnError: js.OnError{Mode: js.DeadLetter, Stream: "-"}}}})
	if err != nil {
		return nil, err
	}
	return func() (EventTimeFunc, error) {
		c, err := cp.New()
		if err != nil {
			return nil, fmt.Errorf("event-time chain: %w", err)
		}
		var out, in []operators.Record
		letters := map[string]string{} // origin → error
		c.SetSideOutput(operators.DeadLetterOutput(op), operators.EmitterFunc(func(r operators.Record) {
			m, _ := r.Value.(map[string]any)
			msg, _ := m["error"].(string)
			letters[r.Origin] = msg
		}))
		collect := operators.EmitterFunc(func(r operators.Record) { out = append(out, r) })
		return func(ctx context.Context, recs []operators.Record) ([]operators.Record, error) {
			in = append(in[:0], recs...)
			clear(out)
			out = out[:0]
			clear(letters)
			if err := c.Process(ctx, &operators.Batch{Records: recs}, collect); err != nil {
				return nil, err
			}
			if len(letters) == 0 {
				return out, nil
			}
			// Put the records that failed back where they were (or leave
			// them out): out keeps the input's order.
			merged := make([]operators.Record, 0, len(in))
			k := 0
			for _, r := range in {
				if msg, ok := letters[r.Origin]; ok {
					keep, err := failed(ctx, r, errors.New(msg))
					if err != nil {
						return nil, err
					}
					if keep {
						merged = append(merged, r)
					}
					continue
				}
				if k < len(out) && out[k].Origin == r.Origin {
					merged = append(merged, out[k])
					k++
				}
			}
			return merged, nil
		}, nil
	}, nil
}

// ChainNode makes a Node.New from a compiled JS chain (map, filter, key
// stages fused into one operator per task).
func ChainNode(cp *js.ChainProgram) func() (operators.Operator, error) {
	return func() (operators.Operator, error) { return cp.New() }
}

// SinkColumns maps a window's result columns (window.Compiled.
// ResultColumns) to sink columns: window_start and window_end become
// timestamps, the rest keep their types.
func SinkColumns(cols []aggregate.Column) []sinks.Column {
	out := make([]sinks.Column, len(cols))
	for i, c := range cols {
		t := sinks.ColumnType(c.Type)
		switch {
		case c.Name == sinks.ColWindowStart || c.Name == sinks.ColWindowEnd:
			t = sinks.Timestamp
		case c.Type == aggregate.Int64:
			t = sinks.Int64
		case c.Type == aggregate.Float64:
			t = sinks.Float64
		case c.Type == aggregate.String:
			t = sinks.String
		default:
			t = sinks.JSON
		}
		out[i] = sinks.Column{Name: c.Name, Type: t}
	}
	return out
}

// chainStats is js.Chain's counters.
type chainStats interface {
	Stats() (in, out int64, stages []js.StageStats)
	Batches() (native, goja int64)
}

// fieldAccess matches the most common event_time snippet, a plain field
// read such as "r => r.ts" or "(rec) => rec.time".
var fieldAccess = regexp.MustCompile(`^\s*\(?\s*([A-Za-z_$][\w$]*)\s*\)?\s*=>\s*([A-Za-z_$][\w$]*)\s*\.\s*([A-Za-z_$][\w$]*)\s*$`)

// fieldEventTime is FieldEventTime that also reads the field of raw JSON
// records (a stream source with RawJSON feeding a JS chain) without
// decoding the rest of the record.
func fieldEventTime(field string) EventTimeFactory {
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
						return nil, fmt.Errorf("event time of %s: %w", recs[i].Origin, err)
					}
				default:
					return nil, fmt.Errorf("event time of %s: record is not an object", recs[i].Origin)
				}
				t, err := ParseEventTime(v)
				if err != nil {
					return nil, fmt.Errorf("event time of %s: field %q: %w", recs[i].Origin, field, err)
				}
				recs[i].EventTime = t
			}
			return recs, nil
		}, nil
	}
}

// EventTimeJS makes the EventTimeFactory of a source's `event_time:`
// snippet. A plain field read ("r => r.ts") under on_error fail runs in Go
// (FieldEventTime: same accepted values — epoch ms numbers or strings,
// RFC 3339), saving a JS call per batch; anything else compiles to a JS
// chain with one EventTime stage.
func EventTimeJS(job, src, functions string, onError js.OnError, opts js.Options) (EventTimeFactory, error) {
	if m := fieldAccess.FindStringSubmatch(src); m != nil && m[1] == m[2] && onError.Mode == js.Fail {
		return fieldEventTime(m[3]), nil
	}
	// Its consumers are the graph's first operators: raw JSON records
	// (sources.StreamConfig.RawJSON) stay raw for them.
	cp, err := js.CompileChain(js.ChainSpec{Job: job, Functions: functions, Options: opts, KeepRaw: true,
		Stages: []js.Stage{{Operator: "source", Kind: js.EventTime, Src: src, OnError: onError}}})
	if err != nil {
		return nil, err
	}
	return ChainEventTime(cp), nil
}
