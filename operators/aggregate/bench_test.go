package aggregate

import (
	"fmt"
	"testing"

	"github.com/runnel-dev/runnel/operators/js"
)

// BenchmarkAdd reports ns per value added for each builtin, and for a
// custom JS aggregate (one budgeted JS call per value).
func BenchmarkAdd(b *testing.B) {
	cases := []Spec{
		{Name: "count", Func: Count}, {Name: "sum", Func: Sum, Field: "v"}, {Name: "avg", Func: Avg, Field: "v"},
		{Name: "max", Func: Max, Field: "v"}, {Name: "p95", Func: P95, Field: "v"}, {Name: "distinct", Func: Distinct, Field: "u"},
		{Name: "custom", Func: Custom, Object: "{init: () => 0, add: (a, r) => a + r.v, merge: (a, b) => a + b}"},
	}
	vals := make([]map[string]any, 4096)
	for i := range vals {
		vals[i] = map[string]any{"v": float64(i % 300), "u": fmt.Sprintf("user-%d", i)}
	}
	for _, s := range cases {
		b.Run(s.Name, func(b *testing.B) {
			c, err := Compile("", []Spec{s}, js.Options{})
			if err != nil {
				b.Fatal(err)
			}
			in, err := c.Instance()
			if err != nil {
				b.Fatal(err)
			}
			accs, _ := in.New()
			b.ResetTimer()
			for i := range b.N {
				if err := in.Add(accs, vals[i%len(vals)]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
