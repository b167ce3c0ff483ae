package js

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/operators"
)

// TestRegexBudget: a pattern that backtracks catastrophically fails its
// record with ErrRegex naming the budget and the pattern, whichever method
// runs it; it never yields the no-match regexp2's timeout leaves behind.
// Under skip, the other records of the batch go through.
func TestRegexBudget(t *testing.T) {
	const bad = `(?=a)(a+)+b`
	cases := map[string]string{
		"test":          `r => /` + bad + `/.test(r.s)`,
		"match":         `r => r.s.match(/` + bad + `/)`,
		"replace":       `r => r.s.replace(/` + bad + `/g, "")`,
		"replaceAll":    `r => r.s.replaceAll(/` + bad + `/g, "")`,
		"search":        `r => r.s.search(/` + bad + `/)`,
		"split":         `r => r.s.split(/` + bad + `/)`,
		"matchAll":      `r => [...r.s.matchAll(/` + bad + `/g)]`,
		"exec":          `r => /` + bad + `/.exec(r.s)`,
		"sticky offset": `r => { var re = /(a+)+b/y; re.lastIndex = 1; return re.test(r.s) }`,
		"caught":        `r => { try { return /` + bad + `/.test(r.s) } catch (e) { return "caught" } }`,
		"backreference": `r => /^(a+)+\1b/.test(r.s)`,
	}
	for name, src := range cases {
		t.Run(name, func(t *testing.T) {
			c := newChainSpec(t, ChainSpec{Job: "j", Stages: []Stage{{Operator: "rx", Kind: Map, Src: src}}})
			err := c.Process(context.Background(), batchOf(map[string]any{"s": strings.Repeat("a", 40)}), &collect{})
			var je *Error
			if !errors.As(err, &je) || je.Operator != "rx" || !errors.Is(err, ErrRegex) {
				t.Fatalf("want *Error with ErrRegex naming operator rx, got %v", err)
			}
			if msg := err.Error(); !strings.Contains(msg, "time budget of "+RegexBudget.String()) || name != "matchAll" && !strings.Contains(msg, "(a+)+") {
				t.Fatalf("error does not name the budget and the pattern: %v", msg)
			}
			if !je.Retriable() {
				t.Fatal("a regex over its budget on a loaded machine may pass on retry: want Retriable")
			}
		})
	}
	t.Run("skip keeps the other records", func(t *testing.T) {
		c := newChainSpec(t, ChainSpec{Job: "j", Stages: []Stage{{Operator: "rx", Kind: Filter,
			Src: `r => /^(?=a)(a+)+b$/.test(r.s)`, OnError: OnError{Mode: Skip}}}})
		var out collect
		err := c.Process(context.Background(), batchOf(map[string]any{"s": "aab"}, map[string]any{"s": strings.Repeat("a", 40)},
			map[string]any{"s": "ab"}), &out)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.recs) != 2 {
			t.Fatalf("want the two matching records, got %d", len(out.recs))
		}
		if _, _, st := c.Stats(); st[0].Skipped != 1 {
			t.Fatalf("want one skipped record, got %+v", st[0])
		}
	})
}

// TestRegexFastPathsKept: the guard leaves ordinary patterns their results.
func TestRegexFastPathsKept(t *testing.T) {
	c := newChainSpec(t, ChainSpec{Job: "j", Stages: []Stage{{Operator: "m", Kind: Map, Src: `r => ({
		t: /(?<=x)y/.test(r.s), m: r.s.match(/(\w)\1/)[0], s: r.s.split(/(?=y)/).length,
		r: r.s.replace(/x(?!z)/g, "-"), a: [...r.s.matchAll(/y/g)].length, q: r.s.search(/z/) })`}}})
	var out collect
	if err := c.Process(context.Background(), batchOf(map[string]any{"s": "xyxyzz"}), &out); err != nil {
		t.Fatal(err)
	}
	got := out.recs[0].Value.(map[string]any)
	want := map[string]any{"t": true, "m": "zz", "s": int64(3), "r": "-y-yzz", "a": int64(2), "q": int64(4)}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("%s: got %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
}

// TestRetainedAcrossCalls: a global grown by 1 MiB a call, every call far
// under MaxHeapGrowth, fails the job with ErrRetained once the VM holds
// more than MaxRetained; not a record (skip would not free it).
func TestRetainedAcrossCalls(t *testing.T) {
	c := newChainSpec(t, ChainSpec{Job: "j", Functions: `var keep = [];`,
		Options: Options{Budget: 10 * time.Second, MaxHeapGrowth: 8 << 20, MaxRetained: 32 << 20},
		Stages: []Stage{{Operator: "grow", Kind: Map, OnError: OnError{Mode: Skip},
			Src: `r => { keep.push("x".repeat(1 << 20) + r.i); return r }`}}})
	for i := range 200 {
		err := c.Process(context.Background(), batchOf(map[string]any{"i": i}), &collect{})
		if err == nil {
			continue
		}
		var je *Error
		if !errors.Is(err, ErrRetained) || errors.As(err, &je) {
			t.Fatalf("call %d: want a job error ErrRetained, got %v", i, err)
		}
		if i < 32 {
			t.Fatalf("failed after %d MiB kept, under the 32 MiB limit: %v", i, err)
		}
		if !strings.Contains(err.Error(), "MiB between calls") {
			t.Fatalf("error does not say what was kept: %v", err)
		}
		return
	}
	t.Fatal("200 MiB kept in a global across calls: not stopped")
}

// TestRetainedAllowsSteadyState: a job that keeps a bounded cache is not
// stopped, however many calls allocate.
func TestRetainedAllowsSteadyState(t *testing.T) {
	c := newChainSpec(t, ChainSpec{Job: "j", Functions: `var cache = {};`,
		Options: Options{Budget: 10 * time.Second, MaxHeapGrowth: 4 << 20, MaxRetained: 16 << 20},
		Stages: []Stage{{Operator: "m", Kind: Map,
			Src: `r => { cache[r.i % 4] = "x".repeat(1 << 20) + r.i; return r }`}}})
	for i := range 100 {
		if err := c.Process(context.Background(), batchOf(map[string]any{"i": i}), &collect{}); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
}

var _ = operators.Record{}
