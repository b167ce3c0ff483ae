package jobs

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/anomaly"
	"github.com/runnel-dev/runnel/operators/detect"
	"github.com/runnel-dev/runnel/sinks"
)

// KindDetect is the operator kind that scores records for anomalies.
const KindDetect = "detect"

// DefaultDetectMethod is the anomaly method used when detect sets none.
const DefaultDetectMethod = "auto"

// Detect scores records for anomalies, one model per key.
type Detect struct {
	// Value lists the numeric fields scored together (one or more).
	Value []string `yaml:"value"`
	// Key is a JS snippet returning the model key; empty: the record's
	// key as set by the upstream window.
	Key string `yaml:"key"`
	// Method names the detector. Default auto.
	Method string `yaml:"method"`
	// Threshold is the anomaly_score in (0, 1] at or above which
	// is_anomaly is set; 0 means the method's default.
	Threshold float64 `yaml:"threshold"`
	// Seed makes randomized detectors reproducible. Default 0.
	Seed int64 `yaml:"seed"`
}

func init() {
	registerOperator(&operatorKind{
		Name: KindDetect,
		Rank: 40,
		Fields: []Field{
			{"", "mapping", "—", "streaming anomaly detection, one model per key"},
			{"value", "string or list of strings", "required", "numeric field(s) scored together"},
			{"key", "JS function", "the record's key from the upstream window", "`r => key`"},
			{"method", "string", "auto", "`" + strings.Join(anomaly.Methods, "`, `") + "` (see docs/anomaly.md)"},
			{"threshold", "number", "0 (the method's default)", "0 < t ≤ 1: `is_anomaly` when `anomaly_score` ≥ t"},
			{"seed", "int", "0", "any integer"},
		},
		Has: func(op *Operator) bool { return op.Detect != nil },
		Parse: func(p *parser, f fieldMap, op *Operator) {
			if d, ok := p.sub(f, "detect"); ok {
				op.Detect = parseDetect(p, d)
			}
		},
		Snippets: func(op *Operator) []snippetRef { return []snippetRef{{Field: "detect.key", Src: &op.Detect.Key}} },
		Validate: func(v *validator, op *Operator, p string) { validateDetect(v, op.Detect, p+".detect") },
		Reads: func(op *Operator, p string) []fieldRead {
			var out []fieldRead
			for k, f := range op.Detect.Value {
				out = append(out, fieldRead{Path: fmt.Sprintf("%s.detect.value[%d]", p, k), Field: f})
			}
			return out
		},
		Stateful: true,
		Build:    buildDetect,
	})
}

func parseDetect(p *parser, f fieldMap) *Detect {
	d := &Detect{}
	d.Value = p.names(f, "value", true)
	d.Key = p.str(f, "key")
	d.Method = p.str(f, "method")
	d.Threshold = p.number(f, "threshold")
	if n, path := p.scalar(f, "seed"); n != nil {
		v, err := strconv.ParseInt(n.Value, 10, 64)
		if err != nil {
			p.problem(n, path, CodeType, fmt.Sprintf("%q is not an integer", n.Value), "e.g. 42")
		}
		d.Seed = v
	}
	return d
}

func validateDetect(v *validator, d *Detect, p string) {
	if len(d.Value) == 0 {
		v.add(p+".value", CodeMissing, "detect needs the field(s) to score", "e.g. value: views, or value: [views, p95_ms]")
	}
	for i, f := range d.Value {
		if !fieldRE.MatchString(f) {
			v.add(fmt.Sprintf("%s.value[%d]", p, i), CodeInvalid, fmt.Sprintf("%q is not a field name", f), "a name like views, or a dotted path like stats.ms")
		}
	}
	seen := map[string]bool{}
	for i, f := range d.Value {
		if seen[f] {
			v.add(fmt.Sprintf("%s.value[%d]", p, i), CodeInvalid, fmt.Sprintf("%q is listed twice", f), "")
		}
		seen[f] = true
	}
	switch {
	case d.Method == "":
		d.Method = DefaultDetectMethod
	case !slices.Contains(anomaly.Methods, d.Method):
		v.add(p+".method", CodeInvalid, fmt.Sprintf("%q is not an anomaly detection method", d.Method), hintAllowed(d.Method, anomaly.Methods))
	}
	if math.IsNaN(d.Threshold) || d.Threshold < 0 || d.Threshold > 1 {
		v.add(p+".threshold", CodeInvalid, fmt.Sprintf("%g is out of range", d.Threshold), "0 < threshold ≤ 1 (anomaly scores are in [0, 1])")
	}
}

func buildDetect(b *builder, op *Operator, _ bool) error {
	d := op.Detect
	cfg := detect.Config{ID: op.ID, Fields: d.Value, Anomaly: anomaly.Config{Method: d.Method, Threshold: d.Threshold, Seed: d.Seed}}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("job %s: operator %s: %w", b.spec.Name, op.ID, err)
	}
	key, err := b.keyFunc(op.ID, d.Key, op)
	if err != nil {
		return err
	}
	b.node(engine.Node{ID: op.ID, Inputs: b.inputs(op.From), Key: key,
		New: func() (operators.Operator, error) { return detect.New(cfg) }})
	if in := b.columns[b.resolve(op.From[0])]; len(op.From) == 1 && in != nil {
		exp := sinks.Float64
		if len(d.Value) > 1 {
			exp = sinks.JSON
		}
		cols := append(append([]sinks.Column{}, in...),
			sinks.Column{Name: detect.FieldScore, Type: sinks.Float64}, sinks.Column{Name: detect.FieldIsAnomaly, Type: sinks.Bool},
			sinks.Column{Name: detect.FieldExpected, Type: exp}, sinks.Column{Name: detect.FieldLow, Type: exp},
			sinks.Column{Name: detect.FieldHigh, Type: exp}, explanationColumn)
		b.setColumns(op.ID, cols)
	}
	return nil
}

// explanationColumn is the detect operator's explanation: the field that
// moved the point most, which way, and how far in robust z units.
var explanationColumn = sinks.Column{Name: detect.FieldExplanation, Type: sinks.Struct, Fields: []sinks.Column{
	{Name: "field", Type: sinks.String}, {Name: "direction", Type: sinks.String}, {Name: "z", Type: sinks.Float64}}}
