package testutil

import (
	"bytes"
	"runtime"
	"testing"
	"time"
)

// WaitBlocked waits until some goroutine is parked (in a select, on a
// channel or a lock) inside the function fn, named as a stack trace names
// it ("github.com/runnel-dev/runnel/streams.(*Store).Wait"), and fails
// the test if none is within timeout. A test of a wake-up calls it before
// the event that should wake the goroutine, so the wake-up is really
// tested rather than raced.
func WaitBlocked(t testing.TB, timeout time.Duration, fn string) {
	t.Helper()
	Eventually(t, timeout, func() bool { return blockedIn(fn) }, "no goroutine blocked in %s", fn)
}

// blockedIn reports whether a goroutine waits in a select, on a channel or
// a lock with fn on its stack.
func blockedIn(fn string) bool {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	want := []byte(fn + "(")
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		header, _, _ := bytes.Cut(g, []byte("\n"))
		parked := bytes.Contains(header, []byte("[select")) || bytes.Contains(header, []byte("[chan ")) ||
			bytes.Contains(header, []byte("[sync.")) || bytes.Contains(header, []byte("[semacquire"))
		if parked && bytes.Contains(g, want) {
			return true
		}
	}
	return false
}
