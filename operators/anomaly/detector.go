package anomaly

import (
	"math"
	"math/rand/v2"
	"time"
)

// Detector scores the points of one series (one key), in order, with
// bounded memory. It is not safe for concurrent use; keep one per key.
type Detector interface {
	// Score scores one point and then learns from it. values holds one
	// value per Config.Fields, in that order; NaN and ±Inf are treated as
	// missing and replaced by the field's previous value. Points must come
	// in time order; the methods use their order, not ts.
	Score(ts time.Time, values []float64) Result
	// MarshalBinary serialises the detector's learned state, for
	// checkpoints. Restore with the same Config brings it back.
	MarshalBinary() ([]byte, error)
}

// Result is the verdict on one point.
type Result struct {
	// Score is the anomaly score in [0, 1]; higher is more anomalous.
	Score float64
	// IsAnomaly is Score >= Config.Threshold.
	IsAnomaly bool
	// Expected is each field's expected value (the median of its recent
	// values), and [Low, High] the range a normal value falls in (median ±
	// 3 robust standard deviations).
	Expected, Low, High []float64
	Explanation         Explanation
}

// Explanation says which input field moved the point away from its
// expected value most, and how.
type Explanation struct {
	// Field is the index in Config.Fields of the strongest contributor and
	// Name its name.
	Field int
	Name  string
	// Direction is "high" if that field is above its expected value, "low"
	// if below, "" if it equals it.
	Direction string
	// Z says how unusual: that field's robust z-score against its recent
	// baseline (its distance from the median of the last 64 points in
	// robust standard deviations, 1.4826 × MAD), signed like Direction.
	Z float64
	// Contributions has one entry per field: the field's share of the total
	// deviation (robust z-scores, so fields of different units compare),
	// signed by direction. Absolute values sum to 1, or all are 0.
	Contributions []float64
}

// Sizes shared by the methods. The alarm levels and gates are Tuning's.
// Severities are in units of a model's alarm level: severity 1 is score
// 0.5.
const (
	baselineSize = 64   // points in the rolling median/MAD baseline
	warmup       = 50   // points scored 0 while the value range settles
	calHistory   = 1000 // raw scores a calibrator compares against
	calWarmup    = 100  // raw scores before a calibrator leaves 0
	maxSeverity  = 1e6  // cap, for series whose range is still zero
	// whiteAvgPoints is the span of the slow average of a field's
	// noise/spread ratio, and whiteAvgBar the average over which a field
	// counts as white noise even while its current ratio dips below
	// Tuning.WhiteRatio.
	whiteAvgPoints = 128
	whiteAvgBar    = 0.8
	youngPoints    = 150 // points during which every field is treated as white noise
)

// detector is the one implementation of Detector; a method is the set of
// models it runs.
type detector struct {
	cfg Config
	st  *state
	rng *rand.Rand
	inv []float64 // scratch: 1/range per shingle coordinate
}

// state is everything a detector learns; it is what MarshalBinary writes.
type state struct {
	Version int
	Method  string
	Fields  int
	Seen    int64
	Last    []float64 // last finite value per field
	Lo, Hi  []float64 // smallest and largest value seen per field
	Window  []float64 // the last ShingleSize×Segment points, oldest first
	Shingle []float64 // Window as ShingleSize segment means, oldest first
	Base    *baseline
	Novelty *knn
	KNN     *knn
	Forest  *forest
	Cal     *calibrator // for the forest's raw scores
	// WhiteAvg is, per field, a slow moving average of the noise/spread
	// ratio the white-noise gate tests (nil until the gate first runs).
	WhiteAvg []float64
	KCal     *calibrator // for the knn distances
	ART      []*artime   // one per field (artime)
	Sup      *suppressor
	// Level is the ensemble's per-series alarm level (nil for the other
	// methods).
	Level *level
	PCG   []byte
	pcg   *rand.PCG
}

const stateVersion = 1

// uses says which models a method runs.
type uses struct{ novelty, knn, rcf, artime bool }

func models(method string) uses {
	switch method {
	case MethodNovelty:
		return uses{novelty: true}
	case MethodKNN:
		return uses{knn: true}
	case MethodRCF:
		return uses{rcf: true}
	case MethodARTime:
		return uses{artime: true}
	default:
		return ensembleModels
	}
}

var ensembleModels = uses{novelty: true, knn: true}

// New returns a detector for cfg, or an error if cfg is invalid.
func New(cfg Config) (Detector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	nf := len(c.Fields)
	dim := nf * c.ShingleSize
	st := &state{
		Version: stateVersion,
		Method:  c.Method,
		Fields:  nf,
		Last:    make([]float64, nf),
		Lo:      make([]float64, nf),
		Hi:      make([]float64, nf),
		Window:  make([]float64, dim*c.Segment),
		Shingle: make([]float64, dim),
		Base:    newBaseline(nf, baselineSize),
		Sup:     &suppressor{Span: c.Suppress},
	}
	st.pcg = rand.NewPCG(uint64(c.Seed), 0x52554e4e454c) // "RUNNEL"
	u := models(c.Method)
	if u.novelty {
		st.Novelty = newKNN(nf, 1, c.History, 1)
	}
	if u.knn {
		st.KNN = newKNN(dim, c.Neighbours, c.History, c.ShingleSize*c.Segment)
		st.KCal = newCalibrator(calHistory, calWarmup)
	}
	if u.rcf {
		st.Forest = newForest(dim, c.Trees, c.SampleSize)
		st.Cal = newCalibrator(calHistory, calWarmup)
	}
	if u.artime {
		st.ART = newARTimes(nf, c.Probation)
	}
	if c.Method == MethodEnsemble {
		st.Level = newLevel(levelHistory)
	}
	return &detector{cfg: c, st: st, rng: rand.New(st.pcg)}, nil
}

// maxValue bounds the values a detector works on: one beyond ±maxValue
// counts as ±maxValue. Squares and sums of squares of such values stay
// finite, so no model's state can overflow (a state holding an infinity
// would not restore from a checkpoint).
const maxValue = 1e100

func (d *detector) Score(_ time.Time, values []float64) Result {
	res, sev := d.measure(values)
	res.Score = scoreOf(d.settle(sev))
	res.IsAnomaly = res.Score >= d.cfg.Threshold
	return res
}

// measure learns one point and returns its explanation and the models'
// severity, before suppression and the per-series level.
func (d *detector) measure(values []float64) (Result, float64) {
	st := d.st
	tn := &d.cfg.Tuning
	nf := st.Fields
	x := make([]float64, nf)
	for i := range nf {
		v := math.NaN()
		if i < len(values) {
			v = values[i]
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			v = st.Last[i]
		}
		v = max(-maxValue, min(v, maxValue))
		x[i] = v
		st.Last[i] = v
		if st.Seen == 0 {
			st.Lo[i], st.Hi[i] = v, v
		}
		st.Lo[i] = min(st.Lo[i], v)
		st.Hi[i] = max(st.Hi[i], v)
	}
	res := d.explain(x)
	white := math.Inf(1) // gate for series that look like white noise
	if st.Base.Count >= baselineSize/2 {
		white = d.whiteGate(x, st.Seen < youngPoints)
	}
	st.Base.add(x)

	copy(st.Window, st.Window[nf:])
	copy(st.Window[len(st.Window)-nf:], x)
	st.Seen++
	full := st.Seen >= int64(len(st.Window)/nf)
	if full {
		d.segmentMeans()
	}
	inv := d.inverseRanges()

	// Each model gives a severity: 1 at its alarm level, 0 for nothing.
	sev := 0.0
	if st.Novelty != nil {
		if r := st.Novelty.update(x, inv[:nf]); r >= 0 {
			s := r / tn.NoveltyAlarm
			if st.Base.Count > 2 {
				// r is in units of the range; compare it with the noise too,
				// so that a new record of plain noise is not an alarm.
				g := 0.0
				for f := range nf {
					g = max(g, st.Base.noise(f)*inv[f])
				}
				if g > 0 {
					s = min(s, r/(tn.NoiseGate*g))
				}
				s = min(s, white)
			}
			sev = max(sev, s)
		}
	}
	if st.KNN != nil && full {
		if r := st.KNN.update(st.Shingle, inv); r >= 0 {
			s := r / tn.KNNAlarm
			// A smaller shape change still alarms when it is extreme for
			// this series' own shape distances.
			z := st.KCal.update(r)
			s = max(s, min(r/tn.KNNAlarmLow, z/tn.KNNZAlarm))
			sev = max(sev, s)
		}
	}
	if st.Forest != nil && full {
		z := st.Cal.update(st.Forest.update(st.Shingle, d.rng))
		sev = max(sev, z/tn.RCFAlarm)
	}
	if st.ART != nil {
		sev = max(sev, d.artSeverity(x, &res))
	}
	if st.Seen <= int64(warmup) || math.IsNaN(sev) {
		// NaN comes only from ranges too wide for float64 (±1e308).
		sev = 0
	}
	return res, min(sev, maxSeverity)
}

// scoreOf maps a settled severity in [0, ∞) to a score in [0, 1).
func scoreOf(sev float64) float64 { return sev / (sev + 1) }

// settle applies suppression and the per-series level to a severity
// measure returned: the severity the score is made of.
func (d *detector) settle(sev float64) float64 {
	st, tn := d.st, &d.cfg.Tuning
	if st.Sup.Span > 0 {
		sev = st.Sup.apply(sev, tn.Damp)
	}
	if st.Level != nil {
		sev = st.Level.apply(sev, tn.LevelQuantile, tn.Level)
	}
	return sev
}

// segmentMeans sets the shingle to the piecewise aggregate of the window:
// the mean of each run of Segment points, per field. Averaging lets a short
// shingle cover a long stretch (a good part of a season) with less noise.
func (d *detector) segmentMeans() {
	st, seg := d.st, d.cfg.Segment
	nf := st.Fields
	for j := range len(st.Shingle) / nf {
		for f := range nf {
			sum := 0.0
			for k := range seg {
				sum += st.Window[(j*seg+k)*nf+f]
			}
			st.Shingle[j*nf+f] = sum / float64(seg)
		}
	}
}

// inverseRanges returns, per shingle coordinate, 1 / the observed range of
// its field, so that distances are fractions of the range and fields of
// different units compare. A field that has not varied gets a tiny range:
// any change of a constant series is an anomaly.
func (d *detector) inverseRanges() []float64 {
	st := d.st
	if len(d.inv) != len(st.Shingle) {
		d.inv = make([]float64, len(st.Shingle))
	}
	for i := range d.inv {
		f := i % st.Fields
		r := st.Hi[f] - st.Lo[f]
		r = max(r, 1e-9*(math.Abs(st.Hi[f])+math.Abs(st.Lo[f])), 1e-300)
		d.inv[i] = 1 / r
	}
	return d.inv
}

func robustZ(v, med, scale float64) float64 {
	dev := math.Abs(v - med)
	if dev == 0 {
		return 0
	}
	floor := 1e-6 * (math.Abs(med) + 1e-9)
	return dev / math.Max(scale, floor)
}

// explain fills the expected range and explanation of a point from the
// baseline, before the point is learned.
func (d *detector) explain(x []float64) Result {
	nf := len(x)
	res := Result{
		Expected: make([]float64, nf), Low: make([]float64, nf), High: make([]float64, nf),
		Explanation: Explanation{Contributions: make([]float64, nf)},
	}
	total := 0.0
	zs := make([]float64, nf)
	for f, v := range x {
		med, scale := v, 0.0
		if d.st.Base.Count > 0 {
			med, scale = d.st.Base.stats(f)
		}
		res.Expected[f], res.Low[f], res.High[f] = med, med-3*scale, med+3*scale
		z := robustZ(v, med, scale)
		if v < med {
			z = -z
		}
		res.Explanation.Contributions[f] = z
		zs[f] = z
		total += math.Abs(z)
	}
	e := &res.Explanation
	top := 0
	for f := range x {
		if total > 0 {
			e.Contributions[f] /= total
		}
		if math.Abs(e.Contributions[f]) > math.Abs(e.Contributions[top]) {
			top = f
		}
	}
	e.Field, e.Name, e.Z = top, d.cfg.Fields[top], zs[top]
	switch {
	case e.Contributions[top] > 0:
		e.Direction = "high"
	case e.Contributions[top] < 0:
		e.Direction = "low"
	}
	return res
}

// whiteGate caps the novelty severity of a point in a series that looks
// like white noise around a level (a field whose successive differences
// are as large as its spread: no slow structure, the typical per-window
// count or rate). There a new record a few standard deviations out is
// what noise does now and then, not a change; the cap is the point's
// robust z-score against the recent baseline over Tuning.WhiteZAlarm. Series with
// structure (trends, seasons, regimes) are not capped: their new values
// are what novelty is for.
//
// With young set (the series' first youngPoints points) the ratio a field
// needs is halved: the range is still filling, so a new record is most
// often noise, and the ratio, from 32 to 64 points, is too uncertain to
// tell white noise that wanders a little from structure. Smooth series
// (noise far below the spread) stay ungated.
func (d *detector) whiteGate(x []float64, young bool) float64 {
	st, tn := d.st, &d.cfg.Tuning
	gate := math.Inf(1)
	for f, v := range x {
		med, scale := st.Base.stats(f)
		noise := st.Base.noise(f)
		ratio := tn.WhiteRatio
		if young {
			ratio /= 2
		}
		if scale <= 0 {
			continue
		}
		// The ratio over 64 points wanders: a series of plain noise dips
		// below the bar now and then. Its slow average decides too, so a
		// field that has looked like noise for long stays gated through
		// such dips.
		if st.WhiteAvg == nil {
			st.WhiteAvg = make([]float64, st.Fields)
			for i := range st.WhiteAvg {
				st.WhiteAvg[i] = math.NaN()
			}
		}
		r := noise / scale
		avg := st.WhiteAvg[f]
		if math.IsNaN(avg) {
			avg = r
		}
		avg += (r - avg) / whiteAvgPoints
		st.WhiteAvg[f] = avg
		if r < ratio && avg < whiteAvgBar {
			continue
		}
		unit := max(scale, noise)
		gate = min(gate, math.Abs(v-med)/unit/tn.WhiteZAlarm)
	}
	return gate
}
