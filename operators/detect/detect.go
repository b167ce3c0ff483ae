// Package detect is the `detect` operator: streaming anomaly detection per
// key over numeric fields of records (typically window results), with one
// model (operators/anomaly Detector) per key. Each input record comes out
// with its anomaly verdict added; `runnel detect` runs the same operator
// over a CSV.
//
// # State
//
// The models live in memory. Given a key space (operators.Stateful
// OpenState, when the job checkpoints) the operator loads the models
// stored there, and at each SnapshotState writes the models of the keys
// scored since the last one, in one batch: key 'k' followed by the record
// key's bytes, value the model's MarshalBinary. Models are never removed.
// A restored operator scores exactly as one that never stopped.
package detect

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/anomaly"
	"github.com/runnel-dev/runnel/state"
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
// It implements operators.Operator and operators.Stateful.
type Operator struct {
	cfg     Config
	models  map[string]*model
	skipped int64
	space   *state.Space // set by OpenState
	changed []*model     // models scored since the last SnapshotState
}

var _ operators.Stateful = (*Operator)(nil)

// model is one key's detector.
type model struct {
	key     string
	d       anomaly.Detector
	changed bool // in Operator.changed
}

// New makes a detect operator.
func New(cfg Config) (*Operator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.Anomaly.Fields = cfg.Fields
	return &Operator{cfg: cfg, models: map[string]*model{}}, nil
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
	m := o.models[key]
	if m == nil {
		d, err := anomaly.New(o.cfg.Anomaly)
		if err != nil {
			return anomaly.Result{}, fmt.Errorf("detect %s: %w", o.cfg.ID, err)
		}
		m = &model{key: key, d: d}
		o.models[key] = m
	}
	if !m.changed && o.space != nil {
		m.changed = true
		o.changed = append(o.changed, m)
	}
	return m.d.Score(ts, vals), nil
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

// toFloat reads a field as a finite number (operators.Value.Float: Go
// numbers, json.Number, numeric strings).
func toFloat(v any) (float64, bool) {
	f, ok := operators.ValueOf(v).Float()
	return f, ok && !math.IsNaN(f) && !math.IsInf(f, 0)
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
		"z":         math.Round(res.Explanation.Z*100) / 100,
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
	for k, m := range o.models {
		b, err := m.d.MarshalBinary()
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
		o.models[k] = &model{key: k, d: d}
	}
	return nil
}

// modelKey is a model's key in the space: 'k' and the record key.
func modelKey(key string) []byte { return append([]byte{'k'}, key...) }

// OpenState implements operators.Stateful: it loads the models stored in
// sp, and from now on SnapshotState writes the changed ones there. It must
// be called before the first record.
func (o *Operator) OpenState(sp *state.Space) error {
	if len(o.models) > 0 {
		return fmt.Errorf("detect %s: open state: the operator already holds %d models", o.cfg.ID, len(o.models))
	}
	err := sp.Scan([]byte{'k'}, func(k, v []byte) error {
		d, err := anomaly.Restore(o.cfg.Anomaly, v)
		if err != nil {
			return fmt.Errorf("restore key %q: %w", k[1:], err)
		}
		key := string(k[1:])
		o.models[key] = &model{key: key, d: d}
		return nil
	})
	if err != nil {
		return fmt.Errorf("detect %s: open state: %w", o.cfg.ID, err)
	}
	o.space = sp
	return nil
}

// SnapshotState implements operators.Stateful: it writes the models of the
// keys scored since the last snapshot, in one batch.
func (o *Operator) SnapshotState() error {
	if o.space == nil {
		return fmt.Errorf("detect %s: snapshot state: OpenState was not called", o.cfg.ID)
	}
	b := o.space.NewBatch()
	for _, m := range o.changed {
		v, err := m.d.MarshalBinary()
		if err != nil {
			return fmt.Errorf("detect %s: snapshot key %q: %w", o.cfg.ID, m.key, err)
		}
		b.Set(modelKey(m.key), v)
	}
	if err := b.Commit(); err != nil {
		return fmt.Errorf("detect %s: snapshot state: %w", o.cfg.ID, err)
	}
	for _, m := range o.changed {
		m.changed = false
	}
	clear(o.changed)
	o.changed = o.changed[:0]
	return nil
}
