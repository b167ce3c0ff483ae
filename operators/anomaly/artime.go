package anomaly

import (
	"math"
	"slices"
)

// The artime method follows ARTime (Mark Hampton, 2021: the NAB
// scoreboard's best, 74.9): a dual-vigilance fuzzy adaptive resonance
// theory (ART) network clusters windowed features of a downsampled series,
// and a sample that resonates with no category, not even at the lower
// vigilance, is an anomaly whose score says how far below that vigilance
// it fell. The vigilances adapt online to the similarities the series
// shows. The constants below are ARTime's published ones, not tuned here;
// what differs is what a stream cannot know: ARTime sizes its probation
// and downsampling from the file's length and normalises by the file's
// minimum and maximum, while here the probation is a fixed number of
// points (Config.Probation) and the range is the probation's, widened
// whenever a later value falls outside it (the learned categories are
// mapped onto the wider range, so they keep meaning the same values).
const (
	artWindow       = 8     // downsampled samples in a feature window
	artWindowsPerPB = 13    // feature windows per probation: sets the downsampling step
	artLevels       = 80    // a normalised sample is rounded to 1/artLevels
	artChomp        = 0.075 // samples this close to the running median level snap to it
	artSpike        = 0.1   // a window's extreme replaces its mean only if 10% away from it
	artInitialRho   = 0.8   // vigilance of the probation's rho search
	artRhoCap       = 0.97  // highest upper vigilance
	artRhoRise      = 0.19  // share of the gap the lower vigilance rises by
	artDiffFloor    = 0.05  // similarity shortfalls counted when the lower vigilance falls
	artDiffCap      = 0.37  // cap on each such shortfall
	artDim          = 2 * artWindow
	artComp         = 2 * artDim // complement-coded feature vector
	// artMaxCategories bounds the categories one field's network keeps;
	// when full, the category matched least recently is replaced.
	artMaxCategories = 512
	// DefaultProbation is artime's default Config.Probation: 15% of a
	// 4032-point NAB file, NAB's own probation for most of its files.
	DefaultProbation = 600
)

// artime is one field's ARTime model. Its exported fields are its state,
// written by MarshalBinary.
type artime struct {
	Step, Trend, Mask int // downsampling step, probation in samples, masking span in samples

	Seen    int64     // points seen
	Recent  []float64 // the last Step points, oldest first
	DSI     int64     // downsampled samples so far
	MovAvg  float64   // running average of the window means
	Sample  float64   // the last downsampled value
	Pending []float64 // probation: downsampled values, normalised once it ends
	Ready   bool      // the probation has ended
	Lo, Hi  float64   // the normalisation range

	// A running median of the sample levels, from their histogram.
	Bins         []int64
	MedLevel     int
	Below, Above int64
	FWin         []float64 // the last artWindow normalised samples

	Net        artNet
	RhoLB      float64
	RhoUB      float64
	LastAnom   int64 // sample of the last anomaly
	LastRho    int64 // sample of the last vigilance update
	LastAnSim  float64
	MaskCat    bool  // masking after a new cluster
	NoNewCat   int64 // samples since the last new cluster
	SimWin     []float64
	SimDiff    []float64 // ring of RhoUB − similarity
	SimPos     int
	DiffPos    int
	UBSum      float64 // running mean of the similarities: the upper vigilance
	UBCount    int64
	AnSimSum   float64 // mean similarity of the anomalies, with the last one's
	AnSimCount int64   // lowest similarity during its masking span
	AnSimLast  float64

	feat []float64 // scratch
}

func newARTime(probation int) *artime {
	p := probation - probation%2
	step := max(1, p/(artWindow*artWindowsPerPB))
	trend := p / step
	a := &artime{
		Step: step, Trend: trend, Mask: artWindow * 3 / 2,
		Recent:  make([]float64, step),
		Bins:    make([]int64, artLevels+1),
		FWin:    make([]float64, artWindow),
		SimWin:  make([]float64, trend/2+1),
		SimDiff: make([]float64, trend+1),
	}
	for i := range a.SimWin {
		a.SimWin[i] = 1
	}
	return a
}

// update takes one point and returns the model's anomaly score in [0, 1]
// for it: 0 except at a downsampled sample that resonates with no
// category.
func (a *artime) update(v float64) float64 {
	copy(a.Recent, a.Recent[1:])
	a.Recent[len(a.Recent)-1] = v
	a.Seen++
	if a.Seen%int64(a.Step) != 0 {
		return 0
	}
	ds := a.downsample()
	a.Sample = ds
	a.DSI++
	if !a.Ready {
		a.Pending = append(a.Pending, ds)
		if a.DSI < int64(a.Trend) {
			return 0
		}
		a.endProbation()
		return 0
	}
	if ds < a.Lo || ds > a.Hi {
		a.widen(min(a.Lo, ds), max(a.Hi, ds))
	}
	return a.detect(a.features(ds, a.DSI), a.DSI)
}

// downsample turns the last Step points into one sample: their mean, or
// the extreme farthest from the running average when it is a spike at
// least 10% away from the mean.
func (a *artime) downsample() float64 {
	sum, hi, lo := 0.0, math.Inf(-1), math.Inf(1)
	for _, x := range a.Recent {
		sum += x
		hi, lo = max(hi, x), min(lo, x)
	}
	mean := sum / float64(len(a.Recent))
	if a.DSI == 0 {
		a.MovAvg = mean
	}
	a.MovAvg = (a.MovAvg + mean) / 2
	ds := hi
	if math.Abs(hi-a.MovAvg) < math.Abs(lo-a.MovAvg) {
		ds = lo
	}
	if math.Abs(ds-mean) < artSpike*math.Abs(mean) {
		ds = mean
	}
	return ds
}

// endProbation fixes the range from the probation's samples, turns them
// into features, finds the starting vigilance and trains the network on
// them in order (scoring none).
func (a *artime) endProbation() {
	a.Ready = true
	a.Lo, a.Hi = slices.Min(a.Pending), slices.Max(a.Pending)
	feats := make([][]float64, len(a.Pending))
	for i, ds := range a.Pending {
		feats[i] = slices.Clone(a.features(ds, int64(i+1)))
	}
	a.Pending = nil
	rho := initialRho(feats[artWindow-1:], a.Trend)
	a.RhoLB, a.RhoUB = rho, rho
	for i, f := range feats {
		a.detect(f, int64(i+1))
	}
}

// normalise maps a raw sample into the range, as a fraction.
func (a *artime) normalise(ds float64) float64 {
	ds -= a.Lo
	if r := a.Hi - a.Lo; r != 0 {
		ds /= r
	}
	return ds
}

// features discretises a sample, snaps it to the running median level when
// close, and returns the feature vector: the Haar wavelet coefficients of
// the last artWindow samples (each window scaled to [0, 1]) and the
// samples themselves. Before a full window (sample i, counted from 1) the
// features are zero.
func (a *artime) features(ds float64, i int64) []float64 {
	x := a.normalise(ds)
	level := min(max(int(math.Round(x*artLevels)), 0), artLevels)
	x = float64(level) / artLevels
	a.levelize(level)
	if med := float64(a.MedLevel) / artLevels; math.Abs(x-med) < artChomp {
		x = med
	}
	copy(a.FWin, a.FWin[1:])
	a.FWin[artWindow-1] = x
	if cap(a.feat) < artDim {
		a.feat = make([]float64, artDim)
	}
	f := a.feat[:artDim]
	clear(f)
	if i < artWindow {
		return f
	}
	w := f[:artWindow]
	copy(w, a.FWin)
	scaleUnit(w)
	haar(w)
	scaleUnit(w)
	copy(f[artWindow:], a.FWin)
	return f
}

// levelize adds a level to the histogram and moves the running median
// level one step towards the middle when it is off it.
func (a *artime) levelize(level int) {
	a.Bins[level]++
	n := int64(0)
	for _, c := range a.Bins {
		n += c
	}
	if n == 1 {
		a.MedLevel = level
	}
	switch {
	case a.MedLevel > level:
		a.Below++
	case a.MedLevel < level:
		a.Above++
	}
	half := n / 2
	switch {
	case half < a.Above:
		a.Below += a.Bins[a.MedLevel]
		a.MedLevel++
		for a.MedLevel < artLevels && a.Bins[a.MedLevel] == 0 {
			a.MedLevel++
		}
		a.Above -= a.Bins[a.MedLevel]
	case half < a.Below:
		a.Above += a.Bins[a.MedLevel]
		a.MedLevel--
		for a.MedLevel > 0 && a.Bins[a.MedLevel] == 0 {
			a.MedLevel--
		}
		a.Below -= a.Bins[a.MedLevel]
	}
}

// scaleUnit maps w onto [0, 1] by its own minimum and maximum.
func scaleUnit(w []float64) {
	lo := slices.Min(w)
	for i := range w {
		w[i] -= lo
	}
	if hi := slices.Max(w); hi != 0 {
		for i := range w {
			w[i] /= hi
		}
	}
}

// haar replaces w (a power of two long) by its full orthonormal Haar
// transform: the overall average first, then the details from the
// coarsest to the finest.
func haar(w []float64) {
	var tmp [artWindow]float64
	for n := len(w); n > 1; n /= 2 {
		h := n / 2
		for i := range h {
			tmp[i] = (w[2*i] + w[2*i+1]) / math.Sqrt2
			tmp[h+i] = (w[2*i] - w[2*i+1]) / math.Sqrt2
		}
		copy(w[:n], tmp[:n])
	}
}

// widen maps the learned state onto the range [lo, hi]: the sample part of
// each category (and of its complement), the recent samples and the
// median's histogram. A category's weights are minima of what it learned,
// and the map is increasing, so they stay the minima of the same values.
func (a *artime) widen(lo, hi float64) {
	oldLo, oldR := a.Lo, a.Hi-a.Lo
	a.Lo, a.Hi = lo, hi
	remap := func(x float64) float64 { return a.normalise(oldLo + x*oldR) }
	for c := range a.Net.Cats {
		w := a.Net.W[c*artComp : (c+1)*artComp]
		for i := artWindow; i < artDim; i++ {
			w[i] = remap(w[i])
			w[artDim+i] = 1 - remap(1-w[artDim+i])
		}
	}
	for i, x := range a.FWin {
		a.FWin[i] = remap(x)
	}
	bins := make([]int64, artLevels+1)
	for l, c := range a.Bins {
		bins[min(max(int(math.Round(remap(float64(l)/artLevels)*artLevels)), 0), artLevels)] += c
	}
	a.Bins = bins
	a.MedLevel = min(max(int(math.Round(remap(float64(a.MedLevel)/artLevels)*artLevels)), 0), artLevels)
	a.Below, a.Above = 0, 0
	for l, c := range a.Bins {
		switch {
		case l < a.MedLevel:
			a.Below += c
		case l > a.MedLevel:
			a.Above += c
		}
	}
}

// initialRho is ARTime's starting vigilance: the probation's feature
// windows, least typical first (by their summed similarity to the
// others), are clustered at vigilance artInitialRho, and the mean
// resonance over the later half is the vigilance.
func initialRho(feats [][]float64, trend int) float64 {
	n := len(feats)
	sums := make([]float64, n)
	for i := range n {
		sums[i] = 1 // similarity to itself
	}
	for i := range n {
		for j := range i {
			s := similarity(feats[i], feats[j])
			sums[i] += s
			sums[j] += s
		}
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(i, j int) int {
		switch {
		case sums[i] < sums[j]:
			return -1
		case sums[i] > sums[j]:
			return 1
		}
		return 0
	})
	var net artNet
	res := make([]float64, 0, n)
	for k, i := range order {
		m, _, _ := net.train(feats[i], artInitialRho, artInitialRho, true, int64(k))
		res = append(res, m)
	}
	from := min(max(trend/2-1, 0), len(res)-1)
	sum := 0.0
	for _, m := range res[from:] {
		sum += m
	}
	return sum / float64(len(res)-from)
}

// similarity is the cosine of two feature vectors; a zero vector's is one
// minus the other's length.
func similarity(a, b []float64) float64 {
	na, nb, dot := 0.0, 0.0, 0.0
	for i := range a {
		na += a[i] * a[i]
		nb += b[i] * b[i]
		dot += a[i] * b[i]
	}
	na, nb = math.Sqrt(na), math.Sqrt(nb)
	switch {
	case na == 0:
		return 1 - nb
	case nb == 0:
		return 1 - na
	}
	return dot / (na * nb)
}

// detect runs one feature vector (sample i, counted from 1) through the
// network and the vigilance adaptation, and returns its anomaly score.
func (a *artime) detect(f []float64, i int64) float64 {
	mask := int64(a.Mask)
	trend := int64(a.Trend)
	rhoAfterAnom := i-a.LastAnom == mask
	rhoForTrend := i-a.LastRho >= trend/2
	maskAfterAnom := i-a.LastAnom <= mask
	if i > trend+mask && a.MaskCat && a.NoNewCat >= mask {
		a.MaskCat = false
	}
	sim, energy, newCluster := a.Net.train(f, a.RhoLB, a.RhoUB, i >= artWindow, i)
	if newCluster {
		a.NoNewCat = 0
	} else {
		a.NoNewCat++
	}
	a.UBSum += sim
	a.UBCount++
	a.SimWin[a.SimPos] = sim
	a.SimPos = (a.SimPos + 1) % len(a.SimWin)
	a.SimDiff[a.DiffPos] = a.RhoUB - sim
	a.DiffPos = (a.DiffPos + 1) % len(a.SimDiff)
	if i-a.LastAnom < mask && a.AnSimCount > 0 && sim < a.AnSimLast {
		a.AnSimSum += sim - a.AnSimLast
		a.AnSimLast = sim
	}
	masking := a.MaskCat || maskAfterAnom
	scale := 0.7
	if maskAfterAnom {
		scale = 0.9
	}
	score := 0.0
	if i > trend && newCluster && (!masking || sim < a.LastAnSim*scale) {
		score = a.confidence(sim, energy)
		a.AnSimSum += sim
		a.AnSimCount++
		a.AnSimLast = sim
		a.LastAnSim = sim
		a.LastAnom = i
	}
	a.MaskCat = a.MaskCat || newCluster
	if i > trend && (rhoAfterAnom || rhoForTrend) {
		a.adaptRho(i)
	}
	return score
}

// adaptRho sets the upper vigilance to the mean resonance so far (capped)
// and moves the lower one: up towards the lowest recent resonance when all
// recent samples reached it, else down by half the typical shortfall, but
// not below the anomalies' mean resonance.
func (a *artime) adaptRho(i int64) {
	ub := min(artRhoCap, a.UBSum/float64(a.UBCount))
	lb := a.RhoLB
	if low := slices.Min(a.SimWin); lb <= low {
		lb += (low - lb) * artRhoRise
	} else {
		decr := 0.0
		if i > 2*int64(a.Trend) {
			sum, n := 0.0, 0
			for _, d := range a.SimDiff {
				if d > artDiffFloor {
					sum += min(artDiffCap, d)
					n++
				}
			}
			if n > 0 {
				decr = sum / float64(n)
			}
		}
		lb -= max(0.01, decr) / 2
		if a.AnSimCount > 0 {
			lb = max(lb, a.AnSimSum/float64(a.AnSimCount))
		}
	}
	a.RhoLB, a.RhoUB = min(ub, lb), ub
	a.LastRho = i
	a.MaskCat = true
}

// confidence scores an unmatched sample by how far its resonance fell
// below each vigilance, relative to its own shortfall from a perfect
// match, plus how poorly its newest sample matched.
func (a *artime) confidence(sim, energy float64) float64 {
	sim = min(0.999, sim)
	ub := ((1 - sim) - (1 - a.RhoUB)) / (1 - sim)
	lb := ((1 - sim) - (1 - a.RhoLB)) / (1 - sim)
	s := ub*0.35 + lb*0.65 + (1-energy)*1.5
	return min(1, max(0, s))
}

// ok reports whether decoded state has the shapes update relies on.
func (a *artime) ok() bool {
	if a == nil || a.Step <= 0 || a.Trend < artWindow || a.Mask <= 0 || len(a.Recent) != a.Step ||
		len(a.Bins) != artLevels+1 || len(a.FWin) != artWindow || len(a.SimWin) != a.Trend/2+1 ||
		len(a.SimDiff) != a.Trend+1 || a.SimPos < 0 || a.SimPos >= len(a.SimWin) ||
		a.DiffPos < 0 || a.DiffPos >= len(a.SimDiff) || a.Net.Cats < 0 || a.Net.Cats > artMaxCategories ||
		len(a.Net.W) != a.Net.Cats*artComp || len(a.Net.Used) != a.Net.Cats ||
		a.MedLevel < 0 || a.MedLevel > artLevels || len(a.Pending) > a.Trend {
		return false
	}
	return finite(a.Recent) && finite(a.Net.W) && finite(a.FWin) && finite(a.SimWin) && finite(a.SimDiff) &&
		finite(a.Pending) && finite([]float64{a.Lo, a.Hi, a.MovAvg, a.RhoLB, a.RhoUB, a.UBSum, a.AnSimSum})
}

// minProbation is the shortest Config.Probation: enough samples for a
// feature window and the vigilance search after it.
const minProbation = 4 * artWindow

func newARTimes(fields, probation int) []*artime {
	out := make([]*artime, fields)
	for f := range out {
		out[f] = newARTime(probation)
	}
	return out
}

// artSeverity runs every field's model on x and returns the highest score
// as a severity (score s is severity s/(1−s), so the detector's score is
// the model's). A model judges a downsampled sample, which stands for its
// last Step points and may be a spike among them rather than x: when one
// flags, the explanation is that of its sample.
func (d *detector) artSeverity(x []float64, res *Result) float64 {
	s, top := 0.0, -1
	for f, m := range d.st.ART {
		if v := m.update(x[f]); v > s {
			s, top = v, f
		}
	}
	if top >= 0 {
		y := slices.Clone(x)
		y[top] = d.st.ART[top].Sample
		res.Explanation = d.explain(y).Explanation
	}
	if s >= 1 {
		return maxSeverity
	}
	return s / (1 - s)
}

func artOK(models []*artime, fields int) bool {
	if len(models) != fields {
		return false
	}
	for _, m := range models {
		if !m.ok() {
			return false
		}
	}
	return true
}
