package js

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/operators"
)

type collect struct{ recs []operators.Record }

func (c *collect) Emit(r operators.Record) { c.recs = append(c.recs, r) }

func newChain(t testing.TB, functions string, stages ...Stage) *Chain {
	t.Helper()
	return newChainSpec(t, ChainSpec{Job: "job1", Functions: functions, Stages: stages})
}

// newChainSpec compiles spec and makes its chain, closed when the test ends.
func newChainSpec(t testing.TB, spec ChainSpec) *Chain {
	t.Helper()
	cp, err := CompileChain(spec)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cp.New()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func batchOf(vals ...any) *operators.Batch {
	b := &operators.Batch{}
	for i, v := range vals {
		b.Records = append(b.Records, operators.Record{Value: v, EventTime: 7, Origin: fmt.Sprintf("shard-0/%d", i)})
	}
	return b
}

func TestChainMapFilterKeyEventTime(t *testing.T) {
	c := newChain(t, `function isBot(u) { return u.startsWith("bot-") }`,
		Stage{Operator: "parse", Kind: Map, Src: `r => r.skip ? null : ({page: r.page, user: r.user, n: r.n * 2, ts: r.ts})`},
		Stage{Operator: "humans", Kind: Filter, Src: `r => !isBot(r.user)`},
		Stage{Operator: "explode", Kind: Map, Src: `r => r.page === "/multi" ? [r, Object.assign({}, r, {page: "/copy"})] : r`},
		Stage{Operator: "per-page", Kind: Key, Src: `r => r.page`},
		Stage{Operator: "source", Kind: EventTime, Src: `r => r.ts`},
	)
	in := batchOf(
		map[string]any{"page": "/a", "user": "u1", "n": 1.5, "ts": int64(1000)},
		map[string]any{"page": "/b", "user": "bot-1", "n": 2, "ts": int64(2000)},
		map[string]any{"page": "/c", "user": "u2", "n": 3, "ts": int64(3000), "skip": true},
		[]byte(`{"page":"/multi","user":"u3","n":4,"ts":"2024-01-01T00:00:01.5Z"}`),
	)
	var out collect
	if err := c.Process(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	type row struct {
		key    string
		ts     int64
		origin string
		n      any
	}
	var got []row
	for _, r := range out.recs {
		got = append(got, row{r.Key, r.EventTime, r.Origin, r.Value.(map[string]any)["n"]})
	}
	want := []row{
		{"/a", 1000, "shard-0/0", int64(3)},
		{"/multi", 1704067201500, "shard-0/3", int64(8)},
		{"/copy", 1704067201500, "shard-0/3", int64(8)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v\nwant %#v", got, want)
	}
	in2, out2, _ := c.Stats()
	if in2 != 4 || out2 != 3 {
		t.Fatalf("stats in=%d out=%d", in2, out2)
	}
}

func TestChainErrorPolicies(t *testing.T) {
	src := `r => { if (r.bad) throw new Error("bad record " + r.id); return r }`
	vals := func() *operators.Batch {
		return batchOf(map[string]any{"id": 1}, map[string]any{"id": 2, "bad": true}, map[string]any{"id": 3})
	}
	t.Run("fail", func(t *testing.T) {
		c := newChain(t, "", Stage{Operator: "m", Kind: Map, Src: src})
		err := c.Process(context.Background(), vals(), &collect{})
		var je *Error
		if !errors.As(err, &je) {
			t.Fatalf("want *Error, got %v", err)
		}
		if je.Job != "job1" || je.Operator != "m" || je.Origin != "shard-0/1" || !strings.Contains(err.Error(), "bad record 2") {
			t.Fatalf("error does not name job/operator/record: %v", err)
		}
	})
	t.Run("skip", func(t *testing.T) {
		c := newChain(t, "", Stage{Operator: "m", Kind: Map, Src: src, OnError: OnError{Mode: Skip}})
		var out collect
		if err := c.Process(context.Background(), vals(), &out); err != nil {
			t.Fatal(err)
		}
		_, _, st := c.Stats()
		if len(out.recs) != 2 || st[0].Skipped != 1 || st[0].Errors != 1 {
			t.Fatalf("out=%d stats=%+v", len(out.recs), st)
		}
	})
	t.Run("dead_letter", func(t *testing.T) {
		c := newChain(t, "", Stage{Operator: "m", Kind: Map, Src: src, OnError: OnError{Mode: DeadLetter, Stream: "dlq"}})
		if names := c.SideOutputNames(); len(names) != 1 || names[0] != operators.DeadLetterOutput("m") {
			t.Fatalf("side outputs %v", names)
		}
		var out, dead collect
		c.SetSideOutput(operators.DeadLetterOutput("m"), &dead)
		if err := c.Process(context.Background(), vals(), &out); err != nil {
			t.Fatal(err)
		}
		if len(out.recs) != 2 || len(dead.recs) != 1 || dead.recs[0].Origin != "shard-0/1" {
			t.Fatalf("out=%d dead=%v", len(out.recs), dead.recs)
		}
		v := dead.recs[0].Value.(map[string]any)
		if !strings.Contains(v["error"].(string), "bad record 2") || v["operator"] != "m" {
			t.Fatalf("dead letter %v", v)
		}
	})
	t.Run("partial array output withdrawn", func(t *testing.T) {
		c := newChain(t, "",
			Stage{Operator: "m", Kind: Map, Src: `r => [r, {id: r.id, bad: r.bad}]`},
			Stage{Operator: "k", Kind: Key, Src: `r => { if (r.bad) throw new Error("no"); return r.id }`, OnError: OnError{Mode: Skip}})
		var out collect
		in := batchOf(map[string]any{"id": 1}, map[string]any{"id": 2, "bad": false}, map[string]any{"id": 3, "bad": true})
		in.Records[1].Value.(map[string]any)["bad"] = nil
		if err := c.Process(context.Background(), in, &out); err != nil {
			t.Fatal(err)
		}
		// record 3's first output passed the key stage (r.bad is read from
		// the wrapped map) only for the copy; both must be withdrawn.
		for _, r := range out.recs {
			if r.Origin == "shard-0/2" {
				t.Fatalf("output of a failed record kept: %+v", r)
			}
		}
		if len(out.recs) != 4 {
			t.Fatalf("want 4 outputs, got %d", len(out.recs))
		}
	})
	t.Run("bad key and event time", func(t *testing.T) {
		c := newChain(t, "",
			Stage{Operator: "k", Kind: Key, Src: `r => r.k`, OnError: OnError{Mode: Skip}},
			Stage{Operator: "src", Kind: EventTime, Src: `r => r.ts`, OnError: OnError{Mode: Skip}})
		var out collect
		in := batchOf(map[string]any{"k": "a", "ts": "yesterday"}, map[string]any{"ts": 5}, map[string]any{"k": 7, "ts": "12"})
		if err := c.Process(context.Background(), in, &out); err != nil {
			t.Fatal(err)
		}
		_, _, st := c.Stats()
		if len(out.recs) != 1 || out.recs[0].Key != "7" || out.recs[0].EventTime != 12 || st[0].Skipped != 1 || st[1].Skipped != 1 {
			t.Fatalf("out=%+v stats=%+v", out.recs, st)
		}
	})
}

func TestCompileSyntaxErrorPosition(t *testing.T) {
	_, err := CompileChain(ChainSpec{Job: "j", Stages: []Stage{
		{Operator: "ok", Kind: Map, Src: "r => r"},
		{Operator: "broken", Kind: Filter, Src: "r => {\n  return r.x ==== 1 }"},
	}})
	var se *SyntaxError
	if !errors.As(err, &se) {
		t.Fatalf("want *SyntaxError, got %v", err)
	}
	if se.Name != "broken.filter" || se.Line != 2 {
		t.Fatalf("got %+v", se)
	}
	_, err = Compile("function f( {", Snippet{Name: "a", Src: "r => r"})
	if !errors.As(err, &se) || se.Name != FunctionsName || se.Line != 1 {
		t.Fatalf("functions block: %v", err)
	}
	_, err = Compile("", Snippet{Name: "a", Src: "r =>"})
	if !errors.As(err, &se) || se.Line != 1 || se.Column < 1 || se.Column > 5 {
		t.Fatalf("column: %+v", se)
	}
}

func TestNotAFunction(t *testing.T) {
	p, err := Compile("", Snippet{Name: "m.map", Src: "42"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.NewVM(Options{}); err == nil || !strings.Contains(err.Error(), "m.map") {
		t.Fatalf("want error naming the snippet, got %v", err)
	}
}

func TestTimeoutResumesInnocentRecords(t *testing.T) {
	c := newChainSpec(t, ChainSpec{Job: "j", Options: Options{Budget: 30 * time.Millisecond}, Stages: []Stage{
		{Operator: "slow", Kind: Map, OnError: OnError{Mode: Skip},
			Src: `r => { var end = Date.now() + r.ms; while (Date.now() < end) {} return r }`},
	}})
	// Each of the first five takes 10ms (50ms in all, over one budget but
	// each within it); the sixth loops forever.
	in := batchOf(map[string]any{"ms": 10}, map[string]any{"ms": 10}, map[string]any{"ms": 10},
		map[string]any{"ms": 10}, map[string]any{"ms": 10}, map[string]any{"ms": 1e12}, map[string]any{"ms": 0})
	var out collect
	if err := c.Process(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	_, _, st := c.Stats()
	if len(out.recs) != 6 || st[0].Skipped != 1 {
		t.Fatalf("out=%d stats=%+v", len(out.recs), st)
	}
	for _, r := range out.recs {
		if r.Origin == "shard-0/5" {
			t.Fatal("the looping record was emitted")
		}
	}
}

func TestChainBadRawJSONAndPassThrough(t *testing.T) {
	c := newChain(t, "", Stage{Operator: "m", Kind: Map, Src: `r => r.keep ? r : {copy: r.s}`, OnError: OnError{Mode: Skip}})
	orig := map[string]any{"keep": true}
	in := batchOf([]byte(`{"s": "é"}`), []byte(`{not json`), orig, "ünïcode")
	var out collect
	if err := c.Process(context.Background(), in, &out); err != nil {
		t.Fatal(err)
	}
	_, _, st := c.Stats()
	if len(out.recs) != 3 || st[0].Skipped != 1 {
		t.Fatalf("out=%+v stats=%+v", out.recs, st)
	}
	if got := out.recs[0].Value.(map[string]any)["copy"]; got != "é" {
		t.Fatalf("copy = %v", got)
	}
	// An object passed through unchanged is the caller's own value.
	if m, ok := out.recs[1].Value.(map[string]any); !ok || reflect.ValueOf(m).Pointer() != reflect.ValueOf(orig).Pointer() {
		t.Fatalf("pass-through value was copied: %#v", out.recs[1].Value)
	}
}

// A record a RawJSON source left undecoded that is not JSON fails the
// chain as the source's error, and counts as an error of the chain's
// first stage, as a record that fails in a stage counts there: a fused
// chain's stages show what failed the task.
func TestChainMalformedRawJSONCounted(t *testing.T) {
	c := newChain(t, "", Stage{Operator: "m", Kind: Map, Src: `r => ({page: r.page})`}, Stage{Operator: "w", Kind: Key, Src: `r => r.page`})
	err := c.Process(context.Background(), batchOf(json.RawMessage(`{"page":"/a"}`), json.RawMessage(`not json`)), &collect{})
	if err == nil || !strings.Contains(err.Error(), "read record shard-0/1") {
		t.Fatalf("err = %v, want the source's error for record shard-0/1", err)
	}
	if _, _, st := c.Stats(); st[0].Errors != 1 || st[1].Errors != 0 {
		t.Fatalf("stage stats %+v, want one error in the first stage", st)
	}
}

func TestExportNestedAndCyclic(t *testing.T) {
	c := newChain(t, "", Stage{Operator: "m", Kind: Map,
		Src: `r => { var o = {a: {b: [1, 2.5, "x", null, true]}, d: new Date(5)}; var cyc = {}; cyc.self = cyc; o.c = cyc; return o }`})
	var out collect
	if err := c.Process(context.Background(), batchOf(1), &out); err != nil {
		t.Fatal(err)
	}
	v := out.recs[0].Value.(map[string]any)
	if !reflect.DeepEqual(v["a"], map[string]any{"b": []any{int64(1), 2.5, "x", nil, true}}) {
		t.Fatalf("nested: %#v", v["a"])
	}
	if d, ok := v["d"].(time.Time); !ok || d.UnixMilli() != 5 {
		t.Fatalf("date: %#v", v["d"])
	}
}

// TestCancelInterruptsBatch: cancelling the context stops a running batch
// (a job being stopped) without blaming a record.
func TestCancelInterruptsBatch(t *testing.T) {
	c := newChainSpec(t, ChainSpec{Job: "j", Options: Options{Budget: time.Hour},
		Stages: []Stage{{Operator: "spin", Kind: Map, Src: `r => { for (;;) {} }`}}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- c.Process(ctx, batchOf(1), &collect{}) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("want context.Canceled, got %v", err)
	}
	_, _, st := c.Stats()
	if st[0].Errors != 0 {
		t.Fatalf("a record was blamed: %+v", st)
	}
}
