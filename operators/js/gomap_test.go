package js

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/operators"
)

// TestGoMapRecordKeyOrder: a record that reaches a chain as a Go map (a
// Kafka or Kinesis source decodes JSON to one) enumerates its keys in
// sorted order, the same on every run, in goja and with the native
// evaluator. Found by TestNativeEquivalence -seed 9754289806515926070,
// whose error text (JSON.stringify of the record) came out in Go's random
// map order.
func TestGoMapRecordKeyOrder(t *testing.T) {
	record := func() map[string]any {
		return map[string]any{"ts": "😀", "constructor": 0.5, "status": "😀", "n": 163.0, "nested": -66.0,
			"arr": "", "x y": "a\nb", "a": "dup", "ms": 21.0}
	}
	want := `got {"a":"dup","arr":"","constructor":0.5,"ms":21,"n":163,"nested":-66,"status":"😀","ts":"😀","x y":"a\nb"}`
	stages := []Stage{
		{Operator: "op0", Kind: Key, Src: `r => r.constructor`, OnError: OnError{Mode: Skip}},
		{Operator: "op1", Kind: EventTime, Src: `r => (r.s ? r["ms"] : r)`, OnError: OnError{Mode: Fail}},
		{Operator: "op2", Kind: Filter, Src: `r => (r.n && (r.b >= 74))`, OnError: OnError{Mode: Skip}},
		{Operator: "op3", Kind: Map, Src: `r => ({r, "page": (r.constructor == 9007199254740993)})`, OnError: OnError{Mode: Skip}},
	}
	for _, interpreted := range []bool{true, false} {
		// Go's map order differs from one iteration to the next: many
		// runs would show a random order.
		for range 20 {
			run, _ := runChainOnce(t, ChainSpec{Job: "eq", Stages: stages, Interpreted: interpreted},
				[]*operators.Batch{batchOf(record())})
			if !strings.Contains(run.err, want) {
				t.Fatalf("interpreted %v: error %q\nwant it to contain %q", interpreted, run.err, want)
			}
		}
	}
}

// TestGoMapRecordWrites: JS writes to a Go map record go to the map; keys
// JS adds enumerate after the record's own, in the order added, as in a
// JS object; nested maps and slices enumerate sorted too.
func TestGoMapRecordWrites(t *testing.T) {
	c := newChain(t, "", Stage{Operator: "m", Kind: Map, Src: `r => {
		r.z = 1; r.b = 2; delete r.a; r.a = 3; r.l[2] = {y: 1};
		r.keys = Object.keys(r).join() + "|" + JSON.stringify(r.l) + "|" + JSON.stringify({...r.c});
		return r }`})
	in := map[string]any{"b": 1.0, "a": 1.0, "c": map[string]any{"y": 1.0, "x": 2.0}, "l": []any{map[string]any{"q": 1.0, "p": 2.0}, "s", nil}}
	var out collect
	if err := c.Process(context.Background(), batchOf(in), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.recs) != 1 {
		t.Fatalf("outputs %+v", out.recs)
	}
	got := out.recs[0].Value.(map[string]any)
	if reflect.ValueOf(got).Pointer() != reflect.ValueOf(in).Pointer() {
		t.Error("the record was copied, not passed through")
	}
	wantKeys := `b,c,l,z,a|[{"p":2,"q":1},"s",{"y":1}]|{"x":2,"y":1}`
	if got["keys"] != wantKeys {
		t.Errorf("keys %q, want %q", got["keys"], wantKeys)
	}
	if got["z"] != int64(1) || got["b"] != int64(2) || got["a"] != int64(3) {
		t.Errorf("written values %+v", got)
	}
	if y := in["l"].([]any)[2].(map[string]any)["y"]; y != int64(1) {
		t.Errorf("r.l[2].y = %#v: the write did not reach the nested slice", y)
	}
}
