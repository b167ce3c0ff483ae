package aggregate

import (
	"encoding/binary"
	"math"
)

// Sketch is a mergeable quantile sketch with relative accuracy: the value
// it reports for a quantile is within SketchAccuracy (relative) of the
// exact value of that rank. It follows DDSketch (Masson, Rim, Lee, VLDB
// 2019): values fall into logarithmic buckets, bucket i of positive values
// holding (γ^(i-1), γ^i] with γ = (1+α)/(1-α); negative values mirror the
// positive ones and values whose magnitude is below minIndexable count as
// zero. Each sign keeps at most maxBuckets (4096) buckets, which cover
// magnitudes spanning a ratio of about 1e33; beyond that the lowest buckets
// collapse into one and lose their accuracy.
type Sketch struct {
	pos, neg store
	zero     uint64
	n        uint64
	min, max float64
}

// SketchAccuracy is the relative accuracy α of Sketch.
const SketchAccuracy = 0.0095

const (
	maxBuckets   = 4096
	minIndexable = 1e-9
	// maxIndex bounds bucket indices: float64 magnitudes between
	// minIndexable and MaxFloat64 map to about -1100 .. 37000.
	maxIndex = 1 << 20
)

var (
	sketchGamma  = (1 + SketchAccuracy) / (1 - SketchAccuracy)
	sketchLogInv = 1 / math.Log(sketchGamma)
)

// NewSketch returns an empty sketch.
func NewSketch() *Sketch { return &Sketch{min: math.Inf(1), max: math.Inf(-1)} }

func sketchIndex(v float64) int32 { return int32(math.Ceil(math.Log(v) * sketchLogInv)) }

func sketchValue(i int32) float64 { return 2 * math.Pow(sketchGamma, float64(i)) / (1 + sketchGamma) }

// Add records one value; NaN and infinities are ignored.
func (s *Sketch) Add(v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	switch {
	case v > minIndexable:
		s.pos.add(sketchIndex(v), 1)
	case v < -minIndexable:
		s.neg.add(sketchIndex(-v), 1)
	default:
		s.zero++
	}
	s.n++
	s.min = math.Min(s.min, v)
	s.max = math.Max(s.max, v)
}

// Count returns the number of values added.
func (s *Sketch) Count() uint64 { return s.n }

// Merge adds o's values to s.
func (s *Sketch) Merge(o *Sketch) {
	if o.n == 0 {
		return
	}
	for i, c := range o.pos.counts {
		if c > 0 {
			s.pos.add(o.pos.off+int32(i), c)
		}
	}
	for i, c := range o.neg.counts {
		if c > 0 {
			s.neg.add(o.neg.off+int32(i), c)
		}
	}
	s.zero += o.zero
	s.n += o.n
	s.min = math.Min(s.min, o.min)
	s.max = math.Max(s.max, o.max)
}

// Quantile returns the value at rank q·(n−1) (q in [0, 1]), NaN when empty.
func (s *Sketch) Quantile(q float64) float64 {
	if s.n == 0 {
		return math.NaN()
	}
	q = math.Max(0, math.Min(1, q))
	rank := q * float64(s.n-1)
	var seen float64
	v := math.NaN()
	for i := len(s.neg.counts) - 1; i >= 0; i-- {
		if seen += float64(s.neg.counts[i]); seen > rank {
			v = -sketchValue(s.neg.off + int32(i))
			break
		}
	}
	if math.IsNaN(v) {
		if seen += float64(s.zero); seen > rank {
			v = 0
		}
	}
	if math.IsNaN(v) {
		v = s.max
		for i, c := range s.pos.counts {
			if seen += float64(c); seen > rank {
				v = sketchValue(s.pos.off + int32(i))
				break
			}
		}
	}
	return math.Max(s.min, math.Min(s.max, v))
}

// MarshalBinary encodes the sketch.
func (s *Sketch) MarshalBinary() ([]byte, error) {
	b := binary.AppendUvarint(nil, s.n)
	b = binary.AppendUvarint(b, s.zero)
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.min))
	b = binary.LittleEndian.AppendUint64(b, math.Float64bits(s.max))
	b = s.pos.append(b)
	return s.neg.append(b), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (s *Sketch) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	*s = Sketch{n: d.uvarint(), zero: d.uvarint(), min: d.float(), max: d.float()}
	s.pos.read(&d)
	s.neg.read(&d)
	if d.err || len(d.b) != 0 {
		return ErrCorrupt
	}
	return nil
}

// store is a dense run of bucket counts; counts[i] is bucket off+i.
type store struct {
	off       int32
	counts    []uint64
	collapsed bool
}

func (s *store) add(idx int32, c uint64) {
	if len(s.counts) == 0 {
		s.off, s.counts = idx, append(s.counts[:0], c)
		return
	}
	lo, hi, i := int64(s.off), int64(s.off)+int64(len(s.counts))-1, int64(idx)
	switch {
	case i >= lo && i <= hi:
		s.counts[i-lo] += c
		return
	case i > hi && i-lo < maxBuckets:
		// Growing upwards, the common case: amortised append.
		for int64(len(s.counts)) <= i-lo {
			s.counts = append(s.counts, 0)
		}
		s.counts[i-lo] += c
		return
	}
	// Rebuild over the new span, keeping the highest maxBuckets buckets and
	// collapsing everything below into the lowest one.
	nlo, nhi := min(lo, i), max(hi, i)
	if nhi-nlo+1 > maxBuckets {
		nlo = nhi - maxBuckets + 1
		s.collapsed = true
	}
	n := make([]uint64, nhi-nlo+1, nhi-nlo+1+16)
	for j, x := range s.counts {
		n[max(lo+int64(j), nlo)-nlo] += x
	}
	n[max(i, nlo)-nlo] += c
	s.off, s.counts = int32(nlo), n
}

func (s *store) append(b []byte) []byte {
	b = binary.AppendVarint(b, int64(s.off))
	if s.collapsed {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	b = binary.AppendUvarint(b, uint64(len(s.counts)))
	for _, c := range s.counts {
		b = binary.AppendUvarint(b, c)
	}
	return b
}

func (s *store) read(d *decoder) {
	off := d.varint()
	s.off = int32(off)
	s.collapsed = d.byte() == 1
	n := d.uvarint()
	if n > maxBuckets || off < -maxIndex || off > maxIndex {
		d.err = true
		return
	}
	s.counts = make([]uint64, n)
	for i := range s.counts {
		s.counts[i] = d.uvarint()
	}
}

// decoder reads varints and fixed floats, remembering the first error.
type decoder struct {
	b   []byte
	err bool
}

func (d *decoder) uvarint() uint64 {
	v, k := binary.Uvarint(d.b)
	if k <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) varint() int64 {
	v, k := binary.Varint(d.b)
	if k <= 0 {
		d.err, d.b = true, nil
		return 0
	}
	d.b = d.b[k:]
	return v
}

func (d *decoder) float() float64 {
	if len(d.b) < 8 {
		d.err, d.b = true, nil
		return 0
	}
	v := math.Float64frombits(binary.LittleEndian.Uint64(d.b))
	d.b = d.b[8:]
	return v
}

func (d *decoder) byte() byte {
	if len(d.b) < 1 {
		d.err = true
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || len(d.b) < n {
		d.err, d.b = true, nil
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}
