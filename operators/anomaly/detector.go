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
	// in time order; ts is used only to reject nothing and is kept for
	// future time-aware methods.
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
	// Expected is each field's expected value (rolling median), and
	// [Low, High] the range a normal value falls in (median ± 3 robust
	// standard deviations).
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
	// Contributions has one entry per field: the field's share of the total
	// deviation (robust z-scores, so fields of different units compare),
	// signed by direction. Absolute values sum to 1, or all are 0.
	Contributions []float64
}

// Window lengths shared by the methods.
const (
	baselineSize = 64   // points in the rolling median/MAD baseline
	calShort     = 6    // raw scores averaged before calibration
	calHistory   = 1000 // short-term averages the calibration compares against
	calWarmup    = 100  // raw scores before the calibrated score leaves 0
	zScale       = 4.0  // score = z / (z + zScale)
)

// detector is the one implementation of Detector; a method is the set of
// models it runs.
type detector struct {
	cfg Config
	st  *state
	rng *rand.Rand
}

// state is everything a detector learns; it is what MarshalBinary writes.
type state struct {
	Version int
	Method  string
	Fields  int
	Seen    int64
	Last    []float64 // last finite value per field
	Shingle []float64 // the last ShingleSize points, oldest first
	Base    *baseline
	Forest  *forest
	KNN     *knn
	Cal     []*calibrator // per model: rcf, knn, robust (nil if unused)
	Sup     *suppressor
	PCG     []byte
	pcg     *rand.PCG
}

const stateVersion = 1

// Model indices into state.Cal.
const (
	modelRCF = iota
	modelKNN
	modelRobust
	numModels
)

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
		Shingle: make([]float64, dim),
		Base:    newBaseline(nf, baselineSize),
		Cal:     make([]*calibrator, numModels),
		Sup:     &suppressor{Span: c.Suppress},
	}
	st.pcg = rand.NewPCG(uint64(c.Seed), 0x52554e4e454c) // "RUNNEL"
	use := models(c.Method)
	if use[modelRCF] {
		st.Forest = newForest(dim, c.Trees, c.SampleSize)
	}
	if use[modelKNN] {
		st.KNN = newKNN(dim, c.Neighbours, c.History, c.ShingleSize)
	}
	for m, on := range use {
		if on {
			st.Cal[m] = newCalibrator(calShort, calHistory, calWarmup)
		}
	}
	return &detector{cfg: c, st: st, rng: rand.New(st.pcg)}, nil
}

// models says which models a method runs.
func models(method string) [numModels]bool {
	switch method {
	case MethodRCF:
		return [numModels]bool{modelRCF: true}
	case MethodKNN:
		return [numModels]bool{modelKNN: true}
	case MethodRobust:
		return [numModels]bool{modelRobust: true}
	default:
		return [numModels]bool{true, true, true}
	}
}

func (d *detector) Score(_ time.Time, values []float64) Result {
	st, c := d.st, d.cfg
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
		x[i] = v
		st.Last[i] = v
	}
	res := d.explain(x)

	copy(st.Shingle, st.Shingle[nf:])
	copy(st.Shingle[len(st.Shingle)-nf:], x)
	st.Seen++
	full := st.Seen >= int64(c.ShingleSize)

	zsum, zn := 0.0, 0
	if st.Forest != nil && full {
		zsum += st.Cal[modelRCF].update(st.Forest.update(st.Shingle, d.rng))
		zn++
	}
	if st.KNN != nil && full {
		zsum += st.Cal[modelKNN].update(st.KNN.update(st.Shingle))
		zn++
	}
	if cal := st.Cal[modelRobust]; cal != nil {
		zsum += cal.update(d.robustRaw(x, res))
		zn++
	}
	st.Base.add(x)

	score := 0.0
	if zn > 0 {
		z := zsum / float64(zn)
		score = z / (z + zScale)
	}
	if st.Sup.Span > 0 {
		score = st.Sup.apply(score)
	}
	res.Score = score
	res.IsAnomaly = score >= c.Threshold
	return res
}

// robustRaw is the largest robust z-score of a field against the baseline.
func (d *detector) robustRaw(x []float64, res Result) float64 {
	raw := 0.0
	for f, v := range x {
		raw = math.Max(raw, robustZ(v, res.Expected[f], (res.High[f]-res.Low[f])/6))
	}
	return raw
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
	e.Field, e.Name = top, d.cfg.Fields[top]
	switch {
	case e.Contributions[top] > 0:
		e.Direction = "high"
	case e.Contributions[top] < 0:
		e.Direction = "low"
	}
	return res
}
