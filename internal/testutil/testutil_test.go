package testutil

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records a failure instead of failing, so a test can check that a
// helper fails when it should.
type fakeT struct {
	testing.TB
	failed  bool
	message string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = true
	f.message = fmt.Sprintf(format, args...)
}
func (f *fakeT) Errorf(format string, args ...any) { f.Fatalf(format, args...) }

func TestWithinSeesLateCondition(t *testing.T) {
	var calls atomic.Int32
	if !Within(10*time.Second, func() bool { return calls.Add(1) >= 4 }) {
		t.Fatal("a condition that became true was not seen")
	}
	if calls.Load() != 4 {
		t.Fatalf("cond called %d times after it held, want 4 in all", calls.Load())
	}
}

func TestWithinGivesUp(t *testing.T) {
	var calls atomic.Int32
	if Within(30*time.Millisecond, func() bool { calls.Add(1); return false }) {
		t.Fatal("a condition that never held was reported true")
	}
	if calls.Load() < 2 {
		t.Fatalf("cond called %d times; want one call at the start and one at the deadline at least", calls.Load())
	}
}

func TestEventuallyFailsWithMessage(t *testing.T) {
	ft := &fakeT{}
	Eventually(ft, time.Millisecond, func() bool { return false }, "no %s", "rows")
	if !ft.failed || !strings.Contains(ft.message, "no rows") {
		t.Fatalf("failed=%v message=%q; want a failure naming the condition", ft.failed, ft.message)
	}
	ft = &fakeT{}
	Eventually(ft, time.Second, func() bool { return true }, "unused")
	if ft.failed {
		t.Fatal("Eventually failed on a condition that held")
	}
}

func TestWaitGoroutinesCatchesLeak(t *testing.T) {
	ft := &fakeT{}
	base := runtime.NumGoroutine()
	stop := make(chan struct{})
	go func() { <-stop }() // the leak
	waitGoroutines(ft, base, 20*time.Millisecond)
	close(stop)
	if !ft.failed || !strings.Contains(ft.message, "leaked") {
		t.Fatalf("failed=%v message=%q; want a leak reported", ft.failed, ft.message)
	}
}

func TestCheckGoroutinesPassesWhenStopped(t *testing.T) {
	CheckGoroutines(t)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { <-stop; close(done) }()
	close(stop)
	<-done
}

func parkHere(stop chan struct{}) { <-stop }

func TestWaitBlockedSeesParkedGoroutine(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	fn := "github.com/runnel-dev/runnel/internal/testutil.parkHere"
	if blockedIn(fn) {
		t.Fatal("a goroutine reported blocked before any started")
	}
	go parkHere(stop)
	WaitBlocked(t, 10*time.Second, fn)
}

// Seeds counts up from the -seed flag, so a failing run's seed given as
// -seed makes it the first run; -short takes the short count.
func TestSeedsCountUpFromTheSeedFlag(t *testing.T) {
	old := *seedFlag
	t.Cleanup(func() { *seedFlag = old })
	*seedFlag = 41
	want := 5
	if testing.Short() {
		want = 2
	}
	got := Seeds(t, 5, 2)
	if len(got) != want {
		t.Fatalf("%d seeds, want %d", len(got), want)
	}
	for i, s := range got {
		if s != 41+uint64(i) {
			t.Fatalf("seeds %v, want counting up from 41", got)
		}
	}
}

// Every call in one test gets the test's one seed, so a rerun with the
// printed seed replays generators made at different places of the test.
func TestSeedIsOnePerTest(t *testing.T) {
	a, b := Seed(t), Seed(t)
	if a != b {
		t.Fatalf("two calls in one test drew seeds %d and %d; -seed %d would replay neither run", a, b, a)
	}
	if x, y := Rand(t, 1).Uint64(), rand.New(rand.NewPCG(a, 1)).Uint64(); x != y {
		t.Errorf("Rand(t, 1) is not seeded by the test's seed %d", a)
	}
}
