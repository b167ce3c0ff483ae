package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// Accumulator is the running state of one aggregate in one window.
// Accumulators are mergeable (Merge must be associative and commutative up
// to floating-point rounding) and serialisable, so window state can live
// in a store and partial aggregates from several shards can be combined.
type Accumulator interface {
	// Add folds in one value: the aggregate's field (nil when missing) for
	// builtins, the whole record value for count without a field and for
	// custom aggregates.
	Add(v any) error
	// Merge folds another accumulator of the same spec into this one.
	Merge(o Accumulator) error
	// Result is the column value: int64, float64, string, or nil (null)
	// when there is nothing to report (avg/min/max/pNN of no numbers).
	Result() any
	MarshalBinary() ([]byte, error)
	UnmarshalBinary([]byte) error
}

// ErrCorrupt is returned when serialised state cannot be decoded.
var ErrCorrupt = errors.New("aggregate: corrupt state")

func mismatch(a, b Accumulator) error {
	return fmt.Errorf("aggregate: cannot merge %T into %T", b, a)
}

// countAcc counts records, or non-null values of a field.
type countAcc struct {
	n       int64
	nonNull bool
}

func (a *countAcc) Add(v any) error {
	if !a.nonNull || v != nil {
		a.n++
	}
	return nil
}

func (a *countAcc) Merge(o Accumulator) error {
	b, ok := o.(*countAcc)
	if !ok {
		return mismatch(a, o)
	}
	a.n += b.n
	return nil
}

func (a *countAcc) Result() any { return a.n }

func (a *countAcc) MarshalBinary() ([]byte, error) { return binary.AppendVarint(nil, a.n), nil }

func (a *countAcc) UnmarshalBinary(b []byte) error {
	n, k := binary.Varint(b)
	if k <= 0 || k != len(b) {
		return ErrCorrupt
	}
	a.n = n
	return nil
}

// sumAcc sums numbers; avg also counts them.
type sumAcc struct {
	sum float64
	n   int64
	avg bool
}

func (a *sumAcc) Add(v any) error {
	if f, ok := number(v); ok {
		a.sum += f
		a.n++
	}
	return nil
}

func (a *sumAcc) Merge(o Accumulator) error {
	b, ok := o.(*sumAcc)
	if !ok || b.avg != a.avg {
		return mismatch(a, o)
	}
	a.sum += b.sum
	a.n += b.n
	return nil
}

func (a *sumAcc) Result() any {
	if !a.avg {
		return a.sum
	}
	if a.n == 0 {
		return nil
	}
	return a.sum / float64(a.n)
}

func (a *sumAcc) MarshalBinary() ([]byte, error) {
	b := binary.LittleEndian.AppendUint64(nil, math.Float64bits(a.sum))
	return binary.AppendVarint(b, a.n), nil
}

func (a *sumAcc) UnmarshalBinary(b []byte) error {
	if len(b) < 9 {
		return ErrCorrupt
	}
	a.sum = math.Float64frombits(binary.LittleEndian.Uint64(b))
	n, k := binary.Varint(b[8:])
	if k <= 0 || 8+k != len(b) {
		return ErrCorrupt
	}
	a.n = n
	return nil
}

// extremeAcc keeps the minimum (or maximum) number.
type extremeAcc struct {
	v   float64
	has bool
	max bool
}

func (a *extremeAcc) Add(v any) error {
	f, ok := number(v)
	if !ok || math.IsNaN(f) {
		return nil
	}
	if !a.has || (a.max && f > a.v) || (!a.max && f < a.v) {
		a.v, a.has = f, true
	}
	return nil
}

func (a *extremeAcc) Merge(o Accumulator) error {
	b, ok := o.(*extremeAcc)
	if !ok || b.max != a.max {
		return mismatch(a, o)
	}
	if b.has {
		return a.Add(b.v)
	}
	return nil
}

func (a *extremeAcc) Result() any {
	if !a.has {
		return nil
	}
	return a.v
}

func (a *extremeAcc) MarshalBinary() ([]byte, error) {
	if !a.has {
		return []byte{0}, nil
	}
	return binary.LittleEndian.AppendUint64([]byte{1}, math.Float64bits(a.v)), nil
}

func (a *extremeAcc) UnmarshalBinary(b []byte) error {
	switch {
	case len(b) == 1 && b[0] == 0:
		a.has = false
	case len(b) == 9 && b[0] == 1:
		a.v, a.has = math.Float64frombits(binary.LittleEndian.Uint64(b[1:])), true
	default:
		return ErrCorrupt
	}
	return nil
}

// quantileAcc reports one quantile of a sketch.
type quantileAcc struct {
	q float64
	s *Sketch
}

func (a *quantileAcc) Add(v any) error {
	if f, ok := number(v); ok {
		a.s.Add(f)
	}
	return nil
}

func (a *quantileAcc) Merge(o Accumulator) error {
	b, ok := o.(*quantileAcc)
	if !ok {
		return mismatch(a, o)
	}
	a.s.Merge(b.s)
	return nil
}

func (a *quantileAcc) Result() any {
	if a.s.Count() == 0 {
		return nil
	}
	return a.s.Quantile(a.q)
}

func (a *quantileAcc) MarshalBinary() ([]byte, error) { return a.s.MarshalBinary() }

func (a *quantileAcc) UnmarshalBinary(b []byte) error { return a.s.UnmarshalBinary(b) }

// distinctAcc estimates the number of distinct values.
type distinctAcc struct{ h *HLL }

func (a *distinctAcc) Add(v any) error {
	if v != nil {
		a.h.AddValue(v)
	}
	return nil
}

func (a *distinctAcc) Merge(o Accumulator) error {
	b, ok := o.(*distinctAcc)
	if !ok {
		return mismatch(a, o)
	}
	a.h.Merge(b.h)
	return nil
}

func (a *distinctAcc) Result() any { return int64(a.h.Estimate()) }

func (a *distinctAcc) MarshalBinary() ([]byte, error) { return a.h.MarshalBinary() }

func (a *distinctAcc) UnmarshalBinary(b []byte) error { return a.h.UnmarshalBinary(b) }

// newBuiltin makes the accumulator of a builtin spec.
func newBuiltin(s Spec) Accumulator {
	switch s.Func {
	case Count:
		return &countAcc{nonNull: s.Field != ""}
	case Sum:
		return &sumAcc{}
	case Avg:
		return &sumAcc{avg: true}
	case Min:
		return &extremeAcc{}
	case Max:
		return &extremeAcc{max: true}
	case P50:
		return &quantileAcc{q: 0.50, s: NewSketch()}
	case P95:
		return &quantileAcc{q: 0.95, s: NewSketch()}
	case P99:
		return &quantileAcc{q: 0.99, s: NewSketch()}
	case Distinct:
		return &distinctAcc{h: NewHLL()}
	}
	return nil
}
