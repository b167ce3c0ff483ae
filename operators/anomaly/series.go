package anomaly

import (
	"fmt"
	"time"
)

// ScoreSeries runs a fresh detector for cfg over a single-field series and
// returns every point's result. It is the code path of `runnel detect` and
// of the NAB evaluation: one Score call per point, in order.
func ScoreSeries(cfg Config, ts []time.Time, values []float64) ([]Result, error) {
	if len(ts) != len(values) {
		return nil, fmt.Errorf("anomaly: %d timestamps but %d values", len(ts), len(values))
	}
	d, err := New(cfg)
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(values))
	v := make([]float64, 1)
	for i := range values {
		v[0] = values[i]
		out[i] = d.Score(ts[i], v)
	}
	return out, nil
}
