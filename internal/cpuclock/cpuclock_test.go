package cpuclock

import (
	"runtime"
	"testing"
)

// TestProcessAdvances checks that busy work shows up as CPU time on the
// platforms that report it.
func TestProcessAdvances(t *testing.T) {
	start := Process()
	if start == Unknown {
		if runtime.GOOS != "windows" && runtime.GOOS != "plan9" && runtime.GOOS != "js" && runtime.GOOS != "wasip1" {
			t.Fatalf("no CPU time on %s", runtime.GOOS)
		}
		t.Skip("CPU time not reported here")
	}
	x := 0
	for Since(start) == 0 {
		for i := range 1_000_000 {
			x += i
		}
	}
	if Since(start) <= 0 || Since(Unknown) != 0 {
		t.Fatalf("Since(start) = %v, Since(Unknown) = %v", Since(start), Since(Unknown))
	}
	_ = x
}
