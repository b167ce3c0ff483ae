package jobs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/operators"
)

// The example of docs/architecture.md ("How to add a kind"), as it is
// written there: the doc's code block is this region plus the init that
// registers it (TestArchitectureExampleInDocs), and TestArchitectureExample
// runs it.

// example:begin

// KindSample keeps one record in every `every` (per task).
const KindSample = "sample"

// Sample is the sample operator's settings. It has no field in Operator:
// it lives in the operator's ext map, under the kind's name.
type Sample struct{ Every int }

var sampleKind = &operatorKind{
	Name: KindSample,
	Rank: 50,
	Fields: []Field{
		{"", "mapping", "—", "keep one record in every `every`"},
		{"every", "int", "required", "≥ 1"},
	},
	Has: func(op *Operator) bool { return extConfig[Sample](&op.ext, KindSample, false) != nil },
	Parse: func(p *parser, f fieldMap, op *Operator) {
		if m, ok := p.sub(f, KindSample); ok {
			extConfig[Sample](&op.ext, KindSample, true).Every = int(p.integer(m, "every", true))
		}
	},
	Validate: func(v *validator, op *Operator, path string) {
		if extConfig[Sample](&op.ext, KindSample, false).Every == 0 {
			v.required(path+".sample.every", "e.g. sample: {every: 10}")
		}
	},
	Build: func(b *builder, op *Operator, _ bool) error {
		every := extConfig[Sample](&op.ext, KindSample, false).Every
		b.node(engine.Node{ID: op.ID, Inputs: b.inputs(op.From),
			New: func() (operators.Operator, error) { return &sampler{every: every}, nil }})
		return nil
	},
}

// sampler passes on one record in every `every` it sees.
type sampler struct{ every, seen int }

func (s *sampler) Process(_ context.Context, in *operators.Batch, out operators.Emitter) error {
	for _, r := range in.Records {
		if s.seen%s.every == 0 {
			out.Emit(r)
		}
		s.seen++
	}
	return nil
}

func (s *sampler) Close() error { return nil }

// example:end

const (
	exampleImports = "import (\n\t\"context\"\n\n\t\"github.com/runnel-dev/runnel/engine\"\n\t\"github.com/runnel-dev/runnel/operators\"\n)\n\n"
	exampleInit    = "func init() { registerOperator(sampleKind) }\n"
)

// withKinds runs f with the registry's kinds plus extra operator kinds.
func withKinds(t *testing.T, extra ...*operatorKind) {
	t.Helper()
	r := kinds.clone()
	r.op = append(r.op, extra...)
	saved := kinds
	kinds = r
	t.Cleanup(func() { kinds = saved })
}

// The example kind is a whole kind: the parser accepts its key, the
// reference lists its fields, validation names the line of a missing
// field, a second kind in the same operator is a conflict, and Build runs
// it.
func TestArchitectureExample(t *testing.T) {
	withKinds(t, sampleKind)
	if !slices.ContainsFunc(Fields(), func(f Field) bool { return f.Path == "operators[].sample.every" }) {
		t.Error("the reference has no operators[].sample.every")
	}
	_, err := Parse([]byte("name: j\nsource: {file: in.jsonl}\noperators:\n  - id: s\n    sample: {}\nsinks: [{id: out, log: {}}]\n"))
	var se *SpecError
	if !errors.As(err, &se) || len(se.Problems) != 1 || se.Problems[0].Line != 5 || se.Problems[0].Field != "operators[0].sample.every" || se.Problems[0].Code != CodeMissing {
		t.Fatalf("sample without every: %v; want one missing-field problem at line 5, operators[0].sample.every", err)
	}
	_, err = Parse([]byte("name: j\nsource: {file: in.jsonl}\noperators:\n  - id: s\n    sample: {every: 2}\n    map: \"r => r\"\nsinks: [{id: out, log: {}}]\n"))
	if err == nil || !strings.Contains(err.Error(), "an operator does one thing; this one has map and sample") {
		t.Fatalf("sample and map in one operator: %v", err)
	}

	in := filepath.Join(t.TempDir(), "in.jsonl")
	var recs strings.Builder
	for i := range 10 {
		fmt.Fprintf(&recs, "{\"n\": %d}\n", i)
	}
	if err := os.WriteFile(in, []byte(recs.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := mustParse(t, fmt.Sprintf("name: j\nsource: {file: %q}\noperators:\n  - id: s\n    sample: {every: 3}\nsinks: [{id: out, log: {}}]\n", in))
	if k := spec.Operators[0].Kind(); k != KindSample {
		t.Fatalf("Kind() = %q", k)
	}
	var log syncBuffer
	built, err := Build(spec, Env{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.Run(context.Background(), built.Graph, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	want := []string{`out: {"n":0}`, `out: {"n":3}`, `out: {"n":6}`, `out: {"n":9}`}
	if got := log.lines("out: "); !slices.Equal(got, want) {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// docs/architecture.md shows the example exactly as it compiles here.
func TestArchitectureExampleInDocs(t *testing.T) {
	src, err := os.ReadFile("architecture_example_test.go")
	if err != nil {
		t.Fatal(err)
	}
	_, region, _ := strings.Cut(string(src), "// example:begin\n\n")
	region, _, _ = strings.Cut(region, "// example:end\n")
	want := "```go\npackage jobs\n\n" + exampleImports + region + exampleInit + "```\n"
	doc, err := os.ReadFile("../docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), want) {
		t.Errorf("docs/architecture.md does not hold the example kind as written in architecture_example_test.go; it should contain:\n%s", want)
	}
}
