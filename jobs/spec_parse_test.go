package jobs

import (
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// plain drops what a Spec remembers about its file, so specs parsed from
// different texts compare equal when they say the same.
func plain(s *Spec) Spec {
	c := *s
	c.info = nil
	return c
}

func mustParse(t *testing.T, src string) *Spec {
	t.Helper()
	s, err := Parse([]byte(src))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return s
}

// problemsOf parses src and returns its problems, failing if it parses.
func problemsOf(t *testing.T, src string) []Problem {
	t.Helper()
	spec, err := Parse([]byte(src))
	if err == nil {
		// What a submit checks next: the JS, evaluated once.
		err = spec.CheckScripts()
	}
	if err == nil {
		t.Fatalf("Parse and CheckScripts succeeded; want problems")
	}
	var se *SpecError
	if !errors.As(err, &se) {
		t.Fatalf("error is %T, want *SpecError: %v", err, err)
	}
	return se.Problems
}

func TestParseDesignExample(t *testing.T) {
	src, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(src)
	if err != nil {
		t.Fatalf("the DESIGN.md example does not parse:\n%v", err)
	}
	want := Spec{
		Name: "page-views",
		Source: Source{
			Stream: "clicks", Shards: 4,
			Start:     Start{Position: StartTrimHorizon},
			Format:    "json",
			EventTime: "r => r.ts",
			Watermark: 5 * time.Second,
			OnError:   OnError{Policy: OnErrorFail},
		},
		Functions: "function isBot(u) { return u.startsWith(\"bot-\") }\n",
		Operators: []Operator{
			{ID: "parse", Map: "r => ({page: r.page, user: r.user, ms: r.latency_ms, ts: r.ts})",
				OnError: OnError{Policy: OnErrorFail}, Timeout: 100 * time.Millisecond, From: []string{"source"}},
			{ID: "humans", Filter: "r => !isBot(r.user)",
				OnError: OnError{Policy: OnErrorFail}, Timeout: 100 * time.Millisecond, From: []string{"parse"}},
			{ID: "per-page", Window: &Window{
				Key:             "r => r.page",
				Tumbling:        10 * time.Second,
				AllowedLateness: 30 * time.Second,
				Aggregate: []Aggregate{
					{Name: "views", Func: AggCount},
					{Name: "p95_ms", Func: AggP95, Field: "ms"},
					{Name: "total_ms", Func: AggSum, Field: "ms"},
				},
			}, OnError: OnError{Policy: OnErrorFail}, Timeout: 100 * time.Millisecond, From: []string{"humans"}},
			{ID: "spikes", Input: "per-page", Detect: &Detect{Value: []string{"views"}, Method: "rcf"},
				OnError: OnError{Policy: OnErrorFail}, Timeout: 100 * time.Millisecond, From: []string{"per-page"}},
		},
		Sinks: []Sink{
			{ID: "board", Input: "spikes", Dashboard: &DashboardSink{Title: "Views per page", Rows: DefaultDashboardRows}, From: "spikes"},
			{ID: "out", Input: "per-page", Stream: &StreamSink{Name: "page-views", Shards: 1}, From: "per-page"},
		},
		Checkpoint: Checkpoint{Every: 10 * time.Second, Retain: 3},
	}
	if got := plain(s); !reflect.DeepEqual(got, want) {
		t.Errorf("DESIGN.md example:\n got %#v\nwant %#v", got, want)
		for i := range min(len(got.Operators), len(want.Operators)) {
			if !reflect.DeepEqual(got.Operators[i], want.Operators[i]) {
				t.Errorf("operators[%d]:\n got %#v\nwant %#v", i, got.Operators[i], want.Operators[i])
			}
		}
	}
	g, err := s.Graph()
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []string{"source", "parse", "humans", "per-page", "spikes", "board", "out"}
	if !reflect.DeepEqual(g.Order, wantOrder) {
		t.Errorf("order = %v, want %v", g.Order, wantOrder)
	}
	if got := g.Outputs["per-page"]; !reflect.DeepEqual(got, []string{"spikes", "out"}) {
		t.Errorf("per-page fans out to %v, want [spikes out]", got)
	}
}

// The same job as JSON (tab-indented, as editors write it) parses to the
// same Spec as the YAML.
func TestJSONEqualsYAML(t *testing.T) {
	yamlSrc, err := os.ReadFile("testdata/design.yaml")
	if err != nil {
		t.Fatal(err)
	}
	jsonSrc, err := os.ReadFile("testdata/design.json")
	if err != nil {
		t.Fatal(err)
	}
	y := mustParse(t, string(yamlSrc))
	j := mustParse(t, string(jsonSrc))
	if !reflect.DeepEqual(plain(y), plain(j)) {
		t.Errorf("JSON and YAML differ:\nyaml %#v\njson %#v", plain(y), plain(j))
	}
	// Problems in JSON name JSON lines.
	bad := strings.Replace(string(jsonSrc), `"tumbling": "10s"`, `"tumbling": "10x"`, 1)
	ps := problemsOf(t, bad)
	if len(ps) != 1 || ps[0].Field != "operators[2].window.tumbling" || ps[0].Line != lineOf(bad, `"10x"`) {
		t.Errorf("JSON problem = %+v, want operators[2].window.tumbling on line %d", ps, lineOf(bad, `"10x"`))
	}
}

// lineOf returns the 1-based line of the first occurrence of sub.
func lineOf(src, sub string) int {
	i := strings.Index(src, sub)
	if i < 0 {
		return -1
	}
	return strings.Count(src[:i], "\n") + 1
}

const minimal = `
name: m
source: {stream: s}
operators:
  - id: w
    window:
      key: "r => r.k"
      tumbling: 1m
      aggregate: {n: count}
sinks:
  - {id: out, dashboard: {}}
`

// Every default the reference documents is the value Validate fills in.
func TestDefaults(t *testing.T) {
	s := mustParse(t, minimal)
	op := s.Operators[0]
	doc := map[string]string{}
	for _, f := range Fields() {
		doc[f.Path] = f.Default
	}
	checks := []struct {
		path string
		got  any
	}{
		{"source.shards", s.Source.Shards},
		{"source.start", s.Source.Start.Position},
		{"source.watermark", s.Source.Watermark},
		{"operators[].on_error", op.OnError.Policy},
		{"operators[].timeout", op.Timeout},
		{"operators[].window.allowed_lateness", op.Window.AllowedLateness},
		{"sinks[].dashboard.rows", s.Sinks[0].Dashboard.Rows},
		{"checkpoint.every", s.Checkpoint.Every},
	}
	for _, c := range checks {
		if got := fmtValue(c.got); got != doc[c.path] {
			t.Errorf("%s: default is %s, the reference says %q", c.path, got, doc[c.path])
		}
	}
	if s.Sinks[0].Dashboard.Title != "out" {
		t.Errorf("dashboard title defaults to %q, want the sink id", s.Sinks[0].Dashboard.Title)
	}
	if s.Source.Format != "json" || s.Sinks[0].From != "w" || !reflect.DeepEqual(op.From, []string{SourceID}) {
		t.Errorf("format %q, sink from %q, operator from %v", s.Source.Format, s.Sinks[0].From, op.From)
	}

	g := mustParse(t, `{name: g, source: {generator: {}}, sinks: [{id: o, log: {}}]}`).Source.Generator
	for path, got := range map[string]any{
		"source.generator.rate":  g.Rate,
		"source.generator.keys":  g.Keys,
		"source.generator.users": g.Users,
		"source.generator.shape": g.Shape,
		"source.generator.count": g.Count,
		"source.generator.seed":  g.Seed,
	} {
		if fmtValue(got) != doc[path] {
			t.Errorf("%s: default is %v, the reference says %q", path, got, doc[path])
		}
	}

	d := mustParse(t, `{name: d, source: {file: [a.csv, b.csv]}, operators: [{id: x, detect: {value: v}}], sinks: [{id: o, file: {path: r.parquet}}]}`)
	if d.Source.Format != "csv" || !reflect.DeepEqual(d.Source.File, []string{"a.csv", "b.csv"}) {
		t.Errorf("file source: format %q, files %v", d.Source.Format, d.Source.File)
	}
	if d.Operators[0].Detect.Method != doc["operators[].detect.method"] {
		t.Errorf("detect method defaults to %q", d.Operators[0].Detect.Method)
	}
	if d.Sinks[0].File.Format != FileParquet {
		t.Errorf("file sink format from .parquet = %q", d.Sinks[0].File.Format)
	}
}

func fmtValue(v any) string { return fmt.Sprint(v) }
