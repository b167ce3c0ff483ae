package jobs

import (
	"errors"
	"reflect"
	"testing"
)

func TestGraphShapes(t *testing.T) {
	cases := []struct {
		name    string
		src     string
		order   []string
		inputs  map[string][]string
		outputs map[string][]string
		late    map[string][]string
	}{
		{
			name:    "chain, sink reads the last operator",
			src:     head + "operators: [{id: a, map: 'r => r'}, {id: b, filter: 'r => true'}]\nsinks: [{id: o, log: {}}]\n",
			order:   []string{"source", "a", "b", "o"},
			inputs:  map[string][]string{"a": {"source"}, "b": {"a"}, "o": {"b"}},
			outputs: map[string][]string{"source": {"a"}, "a": {"b"}, "b": {"o"}},
		},
		{
			name:    "no operators: the sink reads the source",
			src:     head + "sinks: [{id: o, log: {}}]\n",
			order:   []string{"source", "o"},
			inputs:  map[string][]string{"o": {"source"}},
			outputs: map[string][]string{"source": {"o"}},
		},
		{
			name: "fan-out from the source and a union",
			src: head + `operators:
  - {id: a, map: 'r => r'}
  - {id: b, input: source, map: 'r => r'}
  - {id: u, inputs: [b, a], filter: 'r => true'}
sinks: [{id: o, log: {}}, {id: raw, input: source, log: {}}]
`,
			order:   []string{"source", "a", "b", "u", "o", "raw"},
			inputs:  map[string][]string{"a": {"source"}, "b": {"source"}, "u": {"b", "a"}, "o": {"u"}, "raw": {"source"}},
			outputs: map[string][]string{"source": {"a", "b", "raw"}, "a": {"u"}, "b": {"u"}, "u": {"o"}},
		},
		{
			name: "an input declared later: topological order, not file order",
			src: head + `operators:
  - {id: late, input: early, map: 'r => r'}
  - {id: early, input: source, map: 'r => r'}
sinks: [{id: o, input: late, log: {}}]
`,
			order:   []string{"source", "early", "late", "o"},
			inputs:  map[string][]string{"early": {"source"}, "late": {"early"}, "o": {"late"}},
			outputs: map[string][]string{"source": {"early"}, "early": {"late"}, "late": {"o"}},
		},
		{
			name: "a late sink",
			src: head + `operators:
  - {id: w, window: {key: 'r => r.k', tumbling: 1s, aggregate: {n: count}}}
sinks: [{id: o, log: {}}, {id: dropped, late: w, log: {}}]
`,
			order:   []string{"source", "w", "o", "dropped"},
			inputs:  map[string][]string{"w": {"source"}, "o": {"w"}, "dropped": {"w"}},
			outputs: map[string][]string{"source": {"w"}, "w": {"o"}},
			late:    map[string][]string{"w": {"dropped"}},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustParse(t, c.src)
			g, err := s.Graph()
			if err != nil {
				t.Fatal(err)
			}
			if c.late == nil {
				c.late = map[string][]string{}
			}
			if !reflect.DeepEqual(g.Order, c.order) {
				t.Errorf("order %v, want %v", g.Order, c.order)
			}
			if !reflect.DeepEqual(g.Inputs, c.inputs) {
				t.Errorf("inputs %v, want %v", g.Inputs, c.inputs)
			}
			if !reflect.DeepEqual(g.Outputs, c.outputs) {
				t.Errorf("outputs %v, want %v", g.Outputs, c.outputs)
			}
			if !reflect.DeepEqual(g.Late, c.late) {
				t.Errorf("late %v, want %v", g.Late, c.late)
			}
			// Validate stored the same inputs in the spec.
			for _, op := range s.Operators {
				if !reflect.DeepEqual(op.From, g.Inputs[op.ID]) {
					t.Errorf("operator %s: From %v, graph %v", op.ID, op.From, g.Inputs[op.ID])
				}
			}
			for _, sk := range s.Sinks {
				if want := g.Inputs[sk.ID]; len(want) != 1 || sk.From != want[0] {
					t.Errorf("sink %s: From %q, graph %v", sk.ID, sk.From, want)
				}
			}
		})
	}
}

// A Spec built in Go validates the same way: defaults filled, problems
// without lines.
func TestValidateGoSpec(t *testing.T) {
	s := &Spec{
		Name:   "go",
		Source: Source{Generator: &Generator{Rate: RateMax}},
		Operators: []Operator{
			{ID: "m", Map: "r => r"},
			{ID: "w", Window: &Window{Key: "r => r.page", Sliding: &Sliding{Size: 60e9, Every: 10e9},
				Aggregate: []Aggregate{{Name: "n", Func: AggCount}, {Name: "p", Func: AggP99, Field: "latency_ms"}}}},
		},
		Sinks: []Sink{{ID: "o", Log: &LogSink{}}},
	}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Source.Shards != 1 || s.Source.Generator.Keys != 100 || s.Operators[1].Timeout != DefaultTimeout || s.Sinks[0].From != "w" {
		t.Errorf("defaults not filled: %+v", s)
	}

	s.Operators[1].Window.Key = ""
	s.Operators[0].Map = "r => (r"
	err := s.Validate()
	var se *SpecError
	if !errors.As(err, &se) || len(se.Problems) != 2 {
		t.Fatalf("Validate = %v, want two problems", err)
	}
	for _, p := range se.Problems {
		if p.Line != 0 {
			t.Errorf("problem %s has line %d; a Go-built spec has none", p, p.Line)
		}
	}
	if se.Problems[0].Field != "operators[1].window.key" || se.Problems[1].Field != "operators[0].map" || se.Problems[1].Operator != "m" {
		t.Errorf("problems = %+v", se.Problems)
	}
}
