package backoff

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestBackoffDoublesWithinItsCap: the n-th delay lies in the upper half of
// Base·2^n capped at Max, Failures counts the delays, and Reset starts
// over at Base.
func TestBackoffDoublesWithinItsCap(t *testing.T) {
	b := Backoff{Base: 10 * time.Millisecond, Max: 80 * time.Millisecond}
	for round := range 2 {
		for n, top := range []time.Duration{10, 20, 40, 80, 80, 80} {
			top *= time.Millisecond
			if d := b.Next(); d < top/2 || d > top {
				t.Fatalf("round %d, delay %d: %v, want between %v and %v", round, n, d, top/2, top)
			}
			if b.Failures() != n+1 {
				t.Fatalf("round %d: %d failures after %d delays", round, b.Failures(), n+1)
			}
		}
		b.Reset()
	}
}

// TestSleepEndsWithItsContext: a sleep under an ended context returns the
// context's error at once; a zero sleep under a live one returns nil.
func TestSleepEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("sleep under a cancelled context: %v", err)
	}
	if err := Sleep(context.Background(), 0); err != nil {
		t.Fatalf("zero sleep: %v", err)
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("short sleep: %v", err)
	}
}
