package aggregate

import (
	"errors"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/operators/js"
)

// TestCustomAggregateBudget: a custom aggregate's functions run under the
// same time and memory budget as a JS map or filter — a loop, a doubling
// string, a backtracking regex and memory kept a little per call each
// fail with the js package's error, naming the aggregate.
func TestCustomAggregateBudget(t *testing.T) {
	cases := []struct {
		name, functions, add string
		cause                error
		// or, on a loaded machine, the time budget may run out first
		orTimeout bool
	}{
		{"loop", "", `(a, r) => { for (;;) {} }`, js.ErrTimeout, false},
		{"doubling", "", `(a, r) => { var s = "xxxxxxxx"; for (;;) s = s + s }`, js.ErrMemory, true},
		{"regex", "", `(a, r) => /(?=a)(a+)+b/.test(r.s) ? a + 1 : a`, js.ErrRegex, false},
		{"kept across calls", "var keep = [];", `(a, r) => { keep.push("x".repeat(1 << 20) + r.i); return a + 1 }`, js.ErrRetained, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Compile(tc.functions, []Spec{{Name: "evil", Func: Custom,
				Object: `{init: () => 0, add: ` + tc.add + `, merge: (a, b) => a + b}`}},
				js.Options{MaxHeapGrowth: 8 << 20, MaxRetained: 32 << 20})
			if err != nil {
				t.Fatal(err)
			}
			in, err := c.Instance()
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close()
			accs, err := in.New()
			if err != nil {
				t.Fatal(err)
			}
			for i := range 200 {
				err = in.Add(accs, map[string]any{"i": i, "s": strings.Repeat("a", 40)})
				if err != nil {
					break
				}
			}
			if !(errors.Is(err, tc.cause) || tc.orTimeout && errors.Is(err, js.ErrTimeout)) || !strings.Contains(err.Error(), `aggregate "evil"`) {
				t.Fatalf("want %v naming the aggregate, got %v", tc.cause, err)
			}
		})
	}
}
