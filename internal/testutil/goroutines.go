package testutil

import (
	"runtime"
	"testing"
	"time"
)

// goroutineGrace is how long goroutines have to return after their owner
// stopped: long enough for a loaded machine to schedule them.
const goroutineGrace = 10 * time.Second

// CheckGoroutines counts the goroutines now and, when the test ends (after
// the cleanups registered later, which run first), fails it if more are
// running than at the start once goroutineGrace has passed, printing every
// goroutine's stack.
func CheckGoroutines(t testing.TB) {
	t.Helper()
	base := runtime.NumGoroutine()
	t.Cleanup(func() { WaitGoroutines(t, base) })
}

// WaitGoroutines waits until no more than base goroutines are running and
// fails the test, printing every stack, if that does not happen within
// goroutineGrace.
func WaitGoroutines(t testing.TB, base int) {
	t.Helper()
	waitGoroutines(t, base, goroutineGrace)
}

func waitGoroutines(t testing.TB, base int, grace time.Duration) {
	t.Helper()
	if Within(grace, func() bool { return runtime.NumGoroutine() <= base }) {
		return
	}
	buf := make([]byte, 1<<20)
	n := runtime.NumGoroutine()
	t.Errorf("%d goroutines running, %d before (%d leaked):\n%s", n, base, n-base, buf[:runtime.Stack(buf, true)])
}
