package anomaly

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
)

// Method names accepted in Config.Method.
const (
	MethodAuto     = "auto"     // the default: currently "ensemble"
	MethodNovelty  = "novelty"  // distance of a value to the nearest value in its history
	MethodKNN      = "knn"      // nearest-neighbour distance of the recent shape (shingle)
	MethodRCF      = "rcf"      // robust random cut forest on shingles
	MethodEnsemble = "ensemble" // the most severe of novelty, knn and rcf
	MethodARTime   = "artime"   // adaptive resonance over windowed features (artime.go)
)

// Methods lists the method names, "auto" first.
var Methods = []string{MethodAuto, MethodNovelty, MethodKNN, MethodRCF, MethodEnsemble, MethodARTime}

// ConcreteMethods lists the methods that "auto" may resolve to, i.e. every
// method except "auto" itself.
var ConcreteMethods = []string{MethodNovelty, MethodKNN, MethodRCF, MethodEnsemble, MethodARTime}

// DefaultMethod is what "auto" (or an empty Method) resolves to.
const DefaultMethod = MethodEnsemble

// Config configures a Detector. The zero value of every field but Fields
// means "the default"; Fields may be empty for a single unnamed value.
type Config struct {
	// Method is one of Methods; "" means "auto".
	Method string
	// Threshold is the score at or above which a point is an anomaly, in
	// (0, 1]; 0 means the method's default (DefaultThreshold).
	Threshold float64
	// Seed seeds the random cuts of rcf (the other methods use no
	// randomness): the same seed and input give the same scores.
	Seed int64
	// Fields names the values passed to Score, in order; it sets their
	// number. Empty means one value named "value".
	Fields []string

	// ShingleSize is how many elements form one sample (shingle) for rcf
	// and knn (default 8; rcf 4), and Segment how many consecutive points
	// each element averages (default 4; rcf 2): a shingle covers
	// ShingleSize×Segment points. ShingleSize 1 and Segment 1 disable
	// shingling.
	ShingleSize, Segment int
	// Trees and SampleSize size the random cut forest (defaults 10 and
	// 2048): each tree holds the last SampleSize shingles.
	Trees, SampleSize int
	// History is how many past values novelty, and past shingles knn,
	// compare against (default 2000); Neighbours is how many nearest
	// shingles knn averages (default 1).
	Neighbours, History int
	// Suppress is the number of points after a point during which points no
	// more severe are damped (severity ÷ 3), so one incident is reported
	// once (default 200; -1 turns suppression off).
	Suppress int
	// Probation is how many points artime learns from before it scores
	// (default DefaultProbation); it also sets artime's downsampling step,
	// a 104th of it.
	Probation int
	// Tuning holds the models' alarm levels and gates; zero fields take
	// DefaultTuning's values. Most users leave it alone: the threshold is
	// the knob. Cross-validation searches it (docs/anomaly.md).
	Tuning Tuning
}

// Tuning is the set of constants that turn what each model measures into
// a severity (1 at the model's alarm level). Every field is positive; zero
// means DefaultTuning's value.
type Tuning struct {
	// NoveltyAlarm: novelty distance, as a fraction of the range, that
	// alarms.
	NoveltyAlarm float64
	// NoiseGate: novelty distance, in noise standard deviations, that
	// alarms (the smaller of the two severities counts).
	NoiseGate float64
	// KNNAlarm: shape distance, as a fraction of the range, that alarms;
	// KNNAlarmLow a smaller one that alarms when its standard score among
	// the series' own shape distances also reaches KNNZAlarm.
	KNNAlarm, KNNAlarmLow, KNNZAlarm float64
	// RCFAlarm: standard score of the forest's collusive displacement that
	// alarms.
	RCFAlarm float64
	// WhiteRatio: noise/spread ratio above which a field looks like white
	// noise; novelty there also needs a robust z of WhiteZAlarm to alarm.
	WhiteRatio, WhiteZAlarm float64
	// Damp divides the severity of a suppressed point (at least 1).
	Damp float64
	// LevelQuantile and Level set the ensemble's own alarm level per
	// series: when the LevelQuantile quantile of a series' last
	// levelHistory severities is above Level, its severities are divided
	// by their ratio, so a series that keeps scoring near the alarm needs
	// a proportionally larger change to alarm (LevelQuantile in (0, 1)).
	LevelQuantile, Level float64
}

// DefaultTuning is the tuning used for fields left zero.
var DefaultTuning = Tuning{
	NoveltyAlarm: 0.02,
	NoiseGate:    0.8,
	KNNAlarm:     0.25,
	KNNAlarmLow:  0.06,
	KNNZAlarm:    5,
	RCFAlarm:     4,
	WhiteRatio:   0.6,
	WhiteZAlarm:  5,
	Damp:         3,
	// Chosen per category in cross-validation (docs/anomaly.md).
	LevelQuantile: 0.95,
	Level:         0.3,
}

// withDefaults returns t with zero fields set from DefaultTuning.
func (t Tuning) withDefaults() Tuning {
	def := func(v *float64, d float64) {
		if *v == 0 {
			*v = d
		}
	}
	d := DefaultTuning
	def(&t.NoveltyAlarm, d.NoveltyAlarm)
	def(&t.NoiseGate, d.NoiseGate)
	def(&t.KNNAlarm, d.KNNAlarm)
	def(&t.KNNAlarmLow, d.KNNAlarmLow)
	def(&t.KNNZAlarm, d.KNNZAlarm)
	def(&t.RCFAlarm, d.RCFAlarm)
	def(&t.WhiteRatio, d.WhiteRatio)
	def(&t.WhiteZAlarm, d.WhiteZAlarm)
	def(&t.Damp, d.Damp)
	def(&t.LevelQuantile, d.LevelQuantile)
	def(&t.Level, d.Level)
	return t
}

// validate checks that every field set is a finite positive number (Damp
// at least 1).
func (t Tuning) validate() error {
	fields := []struct {
		name string
		v    float64
	}{
		{"novelty_alarm", t.NoveltyAlarm}, {"noise_gate", t.NoiseGate},
		{"knn_alarm", t.KNNAlarm}, {"knn_alarm_low", t.KNNAlarmLow}, {"knn_z_alarm", t.KNNZAlarm},
		{"rcf_alarm", t.RCFAlarm}, {"white_ratio", t.WhiteRatio}, {"white_z_alarm", t.WhiteZAlarm},
		{"damp", t.Damp}, {"level_quantile", t.LevelQuantile}, {"level", t.Level},
	}
	for _, f := range fields {
		if math.IsNaN(f.v) || math.IsInf(f.v, 0) || f.v < 0 {
			return fmt.Errorf("%w: tuning.%s: %v is not a finite non-negative number (0 means the default)", ErrInvalidConfig, f.name, f.v)
		}
	}
	if t.Damp != 0 && t.Damp < 1 {
		return fmt.Errorf("%w: tuning.damp: %v is below 1", ErrInvalidConfig, t.Damp)
	}
	if t.LevelQuantile >= 1 {
		return fmt.Errorf("%w: tuning.level_quantile: %v is not below 1", ErrInvalidConfig, t.LevelQuantile)
	}
	return nil
}

// Defaults for Config fields left zero.
const (
	DefaultShingleSize = 8
	DefaultSegment     = 4
	DefaultTrees       = 10
	DefaultSampleSize  = 2048
	DefaultNeighbours  = 1
	DefaultHistory     = 2000
	DefaultSuppress    = 200
)

// DefaultThreshold returns the default Threshold of a method: a little
// stricter than the threshold that maximised its NAB standard-profile score,
// so that plain noise and unbroken seasonality stay below it (see
// docs/anomaly.md for the measured optima).
func DefaultThreshold(method string) float64 {
	switch resolve(method) {
	case MethodKNN:
		return 0.6
	case MethodRCF:
		return 0.7
	case MethodARTime:
		return 0.5
	default: // novelty, ensemble
		return 0.65
	}
}

// ErrInvalidConfig is wrapped by every Validate error.
var ErrInvalidConfig = errors.New("anomaly: invalid config")

// Validate checks cfg. Errors name the field and what it allows.
func (c Config) Validate() error {
	bad := func(field, format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, args...))
	}
	if c.Method != "" && !slices.Contains(Methods, c.Method) {
		return bad("method", "unknown method %q; want one of %s", c.Method, strings.Join(Methods, ", "))
	}
	if math.IsNaN(c.Threshold) || c.Threshold < 0 || c.Threshold > 1 {
		return bad("threshold", "%v is outside (0, 1] (0 means the method's default)", c.Threshold)
	}
	seen := map[string]bool{}
	for i, f := range c.Fields {
		if f == "" {
			return bad("fields", "field %d has an empty name", i)
		}
		if seen[f] {
			return bad("fields", "field %q is listed twice", f)
		}
		seen[f] = true
	}
	checks := []struct {
		name      string
		v, lo, hi int
	}{
		{"shingle_size", c.ShingleSize, 0, 64},
		{"segment", c.Segment, 0, 64},
		{"trees", c.Trees, 0, 1000},
		{"sample_size", c.SampleSize, 0, 1 << 16},
		{"neighbours", c.Neighbours, 0, 100},
		{"history", c.History, 0, 1 << 16},
		{"suppress", c.Suppress, -1, 1 << 20},
		{"probation", c.Probation, 0, 1 << 20},
	}
	for _, ch := range checks {
		if ch.v < ch.lo || ch.v > ch.hi {
			return bad(ch.name, "%d is outside [%d, %d] (0 means the default)", ch.v, ch.lo, ch.hi)
		}
	}
	if c.Probation != 0 && c.Probation < minProbation {
		return bad("probation", "%d is too short; want at least %d", c.Probation, minProbation)
	}
	if c.SampleSize != 0 && c.SampleSize < 4 {
		return bad("sample_size", "%d is too small; want at least 4", c.SampleSize)
	}
	if c.History != 0 && c.Neighbours != 0 && c.History <= c.Neighbours {
		return bad("history", "%d must exceed neighbours (%d)", c.History, c.Neighbours)
	}
	return c.Tuning.validate()
}

// withDefaults returns c with zero fields set to their defaults and Method
// resolved ("auto" becomes the concrete default).
func (c Config) withDefaults() Config {
	c.Method = resolve(c.Method)
	if c.Threshold == 0 {
		c.Threshold = DefaultThreshold(c.Method)
	}
	if len(c.Fields) == 0 {
		c.Fields = []string{"value"}
	}
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	if c.Method == MethodRCF {
		// The forest scores best on short shingles (docs/anomaly.md).
		def(&c.ShingleSize, 4)
		def(&c.Segment, 2)
	}
	def(&c.ShingleSize, DefaultShingleSize)
	def(&c.Segment, DefaultSegment)
	def(&c.Trees, DefaultTrees)
	def(&c.SampleSize, DefaultSampleSize)
	def(&c.Neighbours, DefaultNeighbours)
	def(&c.History, DefaultHistory)
	if c.Method == MethodARTime {
		def(&c.Suppress, -1) // artime masks repeats itself
	}
	def(&c.Suppress, DefaultSuppress)
	def(&c.Probation, DefaultProbation)
	if c.Suppress < 0 {
		c.Suppress = 0
	}
	c.Tuning = c.Tuning.withDefaults()
	return c
}

func resolve(method string) string {
	if method == "" || method == MethodAuto {
		return DefaultMethod
	}
	return method
}
