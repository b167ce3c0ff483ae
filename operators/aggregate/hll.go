package aggregate

import (
	"encoding/binary"
	"math"
	"math/bits"
	"slices"
	"strconv"
)

// HLL estimates the number of distinct values: HyperLogLog with precision
// 14 (16384 one-byte registers, standard error 0.81%) and Ertl's improved
// estimator ("New cardinality estimation algorithms for HyperLogLog
// sketches", 2017), which needs no empirical bias tables. Until it holds
// sparseMax distinct hashes it keeps the hashes themselves (exact up to
// 64-bit hash collisions, and 8 bytes per value instead of 16 KiB).
type HLL struct {
	sparse []uint64 // sorted distinct hashes, while regs == nil
	regs   []uint8
}

const (
	hllP      = 14
	hllM      = 1 << hllP
	hllQ      = 64 - hllP
	sparseMax = hllM / 16
)

// NewHLL returns an empty estimator.
func NewHLL() *HLL { return &HLL{} }

// AddValue adds a JSON-like value. Numbers are hashed by their shortest
// decimal form, so 3 and 3.0 are one value; strings by their text (the
// string "3" is the number 3 too); other values by a type tag.
func (h *HLL) AddValue(v any) {
	var buf [32]byte
	var b []byte
	if f, ok := number(v); ok {
		b = strconv.AppendFloat(buf[:0], f, 'g', -1, 64)
	} else {
		switch x := v.(type) {
		case string:
			b = []byte(x)
		case bool:
			b = strconv.AppendBool(buf[:0], x)
		default:
			b = []byte(strconv.Quote(typeKey(v)))
		}
	}
	h.AddHash(hash64(b))
}

func typeKey(v any) string {
	switch v.(type) {
	case map[string]any:
		return "object"
	case []any:
		return "array"
	}
	return "other"
}

// AddHash adds a 64-bit hash of a value.
func (h *HLL) AddHash(x uint64) {
	if h.regs == nil {
		i, found := slices.BinarySearch(h.sparse, x)
		if found {
			return
		}
		h.sparse = slices.Insert(h.sparse, i, x)
		if len(h.sparse) > sparseMax {
			h.densify()
		}
		return
	}
	h.set(x)
}

func (h *HLL) set(x uint64) {
	idx := x >> hllQ
	w := x<<hllP | 1<<(hllP-1) // guard bit bounds the run of zeros at q
	r := uint8(bits.LeadingZeros64(w)) + 1
	if r > hllQ+1 {
		r = hllQ + 1
	}
	if r > h.regs[idx] {
		h.regs[idx] = r
	}
}

func (h *HLL) densify() {
	h.regs = make([]uint8, hllM)
	for _, x := range h.sparse {
		h.set(x)
	}
	h.sparse = nil
}

// Merge adds o's values to h.
func (h *HLL) Merge(o *HLL) {
	if o.regs == nil {
		for _, x := range o.sparse {
			h.AddHash(x)
		}
		return
	}
	if h.regs == nil {
		h.densify()
	}
	for i, r := range o.regs {
		if r > h.regs[i] {
			h.regs[i] = r
		}
	}
}

// Estimate returns the estimated number of distinct values.
func (h *HLL) Estimate() uint64 {
	if h.regs == nil {
		return uint64(len(h.sparse))
	}
	var c [hllQ + 2]float64
	for _, r := range h.regs {
		c[r]++
	}
	m := float64(hllM)
	z := m * hllTau(1-c[hllQ+1]/m)
	for k := hllQ; k >= 1; k-- {
		z = 0.5 * (z + c[k])
	}
	z += m * hllSigma(c[0]/m)
	return uint64(math.Round(m * m / (2 * math.Ln2) / z))
}

func hllSigma(x float64) float64 {
	if x == 1 {
		return math.Inf(1)
	}
	y, z := 1.0, x
	for {
		x *= x
		zp := z
		z += x * y
		y += y
		if z == zp {
			return z
		}
	}
}

func hllTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		zp := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == zp {
			return z / 3
		}
	}
}

// MarshalBinary encodes the estimator: a mode byte, then the sparse hashes
// or the registers.
func (h *HLL) MarshalBinary() ([]byte, error) {
	if h.regs == nil {
		b := binary.AppendUvarint([]byte{0}, uint64(len(h.sparse)))
		for _, x := range h.sparse {
			b = binary.LittleEndian.AppendUint64(b, x)
		}
		return b, nil
	}
	return append([]byte{1}, h.regs...), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (h *HLL) UnmarshalBinary(b []byte) error {
	d := decoder{b: b}
	*h = HLL{}
	switch d.byte() {
	case 0:
		n := d.uvarint()
		if n > sparseMax || d.err {
			return ErrCorrupt
		}
		h.sparse = make([]uint64, n)
		for i := range h.sparse {
			raw := d.bytes(8)
			if d.err {
				return ErrCorrupt
			}
			h.sparse[i] = binary.LittleEndian.Uint64(raw)
		}
		if !slices.IsSorted(h.sparse) {
			return ErrCorrupt
		}
	case 1:
		h.regs = slices.Clone(d.bytes(hllM))
		for _, r := range h.regs {
			if r > hllQ+1 {
				return ErrCorrupt
			}
		}
	default:
		return ErrCorrupt
	}
	if d.err || len(d.b) != 0 {
		return ErrCorrupt
	}
	return nil
}

// hash64 is FNV-1a followed by the murmur3 finaliser: stable across
// processes (state is persisted and merged) and well mixed in every bit.
func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}
