package anomaly

import (
	"testing"
	"time"
)

// youngCounts are a demo page's views per 5 s window over its first 68
// windows (Poisson-like counts around 155 that wander up to about 170 for
// a few minutes): noise whose noise/spread ratio, over the 64-point
// baseline, dips just below the white-noise threshold.
var youngCounts = []float64{
	148, 155, 151, 173, 154, 149, 157, 153, 161, 167, 169, 158, 144, 137, 138, 164, 151,
	159, 150, 139, 144, 162, 159, 154, 147, 149, 146, 150, 165, 162, 174, 162, 171, 171,
	166, 163, 153, 173, 169, 172, 172, 168, 159, 180, 178, 157, 153, 166, 163, 149, 149,
	143, 157, 152, 151, 150, 162, 165, 153, 154, 150, 153, 148, 160, 182, 150, 141, 165,
}

// TestYoungSeriesNoiseRecord: in a young series, a new minimum 3 robust
// deviations below the median (124 views after a minimum of 137) is noise,
// not an anomaly, while a 3× spike at the same point still is.
func TestYoungSeriesNoiseRecord(t *testing.T) {
	for _, method := range []string{MethodAuto, MethodNovelty} {
		for _, tc := range []struct {
			v    float64
			want bool
		}{{124, false}, {465, true}} {
			d, err := New(Config{Method: method})
			if err != nil {
				t.Fatal(err)
			}
			ts := time.Unix(0, 0)
			for i, v := range youngCounts {
				if r := d.Score(ts.Add(time.Duration(i)*5*time.Second), []float64{v}); r.IsAnomaly {
					t.Fatalf("%s: point %d (%v) flagged, score %.3f", method, i, v, r.Score)
				}
			}
			r := d.Score(ts.Add(time.Duration(len(youngCounts))*5*time.Second), []float64{tc.v})
			if r.IsAnomaly != tc.want {
				t.Errorf("%s: %v views after %d points: score %.3f (z %.1f), is_anomaly %v, want %v",
					method, tc.v, len(youngCounts), r.Score, r.Explanation.Z, r.IsAnomaly, tc.want)
			}
		}
	}
}
