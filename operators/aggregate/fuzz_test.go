package aggregate

import (
	"testing"

	"github.com/runnel-dev/runnel/operators/js"
)

// FuzzUnmarshal: decoding arbitrary state never panics, and state that
// decodes re-encodes to something that decodes to the same results.
func FuzzUnmarshal(f *testing.F) {
	c, err := Compile("", []Spec{{Name: "n", Func: Count}, {Name: "s", Func: Sum, Field: "v"},
		{Name: "lo", Func: Min, Field: "v"}, {Name: "p", Func: P95, Field: "v"}, {Name: "d", Func: Distinct, Field: "v"}}, js.Options{})
	if err != nil {
		f.Fatal(err)
	}
	in, _ := c.Instance()
	accs, _ := in.New()
	for i := range 50 {
		in.Add(accs, map[string]any{"v": float64(i * i)})
	}
	seed, _ := in.Marshal(accs)
	f.Add(seed)
	empty, _ := in.New()
	seed2, _ := in.Marshal(empty)
	f.Add(seed2)
	f.Fuzz(func(t *testing.T, b []byte) {
		accs, err := in.Unmarshal(b)
		if err != nil {
			return
		}
		again, err := in.Marshal(accs)
		if err != nil {
			t.Fatal(err)
		}
		back, err := in.Unmarshal(again)
		if err != nil {
			t.Fatalf("re-encoded state does not decode: %v", err)
		}
		r1, r2 := in.Results(accs), in.Results(back)
		for i := range r1 {
			if f1, ok := r1[i].(float64); ok && f1 != f1 {
				continue // NaN
			}
			if r1[i] != r2[i] {
				t.Fatalf("column %d: %v then %v", i, r1[i], r2[i])
			}
		}
	})
}

func FuzzSketch(f *testing.F) {
	s := NewSketch()
	for i := range 100 {
		s.Add(float64(i) - 20.5)
	}
	b, _ := s.MarshalBinary()
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) {
		var s Sketch
		if s.UnmarshalBinary(b) != nil {
			return
		}
		s.Quantile(0.5)
		s.Merge(&s)
		s.Add(1)
	})
}

func FuzzHLL(f *testing.F) {
	h := NewHLL()
	for i := range 2000 {
		h.AddValue(i)
	}
	b, _ := h.MarshalBinary()
	f.Add(b)
	f.Add([]byte{0, 1, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h HLL
		if h.UnmarshalBinary(b) != nil {
			return
		}
		h.Estimate()
		h.AddValue("x")
		h.Merge(NewHLL())
	})
}
