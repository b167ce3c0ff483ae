package anomaly

import "time"

// Severities runs a fresh detector for cfg over a single-field series, one
// point after another as Score does, and returns each point's severity as
// the models measured it: before suppression and the per-series level.
// Settle turns such severities into the scores a detector for cfg gives
// the same series. Suppress, Tuning.Damp, Tuning.Level and
// Tuning.LevelQuantile act only in Settle, so an evaluation can score
// many settings of them from one run of the models.
func Severities(cfg Config, ts []time.Time, values []float64) ([]float64, error) {
	det, err := New(cfg)
	if err != nil {
		return nil, err
	}
	d := det.(*detector)
	out := make([]float64, len(values))
	v := make([]float64, 1)
	for i := range values {
		v[0] = values[i]
		_, out[i] = d.measure(v)
	}
	return out, nil
}

// Settle returns the scores a fresh detector for cfg gives a series whose
// models measured the severities sev (from Severities with a Config that
// differs from cfg at most in Suppress, Tuning.Damp, Tuning.Level and
// Tuning.LevelQuantile): the same numbers Score returns, bit for bit.
func Settle(cfg Config, sev []float64) ([]float64, error) {
	det, err := New(cfg)
	if err != nil {
		return nil, err
	}
	d := det.(*detector)
	out := make([]float64, len(sev))
	for i, s := range sev {
		out[i] = scoreOf(d.settle(s))
	}
	return out, nil
}
