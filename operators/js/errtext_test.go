package js

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/operators"
)

// engineNoise is what goja puts in a stack: frames into generated code
// ("<eval>") and program counters ("(29)").
var engineNoise = regexp.MustCompile(`<eval>|:\d+:\d+\(\d+\)|\bat \S+ \(`)

// TestErrorTextIsClean: the message of a failed record (the error a
// failing job reports and a dead letter's "error") carries the exception
// and the place in the user's script, not the JS engine's stack.
func TestErrorTextIsClean(t *testing.T) {
	for _, c := range []struct {
		name, functions, src, want string
	}{
		{"thrown Error on line 2", "", "r => {\n  if (r.bad) throw new Error(\"bad record \" + r.id)\n  return r }",
			"Error: bad record 2 (line 2 col "},
		{"TypeError on line 1", "", "r => ({v: r.missing.value})", "TypeError: Cannot read property 'value' of undefined (line 1 col "},
		{"thrown in the functions block", "function check(r) {\n  if (r.bad) throw new RangeError(\"out of range\")\n  return r\n}",
			"r => check(r)", "RangeError: out of range (functions line 2 col "},
		{"thrown string", "", `r => { if (r.bad) throw "plain"; return r }`, "plain"},
	} {
		t.Run(c.name, func(t *testing.T) {
			vals := batchOf(map[string]any{"id": 1}, map[string]any{"id": 2, "bad": true})
			c1 := newChain(t, c.functions, Stage{Operator: "m", Kind: Map, Src: c.src})
			err := c1.Process(context.Background(), vals, &collect{})
			var je *Error
			if !errors.As(err, &je) {
				t.Fatalf("want *Error, got %v", err)
			}
			msg := je.Err.Error()
			if !strings.HasPrefix(msg, c.want) || engineNoise.MatchString(msg) {
				t.Fatalf("failing job's error %q, want it to start with %q and carry no engine stack", msg, c.want)
			}

			c2 := newChain(t, c.functions, Stage{Operator: "m", Kind: Map, Src: c.src, OnError: OnError{Mode: DeadLetter, Stream: "dlq"}})
			var dead collect
			c2.SetSideOutput(operators.DeadLetterOutput("m"), &dead)
			if err := c2.Process(context.Background(), batchOf(map[string]any{"id": 2, "bad": true}), &collect{}); err != nil {
				t.Fatal(err)
			}
			if len(dead.recs) != 1 {
				t.Fatalf("dead letters %v", dead.recs)
			}
			letter := dead.recs[0].Value.(map[string]any)["error"].(string)
			if !strings.Contains(letter, c.want) || engineNoise.MatchString(letter) {
				t.Fatalf("dead letter's error %q, want %q and no engine stack", letter, c.want)
			}
		})
	}
}

// TestFailingRecordEndsItsBatch: under on_error fail, the records after a
// failing one in the same batch are not run (the job fails on it, and a
// runaway such as a global doubled per record must not go on growing).
func TestFailingRecordEndsItsBatch(t *testing.T) {
	c := newChain(t, "var n = 0", Stage{Operator: "m", Kind: Map,
		Src: `r => { n++; if (r.id === 3) throw new Error("three"); return {n: n} }`})
	var recs []map[string]any
	for i := 1; i <= 10; i++ {
		recs = append(recs, map[string]any{"id": i})
	}
	vals := batchOf(func() []any {
		out := make([]any, len(recs))
		for i, r := range recs {
			out[i] = r
		}
		return out
	}()...)
	if err := c.Process(context.Background(), vals, &collect{}); err == nil {
		t.Fatal("the batch with a failing record did not fail")
	}
	var out collect
	if err := c.Process(context.Background(), batchOf(map[string]any{"id": 100}), &out); err != nil {
		t.Fatal(err)
	}
	if got := out.recs[0].Value.(map[string]any)["n"]; got != int64(4) && got != float64(4) {
		t.Fatalf("the function ran %v times over both batches, want 4 (records 1–3, then the next batch's)", got)
	}
}
