package testutil

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/pmezard/go-difflib/difflib"
)

var seedFlag = flag.Uint64("seed", 0, "seed of the randomized tests (0: a fresh one, printed)")

// seeds holds the seed each running test drew, so that every call in one
// test returns the same seed, as every call does under -seed: a rerun with
// the printed seed then replays the whole test.
var seeds sync.Map // testing.TB → uint64

// Seed returns the seed of a randomized test: the -seed flag, or a fresh
// one when it is 0 (the default), drawn once per test. It logs the seed,
// and again on failure with how to run the test with it.
func Seed(t testing.TB) uint64 {
	t.Helper()
	if s, ok := seeds.Load(t); ok {
		return s.(uint64)
	}
	s := *seedFlag
	if s == 0 {
		s = rand.Uint64()
	}
	seeds.Store(t, s)
	t.Logf("seed %d", s)
	t.Cleanup(func() {
		seeds.Delete(t)
		if t.Failed() {
			t.Logf("%s failed with seed %d: rerun with -seed %d", t.Name(), s, s)
		}
	})
	return s
}

// Rand returns a generator seeded by Seed(t), stream picking one of
// several independent generators of a test.
func Rand(t testing.TB, stream uint64) *rand.Rand {
	t.Helper()
	return rand.New(rand.NewPCG(Seed(t), stream))
}

// Diff returns a unified diff from want to got, one line per element or
// line of text ("-" only in want, "+" only in got); "" when they are
// equal.
func Diff[T any](want, got []T) string {
	a, b := lines(want), lines(got)
	if strings.Join(a, "") == strings.Join(b, "") {
		return ""
	}
	d, err := difflib.GetUnifiedDiffString(difflib.UnifiedDiff{A: a, B: b, FromFile: "want", ToFile: "got", Context: 3})
	if err != nil {
		return fmt.Sprintf("diff: %v\nwant:\n%s\ngot:\n%s", err, strings.Join(a, ""), strings.Join(b, ""))
	}
	return d
}

func lines[T any](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = strings.TrimRight(fmt.Sprint(x), "\n") + "\n"
	}
	return out
}

// Seeds returns the seeds of a randomized test's runs, n of them (short
// in -short mode) counting up from Seed(t): -seed with a failing run's
// seed makes that run the first.
func Seeds(t testing.TB, n, short int) []uint64 {
	t.Helper()
	if testing.Short() {
		n = short
	}
	base := Seed(t)
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = base + uint64(i)
	}
	return seeds
}
