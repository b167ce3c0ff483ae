package testutil

import (
	"fmt"
	"testing"
	"time"
)

// Within calls cond until it returns true or timeout has passed, and
// reports whether it did. It waits 5 ms after the first call, doubling up
// to 200 ms, so fast conditions are seen at once and slow ones do not spin.
// cond is always called at least once, and once more at the deadline.
func Within(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	wait := 5 * time.Millisecond
	for {
		if cond() {
			return true
		}
		left := time.Until(deadline)
		if left <= 0 {
			return false
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// Eventually is Within for a condition the test needs: when cond is still
// false after timeout, the test fails at once with the message (format and
// args, as for t.Fatalf) and the timeout.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, format string, args ...any) {
	t.Helper()
	if !Within(timeout, cond) {
		t.Fatalf("after %v: %s", timeout, fmt.Sprintf(format, args...))
	}
}
