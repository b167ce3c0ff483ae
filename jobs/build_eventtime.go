package jobs

// How a source's event_time snippet becomes the runtime's event-time
// function: JS knowledge that belongs where jobs are built, not in the
// runtime, which only runs the EventTimeFactory it is given.

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
)

// fieldAccess matches the most common event_time snippet, a plain field
// read such as "r => r.ts" or "(rec) => rec.time".
var fieldAccess = regexp.MustCompile(`^\s*\(?\s*([A-Za-z_$][\w$]*)\s*\)?\s*=>\s*([A-Za-z_$][\w$]*)\s*\.\s*([A-Za-z_$][\w$]*)\s*$`)

// eventTimeJS makes the EventTimeFactory of a source's event_time snippet.
// A plain field read ("r => r.ts") under on_error fail runs in Go
// (engine.FieldEventTime: the same accepted values — epoch ms numbers
// or strings, RFC 3339), saving a JS call per batch; anything else
// compiles to a JS chain with one EventTime stage.
func eventTimeJS(job, src, functions string, onError js.OnError, opts js.Options) (engine.EventTimeFactory, error) {
	if m := fieldAccess.FindStringSubmatch(src); m != nil && m[1] == m[2] && onError.Mode == js.Fail {
		return engine.FieldEventTime(m[3]), nil
	}
	// Its consumers are the graph's first operators: raw JSON records
	// (sources.StreamConfig.RawJSON) stay raw for them.
	cp, err := js.CompileChain(js.ChainSpec{Job: job, Functions: functions, Options: opts, KeepRaw: true,
		Stages: []js.Stage{{Operator: SourceID, Kind: js.EventTime, Src: src, OnError: onError}}})
	if err != nil {
		return nil, err
	}
	return engine.ChainEventTime(cp), nil
}

// eventTimeFailed decides about a record whose event time a source's
// event_time chain could not read (cause): keep it in its place (its
// EventTime still the arrival time), drop it, or fail the job (err).
type eventTimeFailed func(ctx context.Context, rec operators.Record, cause error) (keep bool, err error)

// eventTimeJSOr is eventTimeJS whose failures go to failed instead of
// failing the job: a JS chain whose EventTime stage dead-letters to a
// side output this adapter reads.
func eventTimeJSOr(job, src, functions string, opts js.Options, failed eventTimeFailed) (engine.EventTimeFactory, error) {
	const op = SourceID
	cp, err := js.CompileChain(js.ChainSpec{Job: job, Functions: functions, Options: opts, KeepRaw: true,
		Stages: []js.Stage{{Operator: op, Kind: js.EventTime, Src: src, OnError: js.OnError{Mode: js.DeadLetter, Stream: "-"}}}})
	if err != nil {
		return nil, err
	}
	return func() (engine.EventTimeFunc, error) {
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
