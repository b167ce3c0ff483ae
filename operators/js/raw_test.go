package js

import (
	"context"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/operators"
)

// TestRawJSONRecordsBehaveLikeParsedObjects: a record handed in as raw
// JSON (a RawJSON stream source) gives every function the same answers as
// the same record parsed by JSON.parse, and exports to the same Go value.
func TestRawJSONRecordsBehaveLikeParsedObjects(t *testing.T) {
	rec := `{"page":"/p/1","n":3,"f":2.5,"big":1e300,"neg":-0.0,"nested":{"a":[1,{"b":"c"}]},"esc\"aped":"\u00e9\n","dup":1,"dup":2,"t":true,"nil":null}`
	exprs := []string{
		`r => JSON.stringify(r)`,
		`r => Object.keys(r).join(",")`,
		`r => r.page + r.n + r.f`,
		`r => r.nested === r.nested && r.nested.a[1].b`,
		`r => r["esc\"aped"]`,
		`r => r.dup`,
		`r => "page" in r && !("nope" in r) && r.hasOwnProperty("n") && r.nope === undefined`,
		`r => { r.n = 10; r.added = [1]; delete r.page; return JSON.stringify(r) }`,
		`r => { delete r.dup; return Object.keys(r).join(",") + (r.dup === undefined) }`,
		`r => { delete r.n; r.n = 5; return Object.keys(r).join(",") }`,
		`r => { r.x = 1; r.x = 2; return JSON.stringify(r) }`,
		`r => JSON.stringify({...r, s: 1})`,
		`r => JSON.stringify(Object.assign({}, r))`,
		`r => Object.entries(r).length`,
		`r => { r.nested.a.push(3); return JSON.stringify(r.nested) }`,
		`r => typeof r.toString`,
		`r => String(r.big) + (1 / r.neg)`,
	}
	for _, e := range exprs {
		parsed := "r => (" + e + ")(JSON.parse(r))"
		got := runOne(t, e, json.RawMessage(rec))
		want := runOne(t, parsed, string(rec))
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n raw    %#v\n parsed %#v", e, got, want)
		}
	}
	// Export, untouched and after changes, as the export of JSON.parse.
	for _, e := range []string{`r => r`, `r => ({rec: r, list: [r]})`, `r => { r.n = 1; delete r.t; r.z = {y: r.nested}; return r }`} {
		got := runOne(t, e, json.RawMessage(rec))
		want := runOne(t, "r => (("+e+")(JSON.parse(r)))", rec)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s exported:\n raw    %#v\n parsed %#v", e, got, want)
		}
	}
}

func runOne(t *testing.T, src string, v any) any {
	t.Helper()
	c := newChain(t, "", Stage{Operator: "m", Kind: Map, Src: src})
	var out collect
	if err := c.Process(context.Background(), batchOf(v), &out); err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if len(out.recs) != 1 {
		t.Fatalf("%s: %d outputs", src, len(out.recs))
	}
	return out.recs[0].Value
}

// TestRawJSONFilterPassThroughExports: a raw record a filter keeps leaves
// the chain as a Go map, not bytes, so the operators after it see the
// record as they would have without RawJSON.
func TestRawJSONFilterPassThroughExports(t *testing.T) {
	c := newChain(t, "", Stage{Operator: "f", Kind: Filter, Src: `r => r.ok`})
	var out collect
	in := batchOf(json.RawMessage(`{"ok":true,"n":1,"s":"x","a":[1.5,null]}`), []byte(`{"ok":false}`))
	if err := c.Process(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"ok": true, "n": int64(1), "s": "x", "a": []any{1.5, nil}}
	if len(out.recs) != 1 || !reflect.DeepEqual(out.recs[0].Value, want) {
		t.Fatalf("got %#v", out.recs)
	}
}

// TestRawJSONMalformedFailsFirstStage: []byte that is not JSON is an
// error of the chain's first stage, under its on_error policy; a dead
// letter carries the bad bytes as a string, a good record as JSON. A
// json.RawMessage (from a RawJSON source) that is not JSON fails the
// batch, whatever the policy, as the source would have.
func TestRawJSONMalformedFailsFirstStage(t *testing.T) {
	c := newChain(t, "",
		Stage{Operator: "m", Kind: Map, Src: `r => { if (r.boom) throw new Error("boom"); return r }`, OnError: OnError{Mode: DeadLetter, Stream: "dl"}})
	var out, dead collect
	c.SetSideOutput(operators.DeadLetterOutput("m"), &dead)
	in := batchOf([]byte(`{"a":1,}`), json.RawMessage(`{"boom":1}`), []byte(`{"a":2} x`), json.RawMessage(`{"a":3}`))
	if err := c.Process(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.recs) != 1 || len(dead.recs) != 3 {
		t.Fatalf("out %d, dead letters %d", len(out.recs), len(dead.recs))
	}
	got := []any{}
	for _, d := range dead.recs {
		got = append(got, d.Value.(map[string]any)["record"])
	}
	// Records that do not parse fail before the functions run.
	want := []any{`{"a":1,}`, `{"a":2} x`, json.RawMessage(`{"boom":1}`)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("dead-letter records %#v", got)
	}
	err := c.Process(context.Background(), batchOf(json.RawMessage(`{"a":3}`), json.RawMessage(`{"a":`)), &out)
	if err == nil || !strings.Contains(err.Error(), "shard-0/1") {
		t.Fatalf("malformed raw JSON: %v", err)
	}
}

// TestProjectExportsOnlyListedFields: with ChainSpec.Project, object
// outputs are a *Projected with only the listed fields (missing ones
// nil); other results are exported whole.
func TestProjectExportsOnlyListedFields(t *testing.T) {
	c := newChainSpec(t, ChainSpec{Job: "j", Project: []string{"ms", "gone"},
		Stages: []Stage{{Operator: "m", Kind: Map, Src: `r => r.n === 3 ? 7 : ({page: r.page, ms: r.n * 2})`}}})
	var out collect
	in := batchOf(json.RawMessage(`{"page":"a","n":1}`), map[string]any{"page": "b", "n": 2.0}, json.RawMessage(`{"n":3}`))
	if err := c.Process(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	var got []any
	for _, r := range out.recs {
		if p, ok := r.Value.(*Projected); ok {
			b, _ := json.Marshal(p)
			got = append(got, p.Get("ms"), p.Get("gone"), p.Get("page"), string(b))
			continue
		}
		got = append(got, r.Value)
	}
	want := []any{int64(2), nil, nil, `{"ms":2}`, int64(4), nil, nil, `{"ms":4}`, int64(7)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
}

func TestJSONFieldsGet(t *testing.T) {
	var f JSONFields
	for _, c := range []struct {
		in, field string
		want      any
		found     bool
		err       bool
	}{
		{`{"ts": 1767225600000, "x": "y"}`, "ts", int64(1767225600000), true, false},
		{` {"ts":"2026-01-01T00:00:00Z"} `, "ts", "2026-01-01T00:00:00Z", true, false},
		{`{"ts":1,"ts":2}`, "ts", int64(2), true, false},
		{`{"t\u0073":5}`, "ts", int64(5), true, false},
		{`{"a":{"ts":1}}`, "ts", nil, false, false},
		{`{"ts":1.5}`, "ts", 1.5, true, false},
		{`{"ts":1`, "ts", nil, false, true},
		{`[1]`, "ts", nil, false, true},
		{`{"ts":01}`, "ts", nil, false, true},
	} {
		got, found, err := f.Get([]byte(c.in), c.field)
		if (err != nil) != c.err || found != c.found || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: got %#v %v %v", c.in, got, found, err)
		}
	}
}

// FuzzRawObject: for any input, a raw record is accepted exactly when
// JSON.parse accepts it, and then stringifies the same.
func FuzzRawObject(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":1}`, `{"a":[1,{"b":"\u00e9"}],"a":2}`, `{"a":1,}`, `{"a" 1}`, `{"\ud800":"x"}`, `{"a":1e999}`} {
		f.Add(s)
	}
	c := newChainSpec(f, ChainSpec{Job: "f", Stages: []Stage{{Operator: "m", Kind: Map,
		Src: `r => { var p; try { p = JSON.parse(r.s) } catch (e) { p = undefined } return {raw: r.raw === undefined ? "!" : JSON.stringify(r.raw), parsed: p === undefined ? "!" : JSON.stringify(p)} }`}}})
	rc := newChainSpec(f, ChainSpec{Job: "f", Stages: []Stage{{Operator: "m", Kind: Map, Src: `r => JSON.stringify(r)`}}})
	f.Fuzz(func(t *testing.T, s string) {
		var ref collect
		if err := c.Process(context.Background(), batchOf(map[string]any{"s": s}), &ref); err != nil {
			t.Skip(err)
		}
		want := ref.recs[0].Value.(map[string]any)["parsed"]
		var out collect
		got := any("!")
		if err := rc.Process(context.Background(), batchOf(json.RawMessage(s)), &out); err == nil {
			got = out.recs[0].Value
		}
		if got != want {
			t.Fatalf("%q: raw %v, JSON.parse %v", s, got, want)
		}
	})
}

// TestKeepRawPassesUntouchedBytes: with KeepRaw, a raw record an event-time
// chain passes on unchanged stays the same bytes; one whose object JS
// wrote to, or whose nested value JS got hold of, is exported.
func TestKeepRawPassesUntouchedBytes(t *testing.T) {
	c := newChainSpec(t, ChainSpec{Job: "j", KeepRaw: true, Stages: []Stage{{Operator: "source", Kind: EventTime,
		Src: `r => { if (r.w) r.x = 1; if (r.n) r.n.y; return r.ts }`}}})
	var out collect
	in := batchOf(json.RawMessage(`{"ts":5}`), json.RawMessage(`{"ts":6,"w":1}`), json.RawMessage(`{"ts":7,"n":{}}`))
	if err := c.Process(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	if raw, ok := out.recs[0].Value.(json.RawMessage); !ok || string(raw) != `{"ts":5}` || out.recs[0].EventTime != 5 {
		t.Fatalf("untouched: %#v", out.recs[0])
	}
	want := []any{map[string]any{"ts": int64(6), "w": int64(1), "x": int64(1)}, map[string]any{"ts": int64(7), "n": map[string]any{}}}
	if got := []any{out.recs[1].Value, out.recs[2].Value}; !reflect.DeepEqual(got, want) {
		t.Fatalf("changed: %#v", got)
	}
}
