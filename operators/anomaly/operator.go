package anomaly

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"

	"github.com/runnel-dev/runnel/operators"
)

// OperatorConfig configures the detect operator of a job file:
// `detect: {value: FIELD or [FIELDS], key: FIELD, method: ..., threshold: ...}`.
type OperatorConfig struct {
	// Detector configures each key's detector; its Fields are the record
	// fields scored (value: in the job file), at least one.
	Detector Config
	// KeyField names the record field that keys the detectors. Empty means
	// the record's Key (set by a keyed window), or "" for one detector.
	KeyField string
}

// Validate checks the config. Errors name the field.
func (c OperatorConfig) Validate() error {
	if len(c.Detector.Fields) == 0 {
		return fmt.Errorf("%w: value: name at least one numeric field to score", ErrInvalidConfig)
	}
	return c.Detector.Validate()
}

// Operator is the detect operator: it keeps one Detector per key and passes
// every record on with its verdict added as fields:
//
//	anomaly_score      float64 in [0, 1]
//	is_anomaly         bool
//	expected_<field>   float64, and low_<field>, high_<field>, per field
//	anomaly_field      the field that contributed most
//	anomaly_direction  "high", "low" or ""
//
// A record whose Value is not an object is passed on unchanged. A missing
// or non-numeric field counts as missing (the field's previous value is
// used). Memory grows with the number of keys, bounded per key.
type Operator struct {
	cfg       OperatorConfig
	detectors map[string]Detector
	values    []float64
}

// NewOperator returns a detect operator, or an error if cfg is invalid.
func NewOperator(cfg OperatorConfig) (*Operator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Operator{cfg: cfg, detectors: map[string]Detector{}, values: make([]float64, len(cfg.Detector.Fields))}, nil
}

var _ operators.Operator = (*Operator)(nil)

// Process scores each record in order and emits it with its verdict.
func (o *Operator) Process(_ context.Context, in *operators.Batch, out operators.Emitter) error {
	for _, rec := range in.Records {
		obj, ok := rec.Value.(map[string]any)
		if !ok {
			out.Emit(rec)
			continue
		}
		key := rec.Key
		if o.cfg.KeyField != "" {
			key = fmt.Sprint(obj[o.cfg.KeyField])
		}
		d, ok := o.detectors[key]
		if !ok {
			var err error
			if d, err = New(o.cfg.Detector); err != nil {
				return fmt.Errorf("detect: new detector for key %q: %w", key, err)
			}
			o.detectors[key] = d
		}
		for i, f := range o.cfg.Detector.Fields {
			o.values[i] = number(obj[f])
		}
		r := d.Score(time.UnixMilli(rec.EventTime), o.values)
		res := make(map[string]any, len(obj)+5+3*len(o.values))
		for k, v := range obj {
			res[k] = v
		}
		res["anomaly_score"] = r.Score
		res["is_anomaly"] = r.IsAnomaly
		for i, f := range o.cfg.Detector.Fields {
			res["expected_"+f] = r.Expected[i]
			res["low_"+f] = r.Low[i]
			res["high_"+f] = r.High[i]
		}
		res["anomaly_field"] = r.Explanation.Name
		res["anomaly_direction"] = r.Explanation.Direction
		rec.Value = res
		out.Emit(rec)
	}
	return nil
}

// number reads a JSON-like value as a float64; NaN if it is not a number.
func number(v any) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	case int:
		return float64(x)
	case float32:
		return float64(x)
	case string:
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return f
		}
	}
	return math.NaN()
}

// Close releases nothing; it exists for the Operator contract.
func (o *Operator) Close() error { return nil }

// Keys returns the keys that have a detector, sorted.
func (o *Operator) Keys() []string {
	keys := make([]string, 0, len(o.detectors))
	for k := range o.detectors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Snapshot serialises every key's detector, for a checkpoint.
func (o *Operator) Snapshot() ([]byte, error) {
	states := make(map[string][]byte, len(o.detectors))
	for k, d := range o.detectors {
		b, err := d.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("detect: snapshot key %q: %w", k, err)
		}
		states[k] = b
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(states); err != nil {
		return nil, fmt.Errorf("detect: snapshot: %w", err)
	}
	return buf.Bytes(), nil
}

// RestoreSnapshot replaces every detector with those of a Snapshot taken
// by an operator of the same config.
func (o *Operator) RestoreSnapshot(data []byte) error {
	var states map[string][]byte
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&states); err != nil {
		return fmt.Errorf("%w: detect snapshot: %v", ErrBadState, err)
	}
	detectors := make(map[string]Detector, len(states))
	for k, b := range states {
		d, err := Restore(o.cfg.Detector, b)
		if err != nil {
			return fmt.Errorf("detect: restore key %q: %w", k, err)
		}
		detectors[k] = d
	}
	o.detectors = detectors
	return nil
}
