package jobs

import (
	"context"
	"fmt"
	"testing"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
)

// The Go fast path of a plain field read gives the event times the JS
// chain gives.
func TestEventTimeJSFastPathAgreesWithJS(t *testing.T) {
	recs := func() []operators.Record {
		return []operators.Record{
			{Value: map[string]any{"ts": 1500.0}},
			{Value: map[string]any{"ts": "2026-01-01T00:00:00.250Z"}},
			{Value: map[string]any{"ts": "1700"}},
		}
	}
	fast, err := eventTimeJS("j", "r => r.ts", "", js.OnError{}, js.Options{})
	if err != nil {
		t.Fatal(err)
	}
	slow, err := eventTimeJS("j", "r => (r.ts)", "", js.OnError{}, js.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var got [2][]int64
	for i, f := range []engine.EventTimeFactory{fast, slow} {
		fn, err := f()
		if err != nil {
			t.Fatal(err)
		}
		out, err := fn(context.Background(), recs())
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range out {
			got[i] = append(got[i], r.EventTime)
		}
	}
	want := []int64{1500, 1767225600250, 1700}
	if fmt.Sprint(got[0]) != fmt.Sprint(want) || fmt.Sprint(got[1]) != fmt.Sprint(want) {
		t.Fatalf("Go path %v, JS path %v, want %v", got[0], got[1], want)
	}
	if _, err := eventTimeJS("j", "r => r.", "", js.OnError{}, js.Options{}); err == nil {
		t.Fatal("a syntax error must fail")
	}
}
