package js

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js/native"
)

// exprGen writes random record functions: mostly inside the native subset,
// sometimes outside it (methods, calls, arrays) so that the fallback is
// exercised too.
type exprGen struct {
	rng    *rand.Rand
	fields []string
	// tame: stay inside the subset, and read nested fields only of
	// "nested", so that most records evaluate natively.
	tame bool
	// helpers: the chain's functions block is helperFunctions.
	helpers bool
}

const helperFunctions = `function dbl(x) { return x * 2 }
const pre = (s, p) => { if (p === undefined) return s; return p + s }
function clamp(x, lo, hi) { return Math.max(lo, Math.min(hi, dbl(x) / 2)) }`

func (g *exprGen) field() string { return g.fields[g.rng.IntN(len(g.fields))] }

// dot is a property read of name: r.name, or r["name"] when name is not
// an identifier.
func dot(name string) string {
	if strings.Contains(name, " ") {
		return fmt.Sprintf("[%q]", name)
	}
	return "." + name
}

func (g *exprGen) literal() string {
	switch g.rng.IntN(12) {
	case 0:
		return "null"
	case 1:
		return "undefined"
	case 2:
		return []string{"true", "false"}[g.rng.IntN(2)]
	case 3:
		return []string{"NaN", "Infinity", "0", "-0", "0.5", "1e21", "9007199254740993"}[g.rng.IntN(7)]
	case 4, 5:
		return []string{`"/a"`, `""`, `"200"`, `"é"`, `"\u{1F600}"`, `'x'`, `"a\"b"`, `"10"`}[g.rng.IntN(8)]
	}
	return fmt.Sprint(g.rng.IntN(400) - 50)
}

func (g *exprGen) access(depth int) string {
	switch g.rng.IntN(6) {
	case 0:
		return "r"
	case 1:
		return fmt.Sprintf("r[%q]", g.field())
	case 2:
		if g.tame {
			return "r.nested" + dot(g.field())
		}
		return "r" + dot(g.field()) + dot(g.field())
	case 3:
		if !g.tame && g.rng.IntN(4) == 0 {
			// outside the subset: a method, a string property, a global
			return []string{"r.s.length", "String(r.n)", "r.page.toUpperCase()", "Math.floor(r.n)", "r.arr[0]", "r.toString"}[g.rng.IntN(6)]
		}
	}
	return "r" + dot(g.field())
}

func (g *exprGen) expr(depth int) string {
	if depth <= 0 {
		if g.rng.IntN(3) == 0 {
			return g.literal()
		}
		return g.access(depth)
	}
	switch g.rng.IntN(9) {
	case 0, 1:
		ops := []string{"===", "!==", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "&&", "||", "??"}
		return fmt.Sprintf("(%s %s %s)", g.expr(depth-1), ops[g.rng.IntN(len(ops))], g.expr(depth-1))
	case 2:
		return fmt.Sprintf("(%s ? %s : %s)", g.expr(depth-1), g.expr(depth-1), g.expr(depth-1))
	case 3:
		return fmt.Sprintf("(%s(%s))", []string{"!", "-", "+", "typeof "}[g.rng.IntN(4)], g.expr(depth-1))
	case 4:
		return g.object(depth - 1)
	}
	return g.expr(depth - 1)
}

func (g *exprGen) object(depth int) string {
	var parts []string
	for n := g.rng.IntN(4); n >= 0; n-- {
		switch g.rng.IntN(6) {
		case 0:
			parts = append(parts, "..."+[]string{"r", "r.nested", "null", "r" + dot(g.field())}[g.rng.IntN(4)])
		case 1:
			parts = append(parts, "r")
		default:
			parts = append(parts, fmt.Sprintf("%q: %s", g.field(), g.expr(depth)))
		}
	}
	return "({" + strings.Join(parts, ", ") + "})"
}

// function wraps a body in one of the accepted function forms.
func (g *exprGen) function(body string) string {
	switch g.rng.IntN(4) {
	case 0:
		return "(r) => { return " + body + "; }"
	case 1:
		return "function (r) { return " + body + " }"
	}
	return "r => " + body
}

// Typed expressions for tame chains: numbers, strings and booleans over
// fields of those types, as record functions usually are.
func (g *exprGen) num(depth int) string {
	if depth <= 0 || g.rng.IntN(3) == 0 {
		return []string{"r.ms", "r.n", "r.a", "r.status", "r.nested.ms", "r.nested.a", "2", "0.5", "-1", "1e3"}[g.rng.IntN(10)]
	}
	if g.helpers && g.rng.IntN(4) == 0 {
		if g.rng.IntN(2) == 0 {
			return fmt.Sprintf("dbl(%s)", g.num(depth-1))
		}
		return fmt.Sprintf("clamp(%s, 0, 300)", g.num(depth-1))
	}
	switch g.rng.IntN(7) {
	case 4:
		return fmt.Sprintf("Math.%s(%s)", []string{"floor", "ceil", "round", "trunc", "abs", "sign", "sqrt"}[g.rng.IntN(7)], g.num(depth-1))
	case 5:
		if g.rng.IntN(2) == 0 {
			return fmt.Sprintf("Math.%s(%s, %s)", []string{"min", "max"}[g.rng.IntN(2)], g.num(depth-1), g.num(depth-1))
		}
		return fmt.Sprintf("%s.length", g.str(depth-1))
	case 6:
		return fmt.Sprintf("Number(%s)", g.str(depth-1))
	case 0:
		return fmt.Sprintf("(-(%s))", g.num(depth-1))
	case 1:
		return fmt.Sprintf("(%s ? %s : %s)", g.boolean(depth-1), g.num(depth-1), g.num(depth-1))
	case 2:
		return fmt.Sprintf("(%s ?? %s)", g.num(depth-1), g.num(depth-1))
	}
	return fmt.Sprintf("(%s %s %s)", g.num(depth-1), []string{"+", "-", "*", "/", "%"}[g.rng.IntN(5)], g.num(depth-1))
}

func (g *exprGen) str(depth int) string {
	if depth <= 0 || g.rng.IntN(3) == 0 {
		return []string{"r.page", "r.b", "r.s", `r["x y"]`, "r.nested.page", `"/a"`, `"é"`, `""`}[g.rng.IntN(8)]
	}
	if g.helpers && g.rng.IntN(4) == 0 {
		return fmt.Sprintf("pre(%s%s)", g.str(depth-1), []string{"", ", '/'", ", r.b"}[g.rng.IntN(3)])
	}
	switch g.rng.IntN(6) {
	case 0:
		return fmt.Sprintf("(%s ? %s : %s)", g.boolean(depth-1), g.str(depth-1), g.str(depth-1))
	case 1:
		return fmt.Sprintf("(typeof %s)", g.num(depth-1))
	case 2:
		return fmt.Sprintf("`${%s}-${%s}/`", g.str(depth-1), g.num(depth-1))
	case 3:
		return fmt.Sprintf("String(%s)", g.num(depth-1))
	case 4:
		return fmt.Sprintf("%s.%s()", g.str(depth-1), []string{"toLowerCase", "toUpperCase", "trim"}[g.rng.IntN(3)])
	}
	return fmt.Sprintf("(%s + %s)", g.str(depth-1), g.str(depth-1))
}

func (g *exprGen) boolean(depth int) string {
	if depth <= 0 {
		// Also truthiness of strings, numbers and nulls.
		return []string{"true", "(r.n > 3)", "(r.status === 200)", "(r.page !== \"/a\")", "r.s", "r.n", "r.a", "(r.ms % 7)"}[g.rng.IntN(8)]
	}
	cmp := []string{"===", "!==", "==", "!=", "<", "<=", ">", ">="}[g.rng.IntN(8)]
	switch g.rng.IntN(6) {
	case 5:
		return fmt.Sprintf("%s.%s(%s)", g.str(depth-1), []string{"startsWith", "endsWith", "includes"}[g.rng.IntN(3)], g.str(0))
	case 0:
		return fmt.Sprintf("(%s %s %s)", g.str(depth-1), cmp, g.str(depth-1))
	case 1:
		return fmt.Sprintf("(!%s)", g.boolean(depth-1))
	case 2:
		return fmt.Sprintf("(%s %s %s)", g.boolean(depth-1), []string{"&&", "||"}[g.rng.IntN(2)], g.boolean(depth-1))
	}
	return fmt.Sprintf("(%s %s %s)", g.num(depth-1), cmp, g.num(depth-1))
}

func (g *exprGen) tameStage(kind Kind) string {
	switch kind {
	case Map:
		var parts []string
		for n := g.rng.IntN(4); n >= 0; n-- {
			switch g.rng.IntN(7) {
			case 0:
				parts = append(parts, []string{"...r", "...r.nested", "r"}[g.rng.IntN(3)])
			case 1, 2:
				parts = append(parts, fmt.Sprintf("%q: %s", g.field(), g.num(2)))
			case 3, 4:
				parts = append(parts, fmt.Sprintf("%q: %s", g.field(), g.str(2)))
			default:
				parts = append(parts, fmt.Sprintf("%q: %s", g.field(), g.boolean(2)))
			}
		}
		if g.rng.IntN(8) == 0 {
			return g.function(fmt.Sprintf("(%s ? null : r)", g.boolean(1)))
		}
		if g.rng.IntN(3) == 0 {
			// A block: constants, an early return, shorthand properties.
			return fmt.Sprintf("r => { const a = %s; let b = %s; if (%s) return %s; { const c = %s; if (%s) return {a, c} } return ({b, %s}) }",
				g.num(2), g.str(2), g.boolean(1), []string{"null", "undefined", "r", "{a}"}[g.rng.IntN(4)], g.str(1), g.boolean(1), strings.Join(parts, ", "))
		}
		return g.function("({" + strings.Join(parts, ", ") + "})")
	case Filter:
		return g.function(g.boolean(3))
	case Key:
		if g.rng.IntN(3) == 0 {
			return g.function("r.status")
		}
		return g.function(g.str(2))
	}
	if g.rng.IntN(2) == 0 {
		return g.function("r.ts")
	}
	return g.function(fmt.Sprintf("(r.ts + %s)", g.num(1)))
}

func (g *exprGen) stage(kind Kind) string {
	if g.tame {
		return g.tameStage(kind)
	}
	switch kind {
	case Map:
		if g.rng.IntN(3) > 0 {
			return g.function(g.object(2))
		}
		return g.function(g.expr(2))
	case Key:
		if g.rng.IntN(2) == 0 {
			return g.function("r" + dot(g.field()))
		}
	case EventTime:
		if g.rng.IntN(2) == 0 {
			return g.function("r.ts")
		}
	}
	return g.function(g.expr(3))
}

// randomRecord makes a record value: raw JSON mostly, sometimes a Go map,
// rarely something that is not an object.
func randomRecord(rng *rand.Rand, fields []string, tame bool) any {
	if tame {
		// Fields keep their types, as in most streams.
		num := func() string {
			return []string{"0", "-0", "0.5", "200", "404", "1e2", "-3", "1700000000123", "7", "11"}[rng.IntN(10)]
		}
		str := func() string { return []string{`"/a"`, `"/b"`, `""`, `"\u00e9t\u00e9"`, `"200"`}[rng.IntN(5)] }
		var parts []string
		for _, f := range fields {
			if rng.IntN(12) == 0 {
				continue
			}
			v := num()
			switch f {
			case "a":
				if rng.IntN(4) == 0 {
					v = "null"
				}
			case "b", "page", "s", "x y":
				v = str()
			case "nested":
				v = fmt.Sprintf(`{"a": %s, "page": %s, "ms": %s}`, num(), str(), num())
			case "arr":
				v = "[1, 2]"
			case "constructor":
				v = "true"
			}
			parts = append(parts, fmt.Sprintf("%q: %s", f, v))
		}
		return rawOrMap(rng, []byte("{"+strings.Join(parts, ",")+"}"))
	}
	val := func(depth int) string {
		switch rng.IntN(14) {
		case 0:
			return "null"
		case 1:
			return "true"
		case 2:
			return "false"
		case 3:
			return []string{"0.5", "-0", "1e2", "1.5e-7", "9007199254740993", "-12", "1e400"}[rng.IntN(7)]
		case 4, 5:
			return []string{`"/a"`, `"/b"`, `""`, `"200"`, `"\u00e9"`, `"\ud83d\ude00"`, `"a\nb"`, `"2024-01-01T00:00:00Z"`, `"1700000000000"`}[rng.IntN(9)]
		case 6:
			if depth > 0 {
				return `{"a": 1, "b": "/a", "page": "/n"}`
			}
		case 7:
			return `[1, "x", {"a": 2}]`
		}
		return fmt.Sprint(rng.IntN(600) - 100)
	}
	if rng.IntN(25) == 0 {
		return json.RawMessage([]string{`[1,2]`, `42`, `"s"`, `{"a":`}[rng.IntN(4)])
	}
	var parts []string
	for _, f := range fields {
		if rng.IntN(3) == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%q:%s", f, val(1)))
	}
	if rng.IntN(10) == 0 && len(parts) > 0 {
		parts = append(parts, parts[0][:strings.Index(parts[0], ":")]+`:"dup"`)
	}
	return rawOrMap(rng, []byte(" {"+strings.Join(parts, ", ")+"} "))
}

// rawOrMap is the record b as raw JSON, or one time in five as the Go map
// it decodes to.
func rawOrMap(rng *rand.Rand, b []byte) any {
	if rng.IntN(5) == 0 {
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			return m
		}
	}
	return json.RawMessage(b)
}

// normal makes outputs comparable: numbers as float64, raw JSON and
// Projected values decoded, NaN as a string.
func normal(v any) any {
	switch x := v.(type) {
	case int64:
		return float64(x)
	case float64:
		if math.IsNaN(x) {
			return "NaN"
		}
		return x
	case json.RawMessage:
		return "raw:" + string(x)
	case *Projected:
		m := map[string]any{}
		for i, n := range x.Names {
			m[n] = normal(x.Values[i])
		}
		return m
	case map[string]any:
		m := map[string]any{}
		for k, e := range x {
			m[k] = normal(e)
		}
		return m
	case []any:
		a := make([]any, len(x))
		for i, e := range x {
			a[i] = normal(e)
		}
		return a
	}
	return v
}

// bothWays runs the chain in goja only, then with the native evaluator.
func bothWays(t *testing.T, spec ChainSpec, in []*operators.Batch) (goja, native chainRun, c *Chain) {
	t.Helper()
	spec.Interpreted = true
	goja, _ = runChainOnce(t, spec, in)
	spec.Interpreted = false
	native, c = runChainOnce(t, spec, in)
	return goja, native, c
}

type chainRun struct {
	out   []string
	err   string
	stats []StageStats
}

// runDiff is a diff from goja's run (want) to the native one (got).
func runDiff(want, got chainRun) string {
	lines := func(r chainRun) []string {
		l := append([]string{}, r.out...)
		l = append(l, "error: "+r.err)
		for _, s := range r.stats {
			l = append(l, fmt.Sprintf("stats: %+v", s))
		}
		return l
	}
	return testutil.Diff(lines(want), lines(got))
}

func runChainOnce(t *testing.T, spec ChainSpec, batches []*operators.Batch) (chainRun, *Chain) {
	t.Helper()
	cp, err := CompileChain(spec)
	if err != nil {
		t.Fatalf("compile %+v: %v", spec.Stages, err)
	}
	var res chainRun
	c, err := cp.New()
	if err != nil {
		res.err = err.Error()
		return res, &Chain{}
	}
	defer c.Close()
	for _, b := range batches {
		var out collect
		// Each run gets its own copy of the batch: Process may keep the
		// record values.
		cb := &operators.Batch{Records: append([]operators.Record(nil), b.Records...)}
		if err := c.Process(context.Background(), cb, &out); err != nil {
			res.err = err.Error()
			break
		}
		for _, r := range out.recs {
			res.out = append(res.out, fmt.Sprintf("key=%q t=%d origin=%s value=%#v", r.Key, r.EventTime, r.Origin, normal(r.Value)))
		}
	}
	_, _, res.stats = c.Stats()
	return res, c
}

// TestNativeEquivalence runs random chains of random functions over random
// records with the native evaluator and without it: outputs (values, keys,
// event times), errors and error counts must be the same. The chains come
// from -seed (default: a fresh one, printed); chain i uses seed+i.
func TestNativeEquivalence(t *testing.T) {
	seeds := 1000
	if testing.Short() {
		seeds = 200
	}
	base := testutil.Seed(t)
	fields := []string{"a", "b", "page", "ms", "status", "n", "s", "ts", "nested", "arr", "constructor", "x y"}
	natives, batchesNative := 0, 0
	for i := range seeds {
		seed := base + uint64(i)
		rng := rand.New(rand.NewPCG(seed, 7))
		g := &exprGen{rng: rng, fields: fields, tame: i%2 == 0, helpers: i%6 == 0}
		var stages []Stage
		for n := 1 + rng.IntN(4); n > 0; n-- {
			kind := Kind(rng.IntN(4))
			mode := Skip
			if rng.IntN(6) == 0 {
				mode = Fail
			}
			stages = append(stages, Stage{Operator: fmt.Sprintf("op%d", len(stages)), Kind: kind, Src: g.stage(kind), OnError: OnError{Mode: mode}})
		}
		spec := ChainSpec{Job: "eq", Stages: stages, KeepRaw: rng.IntN(3) == 0}
		if g.helpers {
			spec.Functions = helperFunctions
		}
		if rng.IntN(3) == 0 {
			spec.Project = []string{"a", "page", "ms"}[:1+rng.IntN(3)]
		}
		var batches []*operators.Batch
		for nb := 1 + rng.IntN(3); nb > 0; nb-- {
			var vals []any
			for n := 1 + rng.IntN(20); n > 0; n-- {
				vals = append(vals, randomRecord(rng, fields, g.tame))
			}
			batches = append(batches, batchOf(vals...))
		}
		want, got, c := bothWays(t, spec, batches)
		if c.native != nil {
			natives++
			batchesNative += int(c.nativeBatches.Load())
		}
		if !reflect.DeepEqual(got, want) {
			var b strings.Builder
			for _, s := range stages {
				fmt.Fprintf(&b, "  %s %s: %s\n", s.Operator, s.Kind, s.Src)
			}
			t.Fatalf("chain %d (seed %d): native and goja differ\nstages:\n%sproject %v keepRaw %v\n%s", i, seed, b.String(), spec.Project, spec.KeepRaw, runDiff(want, got))
		}
	}
	t.Logf("%d of %d chains compiled natively; %d batches ran natively", natives, seeds, batchesNative)
	if natives < seeds/4 || batchesNative < seeds/8 {
		t.Fatalf("only %d chains compiled natively and %d batches ran natively: the test no longer exercises the evaluator", natives, batchesNative)
	}
}

// TestNativeKinds: the JS bridge hands its stage kinds to the evaluator
// as numbers, so the two must agree.
func TestNativeKinds(t *testing.T) {
	for _, k := range []struct {
		js Kind
		n  native.Kind
	}{{Map, native.Map}, {Filter, native.Filter}, {Key, native.Key}, {EventTime, native.EventTime}} {
		if native.Kind(k.js) != k.n {
			t.Errorf("%s is %d in js, %d in native", k.js, k.js, k.n)
		}
	}
}

// TestNativeCases checks the evaluator against goja on each operator with
// edge values, and that these cases do run natively.
func TestNativeCases(t *testing.T) {
	recs := []any{
		json.RawMessage(`{"n": 200, "m": 7, "f": 0.5, "z": 0, "nz": -0, "s": "/a", "e": "", "u": "\u00e9t\u00e9", "t": true, "no": false, "nil": null, "o": {"a": 1, "b": {"c": "deep"}}, "big": 1e21, "neg": -13, "ts": "1700000000123"}`),
		map[string]any{"n": int64(-200), "m": 3.5, "f": -0.25, "z": 0.0, "s": "/b", "e": "", "u": "x", "t": false, "no": true, "nil": nil, "o": map[string]any{"a": 2.0, "b": map[string]any{"c": "d"}}, "big": 1e300, "neg": int64(13), "ts": int64(1700000000000)},
	}
	exprs := []string{
		"r.n % r.m", "r.neg % r.m", "r.n % r.z", "r.f % r.m", "r.n / r.z", "-r.z", "r.nz", "r.n - r.f", "r.n * r.big", "r.big + 1",
		"r.n + r.t", "r.n + r.nil", "r.n + r.missing", "r.s + r.u", "r.t + r.no",
		"r.n === 200", "r.n !== r.m", "r.nil === null", "r.missing === undefined", "r.nil == undefined", "r.t == 1", "r.z == r.no", "r.s == '/a'",
		"r.n < r.m", "r.s < r.u", "r.e <= r.s", "r.nil < 1", "r.missing < 1", "r.missing >= r.missing", "r.t > r.no",
		"r.s && r.n", "r.e || r.s", "r.nil ?? r.s", "r.z ?? 1", "r.missing ?? r.e", "r.e ? 1 : 2", "r.z ? 1 : 2", "r.f ? 1 : 2",
		"!r.e", "!r.o", "typeof r.o", "typeof r.nil", "typeof r.missing", "typeof r.s", "+r.t", "-r.nil",
		"r.o.b.c", "r['o']['a']", "({...r.o, a: r.n})", "({...r, n: 1, s: undefined})", "({r})", "({a: r.missing})", "r.o",
		"r.s.length", "r.u.length", "r.e.length", "`${r.s}:${r.n}:${r.t}:${r.nil}:${r.missing}:${r.z}`", "`${r.n / r.z}|${-r.n / r.z}|${r.z / r.z}`",
		"String(r.n)", "String(r.s)", "String(r.nil)", "String()", "Number(r.ts)", "Number(r.s)", "Number(r.e)", "Number(r.t)", "Number()",
		"Number(' 12.5e1 ')", "Number('1e400')", "Number('-.5')", "Number('5.')", "Number('Infinity')", "Number('1_000')", "Number('12px')",
		"Math.floor(r.f)", "Math.ceil(-r.f)", "Math.round(-r.f * 2)", "Math.round(r.neg / 2)", "Math.round(-0.2)", "Math.trunc(-r.f)",
		"Math.abs(r.neg)", "Math.sqrt(r.n)", "Math.sign(r.neg)", "Math.sign(-r.z)", "Math.max(r.n, r.m, r.nil)", "Math.min()", "Math.max(r.z, -r.z)",
		"Math.min(r.z, -r.z)", "Math.max(r.n, r.missing)", "Math.floor(Number(r.ts) / 1000) * 1000",
		"r.s.startsWith('/')", "r.s.endsWith('a')", "r.u.includes('t')", "r.s.toUpperCase()", "' a '.trim()", "r.s.toLowerCase() === '/a'",
	}
	for _, x := range exprs {
		for _, kind := range []Kind{Map, Filter} {
			src := "r => ({v: " + x + "})"
			if kind == Filter {
				src = "r => " + x
			}
			spec := ChainSpec{Job: "cases", Stages: []Stage{{Operator: "op", Kind: kind, Src: src}}}
			in := []*operators.Batch{batchOf(recs...)}
			want, got, c := bothWays(t, spec, in)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s %s:\ngoja:   %+v\nnative: %+v", kind, src, want, got)
			}
			if c.nativeBatches.Load() != 1 {
				t.Errorf("%s %s did not run natively", kind, src)
			}
		}
	}
	// Block bodies.
	for _, src := range []string{
		"r => { const ms = Number(r.n); if (!(ms >= 0)) return null; return {ms, s: r.s} }",
		"function (r) { let a; const b = r.n * 2; if (r.t) { const c = b + 1; return {a, c} } else if (r.no) return {b}; }",
		"r => { const s = `${r.s}/${r.n}`; { const s2 = s + '!'; if (s2.length > 3) return {s2} } return {s} }",
		"r => { ; const x = r.o; return x.a }",
	} {
		spec := ChainSpec{Job: "cases", Stages: []Stage{{Operator: "op", Kind: Map, Src: src}}}
		in := []*operators.Batch{batchOf(recs...)}
		want, got, ch := bothWays(t, spec, in)
		if !reflect.DeepEqual(got, want) || ch.nativeBatches.Load() != 1 {
			t.Errorf("%s (native batches %d):\ngoja:   %+v\nnative: %+v", src, ch.nativeBatches.Load(), want, got)
		}
	}
	// A functions block that changes a builtin keeps its calls in goja;
	// one that declares a function of that name is called natively.
	for _, fns := range []string{"const Math = {floor: x => 42}", "String.prototype.startsWith = () => true", "function Number(x) { return 7 }"} {
		spec := ChainSpec{Job: "cases", Functions: fns, Stages: []Stage{{Operator: "op", Kind: Map,
			Src: "r => ({a: Math.floor(r.f), b: r.s.startsWith('x'), c: Number(r.n)})"}}}
		in := []*operators.Batch{batchOf(recs...)}
		want, got, ch := bothWays(t, spec, in)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("functions %q:\ngoja:   %+v\nnative: %+v", fns, want, got)
		}
		if native := ch.nativeBatches.Load() > 0; native != strings.HasPrefix(fns, "function") {
			t.Errorf("functions %q: native %v", fns, native)
		}
	}
	// Functions of the functions block.
	fnsBlock := `function isBot(u) { return u.startsWith("bot-") }
const half = x => x / 2
function label(r, sep) { const h = half(r.n); if (h > 50) return ` + "`big${sep}${r.s}`" + `; return r.s + sep + String(sep) }
function loop(x) { return x > 0 ? loop(x - 1) : 0 }
function odd(x) { return even(x) }
function even(x) { return x === 0 || odd(x - 1) }
`
	for _, c := range []struct {
		src    string
		native bool
	}{
		{"r => ({bot: isBot(r.s), h: half(r.n), l: label(r, '-'), l2: label(r), l3: label(r, 1, 2)})", true},
		{"function (r) { const isBot = x => true; return isBot(r) }", false}, // a function value
		{"r => loop(3)", false},
		{"r => odd(3)", false},
		{"r => isBot(r.n)", true}, // a TypeError in goja: the evaluator gives up at run time
	} {
		spec := ChainSpec{Job: "cases", Functions: fnsBlock, Stages: []Stage{{Operator: "op", Kind: Map, Src: c.src, OnError: OnError{Mode: Skip}}}}
		in := []*operators.Batch{batchOf(recs...)}
		want, got, _ := bothWays(t, spec, in)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\ngoja:   %+v\nnative: %+v", c.src, want, got)
		}
		cp, _ := CompileChain(spec)
		if cp.Native() != c.native {
			t.Errorf("%s: compiled natively %v, want %v", c.src, cp.Native(), c.native)
		}
	}
	if cp, _ := CompileChain(ChainSpec{Job: "x", Functions: fnsBlock + "let n = 0\n", Stages: []Stage{{Operator: "op", Kind: Map, Src: "r => half(r.n)"}}}); cp.Native() {
		t.Error("a functions block with a variable was called natively")
	}
	// Keys and event times.
	for _, c := range []struct {
		kind Kind
		src  string
	}{{Key, "r => r.s"}, {Key, "r => r.n"}, {Key, "r => r.t"}, {EventTime, "r => r.ts"}, {EventTime, "r => r.n * 1000 + r.f"}} {
		spec := ChainSpec{Job: "cases", Stages: []Stage{{Operator: "op", Kind: c.kind, Src: c.src}}}
		in := []*operators.Batch{batchOf(recs...)}
		want, got, ch := bothWays(t, spec, in)
		if !reflect.DeepEqual(got, want) || ch.nativeBatches.Load() != 1 {
			t.Errorf("%s %s (native batches %d):\ngoja:   %+v\nnative: %+v", c.kind, c.src, ch.nativeBatches.Load(), want, got)
		}
	}
	// Outside the subset: compiled for goja only.
	for _, src := range []string{"r => r.s.split(',')", "r => Number.parseFloat(r.n)", "r => [r, r]", "r => { const x = y; const y = 1; return x }",
		"r => { let x = 1; x = 2; return x }", "r => { var x = 1; return x }", "r => { for (;;) {} }", "r => { const {a} = r; return a }",
		"r => Math.random()", "r => Math.pow(r.n, 2)", "r => tag`x`", "r => r.s.slice(1)", "r => { r.x = 1; return r }", "r => r.constructor",
		"r => ({['a' + 'b']: 1})", "r => ({__proto__: null})", "r => ({f() {}})", "(r, i) => r", "({a}) => a", "r => this",
		"function f(r) { return r }", "async r => r", "r => r?.a", "r => r[0]"} {
		if native.Compile("", []native.Stage{{Kind: native.Map, Src: src}}, nil) != nil {
			t.Errorf("%s compiled natively; it is outside the subset", src)
		}
	}
}

// TestNativeFallback: a record the evaluator cannot handle sends the whole
// batch to goja, whose errors and on_error policies then apply.
func TestNativeFallback(t *testing.T) {
	spec := ChainSpec{Job: "fb", Stages: []Stage{
		{Operator: "parse", Kind: Map, Src: "r => ({page: r.user.page, n: r.n})", OnError: OnError{Mode: Skip}},
		{Operator: "per-page", Kind: Key, Src: "r => r.page"},
	}}
	cp, err := CompileChain(spec)
	if err != nil || !cp.Native() {
		t.Fatalf("compile: %v, native %v", err, cp.Native())
	}
	c, err := cp.New()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var out collect
	good := batchOf(json.RawMessage(`{"user": {"page": "/a"}, "n": 1}`), json.RawMessage(`{"user": {"page": "/b"}, "n": 2}`))
	if err := c.Process(context.Background(), good, &out); err != nil || c.nativeBatches.Load() != 1 || len(out.recs) != 2 || out.recs[1].Key != "/b" {
		t.Fatalf("good batch: err %v, native %d, out %+v", err, c.nativeBatches.Load(), out.recs)
	}
	// r.user is missing in the second record: TypeError in JS, skipped.
	out.recs = nil
	bad := batchOf(json.RawMessage(`{"user": {"page": "/a"}, "n": 1}`), json.RawMessage(`{"n": 2}`), json.RawMessage(`{"user": {"page": "/c"}}`))
	if err := c.Process(context.Background(), bad, &out); err != nil {
		t.Fatal(err)
	}
	if c.nativeBatches.Load() != 1 || len(out.recs) != 2 || out.recs[0].Key != "/a" || out.recs[1].Key != "/c" {
		t.Fatalf("batch with a bad record: native batches %d, out %+v", c.nativeBatches.Load(), out.recs)
	}
	if nb, gb := c.Batches(); nb != 1 || gb != 1 {
		t.Fatalf("Batches() = %d native, %d goja; want 1 and 1", nb, gb)
	}
	if _, _, st := c.Stats(); st[0].Skipped != 1 {
		t.Fatalf("stats %+v: want the bad record skipped by goja's error handling", st)
	}
}

// TestNativeWideRecord: spreading a record of many fields (repeated keys
// among them) gives goja's object, in time linear in its fields.
func TestNativeWideRecord(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := 0; i < 3000; i++ {
		fmt.Fprintf(&b, `"f%d": %d, `, i%2000, i) // 1000 keys repeat
	}
	b.WriteString(`"o": {"a": [1, 2]}, "s": "x"}`)
	// goja's raw objects spread in time quadratic in their fields: a
	// generous budget keeps it from being interrupted on a busy machine.
	spec := ChainSpec{Job: "wide", Options: Options{Budget: time.Minute},
		Stages: []Stage{{Operator: "op", Kind: Map, Src: "r => ({...r, s: r.f3 + r.f1999, t: r.s})"}}}
	in := []*operators.Batch{batchOf(json.RawMessage(b.String()), map[string]any{"f1": 1.0, "s": "y"})}
	want, got, c := bothWays(t, spec, in)
	if c.nativeBatches.Load() != 1 {
		t.Fatal("the wide record did not run natively")
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("native and goja differ on a wide record (outputs %d and %d bytes)", len(fmt.Sprint(got)), len(fmt.Sprint(want)))
	}
}

// FuzzNativeEquivalence: for any function source and record, the chain
// gives the same outputs and errors with the native evaluator as without.
func FuzzNativeEquivalence(f *testing.F) {
	rec := `{"n": 200, "s": "/a", "o": {"a": 1}, "nil": null, "t": true, "f": 0.5}`
	for _, src := range []string{"r => ({v: r.n % 7})", "r => r.s + r.o.a", "r => r.nil ?? r.f", "r => ({...r.o, t: !r.t})",
		"r => r.n > '100'", "r => typeof r.o", "function (r) { return -r.s }", "r => r.o.a.b",
		"r => { const x = Number(r.s); if (x > 1) return `${x}`; return {x: Math.round(r.f)} }", "r => r.s.startsWith('/') && r.s.length > 1",
		"r => ({c: clamp(r.n, 0, 10), p: pre(r.s, '/'), d: dbl(r.f)})"} {
		f.Add(src, rec)
	}
	f.Fuzz(func(t *testing.T, src, rec string) {
		if len(src) > 2000 || len(rec) > 10000 {
			return
		}
		for i, kind := range []Kind{Map, Filter, Key, Map} {
			spec := ChainSpec{Job: "fuzz", Options: Options{Budget: 10 * time.Second},
				Stages: []Stage{{Operator: "op", Kind: kind, Src: src, OnError: OnError{Mode: Skip}}}}
			if i == 3 {
				spec.Functions = helperFunctions
			}
			if _, err := CompileChain(spec); err != nil {
				return
			}
			in := []*operators.Batch{batchOf(json.RawMessage(rec))}
			want, got, _ := bothWays(t, spec, in)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %q on %s:\ngoja:   %+v\nnative: %+v", kind, src, rec, want, got)
			}
		}
	})
}

// TestNativeIntegerProductZero: goja multiplies two integers as integers,
// so -3 * 0 is 0 there, not JS's -0; the evaluator gives goja's answer
// (by giving up). Found by TestNativeEquivalence -seed
// 6984924949977912681.
func TestNativeIntegerProductZero(t *testing.T) {
	spec := ChainSpec{Job: "mul", Stages: []Stage{{Operator: "op", Kind: Map, Src: "r => ({v: r.a * r.b, w: r.a * r.c, u: r.b * -1})"}}}
	in := []*operators.Batch{batchOf(json.RawMessage(`{"a": -3, "b": 0, "c": 0.5}`), map[string]any{"a": -3.0, "b": 0.0, "c": 0.5})}
	want, got, _ := bothWays(t, spec, in)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("native and goja differ:\n%s", runDiff(want, got))
	}
}
