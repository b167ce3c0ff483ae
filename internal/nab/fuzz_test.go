package nab

import (
	"strings"
	"testing"
)

// FuzzReadCSV checks that ReadCSV never panics, returns as many timestamps
// as values, and names the input in every error.
func FuzzReadCSV(f *testing.F) {
	f.Add("timestamp,value\n2014-02-14 14:30:00,0.132\n2014-02-14 14:35:00,0.134\n")
	f.Add("2014-02-14T14:30:00Z,1,extra\n1700000000000,2\n")
	f.Add("timestamp,value\n,\n")
	f.Fuzz(func(t *testing.T, in string) {
		ts, vs, err := ReadCSV(strings.NewReader(in), "fuzz.csv")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.csv:") {
				t.Fatalf("error %q does not name the file", err)
			}
			return
		}
		if len(ts) != len(vs) {
			t.Fatalf("%d timestamps, %d values", len(ts), len(vs))
		}
	})
}

// FuzzScore checks that Score never panics and keeps the normalised score
// within [0, 100] for arbitrary scores and windows.
func FuzzScore(f *testing.F) {
	f.Add([]byte{0, 10, 200, 255, 3}, uint8(5), uint8(3))
	f.Fuzz(func(t *testing.T, raw []byte, start, width uint8) {
		if len(raw) == 0 {
			return
		}
		scores := make([]float64, len(raw))
		for i, b := range raw {
			scores[i] = float64(b) / 255
		}
		file := File{Name: "f", Scores: scores}
		if s, e := int(start), int(start)+int(width); e < len(raw) {
			file.Windows = []Window{{s, e}}
		}
		for _, p := range Profiles {
			r := Score([]File{file}, p)
			if r.Normalised < 0 || r.Normalised > 100+1e-9 {
				t.Fatalf("%s: normalised %v outside [0, 100]", p.Name, r.Normalised)
			}
		}
	})
}
