package js

import (
	"encoding/json"

	"github.com/runnel-dev/runnel/operators"
)

// handle applies the stage's on_error policy to a failed record.
func (c *Chain) handle(stage int, rec *operators.Record, cause error) error {
	st := c.spec.Stages[stage]
	c.errs[stage].errors.Add(1)
	jerr := &Error{Job: c.spec.Job, Operator: st.Operator, Origin: rec.Origin, Err: cause}
	switch st.OnError.Mode {
	case Skip:
		c.errs[stage].skipped.Add(1)
		if c.spec.OnSkip != nil {
			c.spec.OnSkip(Skipped{Operator: st.Operator, Origin: rec.Origin, Record: deadLetterRecord(rec.Value), Err: cause})
		}
		return nil
	case DeadLetter:
		c.errs[stage].dead.Add(1)
		if e := c.side[operators.DeadLetterOutput(st.Operator)]; e != nil {
			e.Emit(operators.Record{
				Value: map[string]any{"error": jerr.Error(), "job": c.spec.Job, "operator": st.Operator,
					"origin": rec.Origin, "record": deadLetterRecord(rec.Value)},
				Key: rec.Key, EventTime: rec.EventTime, Origin: rec.Origin,
			})
		}
		return nil
	default:
		return jerr
	}
}

// deadLetterRecord is the record of a dead letter: raw JSON stays JSON
// (not base64), bytes that are not JSON become a string.
func deadLetterRecord(v any) any {
	if isRawJSON(v) {
		b, _ := v.([]byte)
		if m, ok := v.(json.RawMessage); ok {
			b = m
		}
		if json.Valid(b) {
			return json.RawMessage(b)
		}
		return string(b)
	}
	return v
}

// SideOutputNames lists the dead-letter outputs of dead_letter stages.
func (c *Chain) SideOutputNames() []string {
	var names []string
	for _, st := range c.spec.Stages {
		if st.OnError.Mode == DeadLetter {
			names = append(names, operators.DeadLetterOutput(st.Operator))
		}
	}
	return names
}

// SetSideOutput wires a dead-letter output.
func (c *Chain) SetSideOutput(name string, out operators.Emitter) { c.side[name] = out }
