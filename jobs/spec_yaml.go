package jobs

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file holds the YAML plumbing of the parser: walking yaml.Nodes with
// their positions, and converting scalars into typed values with problems
// that name the line and field.

// maxExpandedNodes bounds the values a job file may hold once its aliases
// are expanded, so a few bytes of nested aliases cannot make the parser
// walk billions of nodes.
const maxExpandedNodes = 100_000

// expanded counts the nodes under n with aliases expanded, stopping past
// maxExpandedNodes. An alias cycle counts as too many.
func expanded(n *yaml.Node, memo map[*yaml.Node]int) int {
	if n == nil {
		return 0
	}
	if c, ok := memo[n]; ok {
		if c < 0 {
			return maxExpandedNodes + 1
		}
		return c
	}
	memo[n] = -1
	c := 1
	if n.Kind == yaml.AliasNode {
		c = expanded(n.Alias, memo)
	}
	for _, ch := range n.Content {
		if c += expanded(ch, memo); c > maxExpandedNodes {
			c = maxExpandedNodes + 1
			break
		}
	}
	memo[n] = c
	return c
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// yamlProblem turns a yaml.v3 syntax error into a Problem with its line.
func yamlProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{Code: CodeYAML}
	if m := yamlLineRE.FindStringSubmatch(err.Error()); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
	}
	p.Message = "not valid YAML: " + msg
	for _, h := range yamlHints {
		if strings.Contains(msg, h.contains) {
			p.Hint = h.hint
			break
		}
	}
	return p
}

// yamlHints explain the YAML errors job files typically run into.
var yamlHints = []struct{ contains, hint string }{
	{"mapping values are not allowed", `a ": " inside a value starts a mapping: quote JS snippets, e.g. map: "r => ({page: r.page})", or use a | block`},
	{"found character that cannot start any token", "YAML indents with spaces, not tabs; a value starting with @ or ` must be quoted"},
	{"did not find expected key", "check the indentation of this line against its siblings"},
	{"did not find expected ',' or", "a flow list [..] or mapping {..} is not closed, or a value in it needs quotes"},
}

// fileInfo is what a parsed Spec remembers about its file.
type fileInfo struct {
	pos map[string]position
	// bad holds the paths that already have a parse problem, so Validate
	// does not report a second, derived one for them.
	bad map[string]bool
}

// position says where a value sits in the file; for scalars also how it
// is written, so positions inside a JS snippet map back to file lines.
type position struct {
	line, col int
	style     yaml.Style
	// indent is the column of a literal block's first content line.
	indent int
}

type parser struct {
	s   *Spec
	ps  *problems
	src []byte
	// lines is src split into lines, made on first use.
	lines [][]byte
}

// fieldMap is one YAML mapping of the job file: its path and its values by
// key (aliases resolved).
type fieldMap struct {
	path, schema string
	node         *yaml.Node
	m            map[string]*yaml.Node
}

func (f fieldMap) has(key string) bool { return f.m[key] != nil }

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (p *parser) problem(n *yaml.Node, path, code, msg, hint string) {
	pr := Problem{Field: path, Code: code, Message: msg, Hint: hint}
	if n != nil {
		pr.Line, pr.Column = n.Line, n.Column
	}
	p.ps.add(pr)
	p.s.info.bad[path] = true
}

// record notes where path's value is. A mapping or list keeps the position
// of its key when it has one, so a missing field is reported on the line
// that introduces its parent.
func (p *parser) record(n *yaml.Node, path string) {
	if _, ok := p.s.info.pos[path]; ok && n.Kind != yaml.ScalarNode {
		return
	}
	pos := position{line: n.Line, col: n.Column, style: n.Style}
	if n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0 {
		pos.indent = p.blockIndent(n.Line)
	}
	p.s.info.pos[path] = pos
}

// blockIndent returns the column of the first non-blank content line after
// line (the header line of a block scalar).
func (p *parser) blockIndent(line int) int {
	if p.lines == nil {
		p.lines = bytes.Split(p.src, []byte{'\n'})
	}
	for i := line; i < len(p.lines); i++ {
		l := bytes.TrimRight(p.lines[i], "\r")
		if t := bytes.TrimLeft(l, " "); len(t) > 0 {
			return len(l) - len(t) + 1
		}
	}
	return 1
}

// resolve follows aliases.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n != nil && n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "empty"
		}
		return fmt.Sprintf("%q", n.Value)
	}
	return "not a value"
}

// mapping checks that n is a mapping whose keys are all allowed under
// schema and distinct, and returns its values by key. ok is false when n
// is not a mapping.
func (p *parser) mapping(n *yaml.Node, schema, path string) (fieldMap, bool) {
	f := fieldMap{path: path, schema: schema, node: n, m: map[string]*yaml.Node{}}
	n = resolve(n)
	if n == nil || n.Kind != yaml.MappingNode {
		if n != nil {
			p.problem(n, path, CodeType, "must be a mapping, not "+kindName(n), "e.g. "+mappingExample(schema))
		}
		return f, false
	}
	f.node = n
	p.record(n, path)
	allowed := childKeys(schema)
	for _, kv := range p.pairs(n, path) {
		if !slices.Contains(allowed, kv.key) {
			hint := suggest(kv.key, allowed)
			if hint == "" {
				hint = belongsElsewhere(kv.key, schema)
			}
			if hint == "" {
				hint = "allowed: " + strings.Join(allowed, ", ")
			}
			p.problem(kv.k, join(path, kv.key), CodeUnknownField, "unknown field", hint)
			continue
		}
		f.m[kv.key] = kv.v
	}
	return f, true
}

// belongsElsewhere returns a hint naming where key is allowed when it is a
// field of a nearby mapping — tumbling written beside window: instead of in
// it, or id inside window: — or "".
func belongsElsewhere(key, schema string) string {
	up := func(p string) string {
		if i := strings.LastIndexByte(p, '.'); i >= 0 {
			return p[:i]
		}
		return ""
	}
	for _, f := range fields() {
		parent, k := up(f.Path), f.Path[strings.LastIndexByte(f.Path, '.')+1:]
		if k != key || parent == schema {
			continue
		}
		near := schema == "" || strings.HasPrefix(parent, schema+".") || strings.HasPrefix(schema, parent+".") ||
			parent == "" && !strings.Contains(schema, ".") || up(parent) == up(schema)
		if near {
			if parent == "" {
				return key + " belongs at the top level"
			}
			return fmt.Sprintf("%s belongs under %s", key, parent)
		}
	}
	return ""
}

type pair struct {
	key  string
	k, v *yaml.Node
}

// pairs returns a mapping's entries in order, reporting non-scalar,
// duplicate and merge keys.
func (p *parser) pairs(n *yaml.Node, path string) []pair {
	var out []pair
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), n.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			p.problem(n.Content[i], path, CodeType, "a key must be a plain name", "")
			continue
		}
		if k.Tag == "!!merge" {
			p.problem(k, join(path, k.Value), CodeUnknownField, "YAML merge keys (<<) are not supported", "write the fields out")
			continue
		}
		if first, dup := seen[k.Value]; dup {
			p.problem(k, join(path, k.Value), CodeDuplicateKey, fmt.Sprintf("appears twice (first on line %d)", first), "")
			continue
		}
		seen[k.Value] = k.Line
		p.record(k, join(path, k.Value))
		out = append(out, pair{k.Value, k, v})
	}
	return out
}

func mappingExample(schema string) string {
	keys := childKeys(schema)
	if len(keys) > 3 {
		keys = keys[:3]
	}
	if len(keys) == 0 {
		return "{}"
	}
	return "{" + strings.Join(keys, ": ..., ") + ": ...}"
}

// scalar returns the scalar at key, or nil (with a problem) when the value
// is not a non-empty scalar. A missing key returns nil silently.
func (p *parser) scalar(f fieldMap, key string) (*yaml.Node, string) {
	path := join(f.path, key)
	n := resolve(f.m[key])
	if f.m[key] == nil {
		return nil, path
	}
	if n == nil || n.Kind != yaml.ScalarNode {
		what := "not a value"
		if n != nil {
			what = kindName(n)
		}
		p.problem(orNode(n, f.m[key]), path, CodeType, "must be a single value, not "+what, "")
		return nil, path
	}
	if n.Tag == "!!null" || strings.TrimSpace(n.Value) == "" {
		p.problem(n, path, CodeInvalid, "is empty", "remove the field to use its default")
		return nil, path
	}
	p.record(n, path)
	return n, path
}

func orNode(a, b *yaml.Node) *yaml.Node {
	if a != nil {
		return a
	}
	return b
}

func (p *parser) str(f fieldMap, key string) string {
	n, _ := p.scalar(f, key)
	if n == nil {
		return ""
	}
	return n.Value
}

// integer parses an int field; positive rejects an explicit 0 (which
// would read as "unset").
func (p *parser) integer(f fieldMap, key string, positive bool) int64 {
	n, path := p.scalar(f, key)
	if n == nil {
		return 0
	}
	v, err := strconv.ParseInt(n.Value, 10, 64)
	if err != nil || n.Tag == "!!str" && n.Style != 0 {
		p.problem(n, path, CodeType, fmt.Sprintf("%q is not an integer", n.Value), "e.g. 4")
		return 0
	}
	if positive && v < 1 {
		p.problem(n, path, CodeInvalid, fmt.Sprintf("must be at least 1, not %d", v), "")
		return 0
	}
	if v < 0 {
		p.problem(n, path, CodeInvalid, fmt.Sprintf("must not be negative, not %d", v), "")
		return 0
	}
	return v
}

func (p *parser) number(f fieldMap, key string) float64 {
	n, path := p.scalar(f, key)
	if n == nil {
		return 0
	}
	v, err := strconv.ParseFloat(n.Value, 64)
	if err != nil || n.Tag == "!!str" && n.Style != 0 {
		p.problem(n, path, CodeType, fmt.Sprintf("%q is not a number", n.Value), "e.g. 0.9")
		return 0
	}
	return v
}

// duration parses a duration field; positive rejects an explicit 0.
func (p *parser) duration(f fieldMap, key string, positive bool) time.Duration {
	n, path := p.scalar(f, key)
	if n == nil {
		return 0
	}
	d, msg := parseDuration(n.Value)
	if msg == "" && positive && d == 0 {
		msg = "must be greater than 0"
	}
	if msg != "" {
		p.problem(n, path, CodeInvalid, msg, "e.g. 10s, 1m")
		return 0
	}
	return d
}

// parseDuration accepts Go durations with a unit (500ms, 10s, 1m, 1h30m)
// that are whole milliseconds and not negative, and a bare 0.
func parseDuration(s string) (time.Duration, string) {
	s = strings.TrimSpace(s)
	if s == "0" {
		return 0, ""
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if _, nerr := strconv.ParseFloat(s, 64); nerr == nil {
			return 0, fmt.Sprintf("%q has no unit", s)
		}
		return 0, fmt.Sprintf("%q is not a duration", s)
	}
	if d < 0 {
		return 0, fmt.Sprintf("%q is negative", s)
	}
	if d%time.Millisecond != 0 {
		return 0, fmt.Sprintf("%q is not a whole number of milliseconds", s)
	}
	return d, ""
}

// names returns the items of a list of names; a single scalar counts as a
// one-item list when single is true.
func (p *parser) names(f fieldMap, key string, single bool) []string {
	path := join(f.path, key)
	n := resolve(f.m[key])
	if f.m[key] == nil {
		return nil
	}
	if single && n != nil && n.Kind == yaml.ScalarNode {
		if s := p.str(f, key); s != "" {
			return []string{s}
		}
		return nil
	}
	if n == nil || n.Kind != yaml.SequenceNode {
		p.problem(orNode(n, f.m[key]), path, CodeType, "must be a list of names, not "+kindName(orNode(n, f.m[key])), "e.g. [a, b]")
		return nil
	}
	p.record(n, path)
	out := []string{}
	for i, item := range n.Content {
		ip := fmt.Sprintf("%s[%d]", path, i)
		it := resolve(item)
		if it == nil || it.Kind != yaml.ScalarNode || it.Tag == "!!null" || it.Value == "" {
			p.problem(orNode(it, item), ip, CodeType, "must be a name", "")
			continue
		}
		p.record(it, ip)
		out = append(out, it.Value)
	}
	return out
}

// sequence returns the items of a list value; an empty value (`sinks:`
// with every entry commented out) is an empty list.
func (p *parser) sequence(n *yaml.Node, path string) []*yaml.Node {
	r := resolve(n)
	if r != nil && r.Kind == yaml.ScalarNode && r.Tag == "!!null" {
		p.record(r, path)
		return nil
	}
	if r == nil || r.Kind != yaml.SequenceNode {
		p.problem(orNode(r, n), path, CodeType, "must be a list, not "+kindName(orNode(r, n)), "each entry starts with `- id: ...`")
		return nil
	}
	p.record(r, path)
	return r.Content
}

// optionalMapping parses a mapping value that may also be written empty
// (`log:` or `log: {}`); ok is false when the value is something else.
func (p *parser) optionalMapping(f fieldMap, key string) (fieldMap, bool) {
	path := join(f.path, key)
	n := resolve(f.m[key])
	if n != nil && n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		p.record(n, path)
		return fieldMap{path: path, schema: join(f.schema, key), m: map[string]*yaml.Node{}}, true
	}
	return p.mapping(f.m[key], join(f.schema, key), path)
}

// flag parses a bool field.
func (p *parser) flag(f fieldMap, key string) bool {
	n, path := p.scalar(f, key)
	if n == nil {
		return false
	}
	switch n.Value {
	case "true":
		return true
	case "false":
		return false
	}
	p.problem(n, path, CodeType, fmt.Sprintf("%q is not true or false", n.Value), "")
	return false
}
