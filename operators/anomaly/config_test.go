package anomaly

import (
	"errors"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	for _, m := range Methods {
		if err := (Config{Method: m}).Validate(); err != nil {
			t.Errorf("method %q: %v", m, err)
		}
	}
	for _, c := range []struct {
		cfg  Config
		want string // the field named, and what is allowed
	}{
		{Config{Method: "hmm"}, "method: unknown method \"hmm\"; want one of auto, novelty, knn, rcf, ensemble"},
		{Config{Threshold: 1.5}, "threshold: 1.5 is outside (0, 1]"},
		{Config{Threshold: -0.1}, "threshold:"},
		{Config{Fields: []string{"a", "a"}}, "fields: field \"a\" is listed twice"},
		{Config{Fields: []string{""}}, "fields: field 0 has an empty name"},
		{Config{ShingleSize: 100}, "shingle_size: 100 is outside [0, 64]"},
		{Config{SampleSize: 2}, "sample_size: 2 is too small"},
		{Config{History: 3, Neighbours: 5}, "history: 3 must exceed neighbours (5)"},
		{Config{Suppress: -2}, "suppress: -2 is outside [-1, 1048576]"},
	} {
		err := c.cfg.Validate()
		if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidConfig containing %q", c.cfg, err, c.want)
		}
		if _, err := New(c.cfg); err == nil {
			t.Errorf("New(%+v) accepted an invalid config", c.cfg)
		}
	}
}

func TestDefaultsResolve(t *testing.T) {
	c := Config{}.withDefaults()
	if c.Method != DefaultMethod || c.Threshold != DefaultThreshold(MethodAuto) || len(c.Fields) != 1 || c.Fields[0] != "value" {
		t.Errorf("zero Config resolves to %+v", c)
	}
	if r := (Config{Method: MethodRCF}).withDefaults(); r.ShingleSize != 4 || r.Segment != 2 {
		t.Errorf("rcf shingle %d×%d, want 4×2", r.ShingleSize, r.Segment)
	}
}
