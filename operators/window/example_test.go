package window_test

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/window"
)

// A keyed tumbling window fires when the watermark passes its end.
func ExampleNew() {
	w, err := window.New(window.Config{Job: "page-views", ID: "per-page", Kind: window.Tumbling, Size: 10 * time.Second,
		Aggregates: []aggregate.Spec{{Name: "views", Func: aggregate.Count}, {Name: "p95_ms", Func: aggregate.P95, Field: "ms"}}})
	if err != nil {
		panic(err)
	}
	var cols []string
	for _, c := range w.ResultColumns() {
		cols = append(cols, c.Name+":"+string(c.Type))
	}
	fmt.Println(strings.Join(cols, " "))
	print := operators.EmitterFunc(func(r operators.Record) {
		row := r.Value.(map[string]any)
		fmt.Println(row["key"], row["window_start"], row["window_end"], row["views"], row["p95_ms"])
	})
	ctx := context.Background()
	w.Process(ctx, &operators.Batch{Records: []operators.Record{
		{Key: "/home", EventTime: 1000, Value: map[string]any{"ms": 12.0}},
		{Key: "/home", EventTime: 9000, Value: map[string]any{"ms": 20.0}},
		{Key: "/cart", EventTime: 12000, Value: map[string]any{"ms": 7.0}},
	}}, print)
	w.OnWatermark(ctx, 10000, print)
	// Output:
	// window_start:int64 window_end:int64 key:string views:int64 p95_ms:float64
	// /home 0 10000 2 12
}
