package jobs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// MaxJobFileSize bounds the size of a job file Parse accepts.
const MaxJobFileSize = 1 << 20

// Parse reads a job file (YAML; JSON is valid YAML), fills in defaults and
// validates it, compiling every JS snippet. On failure the error is a
// *SpecError listing every problem found, each naming its line and field.
func Parse(src []byte) (*Spec, error) {
	s, ps := parse(src)
	if s == nil {
		return nil, ps.err()
	}
	v := newValidator(s)
	v.ps = ps
	v.run()
	if err := v.ps.err(); err != nil {
		return nil, err
	}
	return s, nil
}

// parse converts the YAML into a Spec, recording where each value sits and
// reporting structural problems: syntax, unknown or duplicate keys, wrong
// types, unparseable values. It returns a nil Spec when there is nothing to
// validate: the file is too large, not YAML, not a mapping, or expands to
// too many values through aliases.
func parse(src []byte) (*Spec, *problems) {
	ps := &problems{}
	if len(src) > MaxJobFileSize {
		ps.add(Problem{Code: CodeInvalid, Message: fmt.Sprintf("the job file is %d bytes; the limit is %d", len(src), MaxJobFileSize)})
		return nil, ps
	}
	if t := bytes.TrimLeft(src, " \t\r\n"); len(t) > 0 && t[0] == '{' {
		// JSON may be indented with tabs, which YAML forbids as
		// indentation. Outside strings a tab is only whitespace in JSON,
		// and inside them it must be escaped, so spaces are equivalent
		// and keep every column.
		src = bytes.ReplaceAll(src, []byte{'\t'}, []byte{' '})
	}
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(src))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			ps.add(Problem{Code: CodeMissing, Message: "the job file is empty", Hint: "see docs/jobs.md for the format"})
		} else {
			p := yamlProblem(err)
			if strings.Contains(p.Message, "did not find expected key") {
				if l := misindented(src, p.Line); l > p.Line {
					p.Line = l
					p.Hint = "this line's indentation matches no enclosing key: align it with its siblings"
				}
			}
			ps.add(p)
		}
		return nil, ps
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		ps.add(Problem{Line: extra.Line, Code: CodeYAML, Message: "a job file holds one YAML document; found a second one", Hint: "remove the `---` separator and what follows, or submit it as its own job"})
	}
	p := &parser{s: &Spec{info: &fileInfo{pos: map[string]position{}, bad: map[string]bool{}}}, ps: ps, src: src}
	doc := &root
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		doc = doc.Content[0]
	}
	if expanded(doc, map[*yaml.Node]int{}) > maxExpandedNodes {
		ps.add(Problem{Code: CodeInvalid, Message: fmt.Sprintf("the file expands to more than %d values through YAML aliases", maxExpandedNodes), Hint: "write the job out without nested aliases"})
		return nil, ps
	}
	if d := resolve(doc); d == nil || d.Kind != yaml.MappingNode {
		ps.add(Problem{Line: doc.Line, Column: doc.Column, Code: CodeType,
			Message: "a job file must be a mapping, not " + kindName(orNode(d, doc)), Hint: "it starts with name: and source:; see docs/jobs.md"})
		return nil, ps
	}
	p.spec(doc)
	return p.s, ps
}

func (p *parser) spec(doc *yaml.Node) {
	top, ok := p.mapping(doc, "", "")
	if !ok {
		return
	}
	s := p.s
	s.Name = p.str(top, "name")
	if top.has("source") {
		p.source(top)
	}
	s.Functions = p.str(top, "functions")
	if top.has("operators") {
		for i, n := range p.sequence(top.m["operators"], "operators") {
			s.Operators = append(s.Operators, p.operator(n, fmt.Sprintf("operators[%d]", i)))
		}
	}
	if top.has("sinks") {
		for i, n := range p.sequence(top.m["sinks"], "sinks") {
			s.Sinks = append(s.Sinks, p.sink(n, fmt.Sprintf("sinks[%d]", i)))
		}
	}
	if top.has("checkpoint") {
		if c, ok := p.mapping(top.m["checkpoint"], "checkpoint", "checkpoint"); ok {
			s.Checkpoint.Every = p.duration(c, "every", true)
			s.Checkpoint.Retain = int(p.integer(c, "retain", true))
		}
	}
	if top.has("restart") {
		p.restart(top)
	}
}

func (p *parser) source(top fieldMap) {
	f, ok := p.mapping(top.m["source"], "source", "source")
	if !ok {
		return
	}
	src := &p.s.Source
	for _, k := range sourceKinds() {
		if f.has(k.Name) {
			k.Parse(p, f, src)
		}
	}
	src.Shards = int(p.integer(f, "shards", true))
	if f.has("start") {
		p.start(f, &src.Start)
	}
	src.Format = p.str(f, "format")
	src.EventTime = p.str(f, "event_time")
	src.Watermark = p.duration(f, "watermark", false)
	if f.has("on_error") {
		p.onError(f, &src.OnError, "source.on_error")
	}
	src.EventTimeFallback = p.str(f, "event_time_fallback")
}

// startField is source.start: a position word or {at_timestamp: TIME}.
var startField = wordOrMap{
	key: "start", schema: "source.start", words: []string{StartTrimHorizon, StartLatest},
	mapped: StartAtTimestamp, inner: "at_timestamp", example: "start: {at_timestamp: 2026-01-02T15:04:05Z}",
	needs: "at_timestamp needs a time", what: "a start position",
	allowed: "allowed: trim_horizon, latest, {at_timestamp: TIME}",
}

func (p *parser) start(f fieldMap, st *Start) {
	var m fieldMap
	st.Position, m = p.wordOrMap(f, startField)
	if m.m == nil {
		return
	}
	tn, tpath := p.scalar(m, "at_timestamp")
	if tn == nil {
		return
	}
	t, err := time.Parse(time.RFC3339Nano, tn.Value)
	if err != nil {
		p.problem(tn, tpath, CodeInvalid, fmt.Sprintf("%q is not an RFC 3339 time", tn.Value), "e.g. 2026-01-02T15:04:05Z")
		return
	}
	st.AtTimestamp = t
}

func (p *parser) operator(n *yaml.Node, path string) Operator {
	var op Operator
	f, ok := p.mapping(n, "operators[]", path)
	if !ok {
		return op
	}
	op.ID = p.str(f, "id")
	op.Input = p.str(f, "input")
	op.Inputs = p.names(f, "inputs", false)
	for _, k := range operatorKinds() {
		if f.has(k.Name) {
			k.Parse(p, f, &op)
		}
	}
	if f.has("on_error") {
		p.onError(f, &op.OnError, "operators[].on_error")
	}
	op.Timeout = p.duration(f, "timeout", true)
	return op
}

// onErrorField is on_error: a policy word or {dead_letter: STREAM}.
var onErrorField = wordOrMap{
	key: "on_error", words: []string{OnErrorFail, OnErrorSkip},
	mapped: OnErrorDeadLetter, inner: "dead_letter", example: "on_error: {dead_letter: STREAM}",
	needs: "dead_letter needs a stream name", what: "an error policy",
	allowed: "allowed: fail, skip, {dead_letter: STREAM}",
}

func (p *parser) onError(f fieldMap, oe *OnError, schema string) {
	c := onErrorField
	c.schema = schema
	var m fieldMap
	oe.Policy, m = p.wordOrMap(f, c)
	if m.m != nil {
		oe.DeadLetter = p.str(m, "dead_letter")
	}
}

// wordOrMap is a field whose value is one of some words or, for one
// more choice, a mapping with one required key.
type wordOrMap struct {
	key     string
	schema  string   // of the mapping form
	words   []string // the plain choices
	mapped  string   // the choice the mapping form stands for
	inner   string   // the mapping's required key
	example string   // the mapping form, as a hint
	needs   string   // the problem of the mapped word written plain
	what    string   // "a start position"
	allowed string   // the hint when no word is close
}

// wordOrMap reads f[c.key]: a word of c.words, or c.mapped and the
// mapping, whose inner key it checks is there. A bad word is a problem
// and reads as "".
func (p *parser) wordOrMap(f fieldMap, c wordOrMap) (string, fieldMap) {
	path := join(f.path, c.key)
	if n := resolve(f.m[c.key]); n != nil && n.Kind == yaml.MappingNode {
		m, _ := p.mapping(n, c.schema, path)
		if !m.has(c.inner) {
			p.problem(n, join(path, c.inner), CodeMissing, "is required", c.example)
		}
		return c.mapped, m
	}
	v, path := p.scalar(f, c.key)
	switch {
	case v == nil:
	case slices.Contains(c.words, v.Value):
		return v.Value, fieldMap{}
	case v.Value == c.mapped:
		p.problem(v, path, CodeInvalid, c.needs, c.example)
	default:
		hint := suggest(v.Value, append(slices.Clip(c.words), c.mapped))
		if hint == "" {
			hint = c.allowed
		}
		p.problem(v, path, CodeInvalid, fmt.Sprintf("%q is not %s", v.Value, c.what), hint)
	}
	return "", fieldMap{}
}

func (p *parser) sink(n *yaml.Node, path string) Sink {
	var s Sink
	f, ok := p.mapping(n, "sinks[]", path)
	if !ok {
		return s
	}
	s.ID = p.str(f, "id")
	s.Input = p.str(f, "input")
	s.Late = p.str(f, "late")
	for _, k := range sinkKinds() {
		if f.has(k.Name) {
			k.Parse(p, f, &s)
		}
	}
	return s
}
