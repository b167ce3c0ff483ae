// Package detect is the `detect` operator: streaming anomaly detection per
// key over numeric fields of records (typically window results), with one
// model (operators/anomaly Detector) per key. Each input record comes out
// with its anomaly verdict added; `runnel detect` runs the same operator
// over a CSV.
package detect

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/anomaly"
)

// Output fields added to each scored record.
const (
	FieldScore       = "anomaly_score"
	FieldIsAnomaly   = "is_anomaly"
	FieldExpected    = "expected"
	FieldLow         = "expected_low"
	FieldHigh        = "expected_high"
	FieldExplanation = "explanation"
)

// Config configures the operator.
type Config struct {
	// ID is the operator id, for errors.
	ID string
	// Fields are the numeric fields scored together.
	Fields []string
	// Anomaly configures each key's model (Fields is set from Fields).
	Anomaly anomaly.Config
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	if len(c.Fields) == 0 {
		return fmt.Errorf("detect %s: value: name at least one numeric field", c.ID)
	}
	a := c.Anomaly
	a.Fields = c.Fields
	if err := a.Validate(); err != nil {
		return fmt.Errorf("detect %s: %w", c.ID, err)
	}
	return nil
}

// Operator scores records per key. It is not safe for concurrent use; the
// runtime gives each task its own instance and routes a key to one task.
type Operator struct {
	cfg     Config
	models  map[string]anomaly.Detector
	skipped int64
}

// New makes a detect operator.
func New(cfg Config) (*Operator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Anomaly.Fields = cfg.Fields
	return &Operator{cfg: cfg, models: map[string]anomaly.Detector{}}, nil
}

// Skipped counts records without the numeric fields (passed through
// unscored).
func (o *Operator) Skipped() int64 { return o.skipped }

// Keys is the number of per-key models held.
func (o *Operator) Keys() int { return len(o.models) }

// Process scores each record in order. A record that lacks a field, or
// whose field is not a finite number, passes through unscored and counted.
func (o *Operator) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	vals := make([]float64, len(o.cfg.Fields))
	for _, r := range in.Records {
		m, ok := r.Value.(map[string]any)
		if !ok || !o.extract(m, vals) {
			o.skipped++
			out.Emit(r)
			continue
		}
		res, err := o.Score(r.Key, time.UnixMilli(r.EventTime), vals)
		if err != nil {
			return err
		}
		nm := make(map[string]any, len(m)+6)
		for k, v := range m {
			nm[k] = v
		}
		o.annotate(nm, res)
		r.Value = nm
		out.Emit(r)
	}
	return nil
}

// Score scores one point of a key's series.
func (o *Operator) Score(key string, ts time.Time, vals []float64) (anomaly.Result, error) {
	d := o.models[key]
	if d == nil {
		var err error
		if d, err = anomaly.New(o.cfg.Anomaly); err != nil {
			return anomaly.Result{}, fmt.Errorf("detect %s: %w", o.cfg.ID, err)
		}
		o.models[key] = d
	}
	return d.Score(ts, vals), nil
}

func (o *Operator) extract(m map[string]any, vals []float64) bool {
	for i, f := range o.cfg.Fields {
		v, ok := toFloat(m[f])
		if !ok {
			return false
		}
		vals[i] = v
	}
	return true
}

func toFloat(v any) (float64, bool) {
	var f float64
	switch t := v.(type) {
	case float64:
		f = t
	case int64:
		f = float64(t)
	case int:
		f = float64(t)
	case float32:
		f = float64(t)
	case json.Number:
		var err error
		if f, err = t.Float64(); err != nil {
			return 0, false
		}
	case string:
		var err error
		if f, err = strconv.ParseFloat(t, 64); err != nil {
			return 0, false
		}
	default:
		return 0, false
	}
	return f, !math.IsNaN(f) && !math.IsInf(f, 0)
}

// annotate adds the verdict to a record: single-field expectations as
// numbers, several fields' as objects by field name.
func (o *Operator) annotate(m map[string]any, res anomaly.Result) {
	m[FieldScore] = res.Score
	m[FieldIsAnomaly] = res.IsAnomaly
	pick := func(xs []float64) any {
		if len(o.cfg.Fields) == 1 && len(xs) == 1 {
			return xs[0]
		}
		obj := make(map[string]any, len(xs))
		for i, x := range xs {
			if i < len(o.cfg.Fields) {
				obj[o.cfg.Fields[i]] = x
			}
		}
		return obj
	}
	m[FieldExpected] = pick(res.Expected)
	m[FieldLow] = pick(res.Low)
	m[FieldHigh] = pick(res.High)
	m[FieldExplanation] = map[string]any{
		"field":     res.Explanation.Name,
		"direction": res.Explanation.Direction,
	}
}

// Close releases the models.
func (o *Operator) Close() error {
	o.models = nil
	return nil
}

// MarshalModels serialises every key's model (for checkpoints).
func (o *Operator) MarshalModels() (map[string][]byte, error) {
	out := make(map[string][]byte, len(o.models))
	for k, d := range o.models {
		b, err := d.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("detect %s: snapshot key %q: %w", o.cfg.ID, k, err)
		}
		out[k] = b
	}
	return out, nil
}

// RestoreModels loads models saved by MarshalModels.
func (o *Operator) RestoreModels(saved map[string][]byte) error {
	for k, b := range saved {
		d, err := anomaly.Restore(o.cfg.Anomaly, b)
		if err != nil {
			return fmt.Errorf("detect %s: restore key %q: %w", o.cfg.ID, k, err)
		}
		o.models[k] = d
	}
	return nil
}
