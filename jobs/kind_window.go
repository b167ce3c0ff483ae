package jobs

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/operators/window"
	"github.com/runnel-dev/runnel/sinks"
)

// KindWindow is the operator kind of keyed event-time windows.
const KindWindow = "window"

// Window kinds, as returned by Window.Kind.
const (
	WindowTumbling = "tumbling"
	WindowSliding  = "sliding"
	WindowSession  = "session"
)

// Window is a keyed event-time window: exactly one of Tumbling, Sliding or
// Session is set.
type Window struct {
	// Key is a JS snippet returning the record's grouping key.
	Key      string        `yaml:"key"`
	Tumbling time.Duration `yaml:"tumbling"`
	Sliding  *Sliding      `yaml:"sliding"`
	Session  *Session      `yaml:"session"`
	// AllowedLateness: records up to this much behind the watermark still
	// update (re-fire) their window; later ones go to the late output.
	AllowedLateness time.Duration `yaml:"allowed_lateness"`
	// StateCache bounds the window states (a key's open windows, plus
	// one entry per key) each task keeps in memory; the rest stay in the
	// job's Pebble state. 0 means the default.
	StateCache int `yaml:"state_cache"`
	// Aggregate holds the result columns in file order.
	Aggregate []Aggregate `yaml:"aggregate,keyed"`
}

// Kind returns WindowTumbling, WindowSliding, WindowSession or "".
func (w *Window) Kind() string {
	switch {
	case w.Tumbling > 0:
		return WindowTumbling
	case w.Sliding != nil:
		return WindowSliding
	case w.Session != nil:
		return WindowSession
	}
	return ""
}

// Bounds of Window.StateCache.
const (
	MinStateCache = 1 << 10
	MaxStateCache = 1 << 24
)

// Sliding windows of Size, one starting every Every.
type Sliding struct {
	Size  time.Duration `yaml:"size"`
	Every time.Duration `yaml:"every"`
}

// Session windows close after Gap without records for the key.
type Session struct {
	Gap time.Duration `yaml:"gap"`
}

// Aggregate functions, as in Aggregate.Func.
const (
	AggCount    = "count"
	AggSum      = "sum"
	AggAvg      = "avg"
	AggMin      = "min"
	AggMax      = "max"
	AggP50      = "p50"
	AggP95      = "p95"
	AggP99      = "p99"
	AggDistinct = "distinct"
	AggCustom   = "custom"
)

// BuiltinAggregates lists the built-in aggregate functions.
var BuiltinAggregates = []string{AggCount, AggSum, AggAvg, AggMin, AggMax, AggP50, AggP95, AggP99, AggDistinct}

// Aggregate is one result column of a window.
type Aggregate struct {
	// Name is the result column's name (the key in the job file).
	Name string `yaml:"-"`
	// Func is a builtin (count, sum, ...) or AggCustom.
	Func string `yaml:"-"`
	// Field is the record field a builtin reads (a dotted path for nested
	// fields); empty for count and custom.
	Field string `yaml:"-"`
	// A custom aggregate is either the four JS snippets Init, Add, Merge,
	// Result (Result optional), or Object: one JS expression evaluating to
	// an object with those methods.
	Init   string `yaml:"init"`
	Add    string `yaml:"add"`
	Merge  string `yaml:"merge"`
	Result string `yaml:"result"`
	Object string `yaml:"object"`
	// Type is a custom aggregate's result column type: ColumnFloat64
	// (default), ColumnInt64 or ColumnString. Builtins have fixed types.
	Type string `yaml:"type"`
}

// Result column types of custom aggregates, as in Aggregate.Type.
const (
	ColumnFloat64 = "float64"
	ColumnInt64   = "int64"
	ColumnString  = "string"
)

// ColumnTypes lists the allowed Aggregate.Type values.
var ColumnTypes = []string{ColumnFloat64, ColumnInt64, ColumnString}

// reservedColumns are the window result columns aggregates may not reuse.
var reservedColumns = []string{"window_start", "window_end", "key"}

var columnRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func init() {
	registerOperator(&operatorKind{
		Name: KindWindow,
		Rank: 30,
		Fields: []Field{
			{"", "mapping", "—", "a keyed event-time window"},
			{"key", "JS function", "required", "`r => key` (converted to a string)"},
			{"tumbling", "duration", "—", "> 0; one of `tumbling`, `sliding`, `session`"},
			{"sliding", "mapping", "—", "`{size, every}`"},
			{"sliding.size", "duration", "required", "> 0"},
			{"sliding.every", "duration", "required", "> 0 and ≤ `size`"},
			{"session", "mapping", "—", "`{gap}`"},
			{"session.gap", "duration", "required", "> 0"},
			{"allowed_lateness", "duration", "0s", "≥ 0"},
			{"state_cache", "int", "262144", "window states (open windows, plus one per key) each task keeps in memory, 1024–16777216; the rest stay in the job's Pebble state"},
			{"aggregate", "mapping", "required", "result column name → aggregate; at least one"},
			{"aggregate.<name>", "string or mapping", "—", "`count`, `sum(f)`, `avg(f)`, `min(f)`, `max(f)`, `p50(f)`, `p95(f)`, `p99(f)`, `distinct(f)`, a JS object expression `({init, add, merge, result})`, or a mapping (a custom aggregate); name `[A-Za-z_][A-Za-z0-9_]*`, not `window_start`, `window_end`, `key`"},
			{"aggregate.<name>.init", "JS function", "required", "`() => acc`"},
			{"aggregate.<name>.add", "JS function", "required", "`(acc, r) => acc`"},
			{"aggregate.<name>.merge", "JS function", "required", "`(a, b) => acc`"},
			{"aggregate.<name>.result", "JS function", "identity", "`acc => value`"},
			{"aggregate.<name>.object", "JS object", "—", "`({init, add, merge, result})` instead of the four fields"},
			{"aggregate.<name>.type", "string", "float64", "`float64`, `int64`, `string`: the result column's type"},
		},
		Has: func(op *Operator) bool { return op.Window != nil },
		Parse: func(p *parser, f fieldMap, op *Operator) {
			if w, ok := p.sub(f, "window"); ok {
				op.Window = parseWindow(p, w)
			}
		},
		Snippets: func(op *Operator) []snippetRef {
			w := op.Window
			out := []snippetRef{{Field: "window.key", Src: &w.Key}}
			for i := range w.Aggregate {
				a := &w.Aggregate[i]
				ap := "window.aggregate." + a.Name
				out = append(out, snippetRef{Field: ap, Src: &a.Object, Object: true},
					snippetRef{Field: ap + ".init", Src: &a.Init}, snippetRef{Field: ap + ".add", Src: &a.Add},
					snippetRef{Field: ap + ".merge", Src: &a.Merge}, snippetRef{Field: ap + ".result", Src: &a.Result})
			}
			return out
		},
		Validate: func(v *validator, op *Operator, p string) { validateWindow(v, op.Window, p+".window") },
		Columns: func(op *Operator) []string {
			cols := slices.Clone(reservedColumns)
			for _, a := range op.Window.Aggregate {
				cols = append(cols, a.Name)
			}
			return cols
		},
		Reads: func(op *Operator, p string) []fieldRead {
			var out []fieldRead
			for _, a := range op.Window.Aggregate {
				out = append(out, fieldRead{Path: fmt.Sprintf("%s.window.aggregate.%s", p, a.Name), Field: a.Field})
			}
			return out
		},
		Late:     true,
		Stateful: true,
		KeyStage: func(b *builder, op *Operator) (js.Stage, []string, bool) {
			if op.Window.Key == "" {
				return js.Stage{}, nil, false
			}
			return js.Stage{Operator: op.ID, Kind: js.Key, Src: op.Window.Key, OnError: onError(op.OnError)}, b.windowFields(op), true
		},
		Build: buildWindow,
	})
}

func parseWindow(p *parser, f fieldMap) *Window {
	w := &Window{}
	w.Key = p.str(f, "key")
	w.Tumbling = p.duration(f, "tumbling", true)
	if f.has("sliding") {
		if s, ok := p.sub(f, "sliding"); ok {
			w.Sliding = &Sliding{Size: p.duration(s, "size", true), Every: p.duration(s, "every", true)}
		}
	}
	if f.has("session") {
		if s, ok := p.sub(f, "session"); ok {
			w.Session = &Session{Gap: p.duration(s, "gap", true)}
		}
	}
	w.AllowedLateness = p.duration(f, "allowed_lateness", false)
	w.StateCache = int(p.integer(f, "state_cache", true))
	if f.has("aggregate") {
		w.Aggregate = parseAggregates(p, f)
	}
	return w
}

func parseAggregates(p *parser, f fieldMap) []Aggregate {
	path, schema := join(f.path, "aggregate"), join(f.schema, "aggregate")
	n := resolve(f.m["aggregate"])
	if n == nil || n.Kind != yaml.MappingNode {
		p.problem(orNode(n, f.m["aggregate"]), path, CodeType, "must be a mapping of result column to aggregate, not "+kindName(orNode(n, f.m["aggregate"])), "e.g. aggregate: {views: count, p95_ms: p95(ms)}")
		return nil
	}
	p.record(n, path)
	out := []Aggregate{}
	for _, kv := range p.pairs(n, path) {
		ap := join(path, kv.key)
		a := Aggregate{Name: kv.key}
		v := resolve(kv.v)
		if v != nil && v.Kind == yaml.MappingNode {
			m, _ := p.mapping(v, join(schema, "<name>"), ap)
			a.Func = AggCustom
			a.Init = p.str(m, "init")
			a.Add = p.str(m, "add")
			a.Merge = p.str(m, "merge")
			a.Result = p.str(m, "result")
			a.Object = p.str(m, "object")
			a.Type = p.str(m, "type")
		} else {
			one := fieldMap{path: path, m: map[string]*yaml.Node{kv.key: kv.v}}
			sn, _ := p.scalar(one, kv.key)
			if sn == nil {
				continue
			}
			var msg, hint string
			a, msg, hint = ParseAggregate(kv.key, sn.Value)
			if msg != "" {
				p.problem(sn, ap, CodeInvalid, msg, hint)
			}
		}
		out = append(out, a)
	}
	return out
}

var aggCallRE = regexp.MustCompile(`^([A-Za-z0-9_]+)\s*(?:\(\s*([^()]*?)\s*\))?$`)

// ParseAggregate parses the string form of an aggregate: a builtin such as
// count or p95(latency_ms), or a JS object expression (starting with { or
// (). On failure msg says what is wrong and hint what is allowed.
func ParseAggregate(name, spec string) (a Aggregate, msg, hint string) {
	a.Name = name
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "{") || strings.HasPrefix(spec, "(") {
		a.Func, a.Object = AggCustom, spec
		return a, "", ""
	}
	const allowed = "count, sum(f), avg(f), min(f), max(f), p50(f), p95(f), p99(f), distinct(f), or a JS object ({init, add, merge, result})"
	m := aggCallRE.FindStringSubmatch(spec)
	if m == nil {
		return a, fmt.Sprintf("%q is not an aggregate", spec), allowed
	}
	fn, field := strings.ToLower(m[1]), m[2]
	hasCall := strings.Contains(spec, "(")
	if !slices.Contains(BuiltinAggregates, fn) {
		hint := suggest(fn, BuiltinAggregates)
		if hint == "" {
			hint = allowed
		}
		return a, fmt.Sprintf("%q is not an aggregate", m[1]), hint
	}
	a.Func = fn
	switch {
	case fn == AggCount && hasCall:
		return a, "count takes no field", "write count"
	case fn != AggCount && (!hasCall || field == ""):
		return a, fmt.Sprintf("%s needs a field", fn), fmt.Sprintf("e.g. %s(latency_ms)", fn)
	case fn != AggCount && !fieldRE.MatchString(field):
		return a, fmt.Sprintf("%q is not a field name", field), "a name like latency_ms, or a dotted path like req.ms"
	}
	a.Field = field
	return a, "", ""
}
func validateWindow(v *validator, w *Window, p string) {
	if w.Key == "" {
		v.add(p+".key", CodeMissing, "a window needs a key", `e.g. key: "r => r.page"; for one global window use key: "r => 'all'"`)
	}
	set := setKinds(map[string]bool{WindowTumbling: w.Tumbling != 0, WindowSliding: w.Sliding != nil, WindowSession: w.Session != nil},
		WindowTumbling, WindowSliding, WindowSession)
	switch {
	case len(set) == 0 && v.anyBad(p, WindowTumbling, WindowSliding, WindowSession):
	case len(set) == 0:
		v.add(p, CodeMissing, "needs one of tumbling, sliding or session", "e.g. tumbling: 10s")
	case len(set) > 1:
		v.add(p+"."+set[1], CodeConflict, fmt.Sprintf("a window is one kind; this one has %s", strings.Join(set, " and ")), "")
	}
	windowSpan(v, p+".tumbling", w.Tumbling, w.Tumbling != 0)
	if s := w.Sliding; s != nil {
		if s.Size == 0 {
			v.required(p+".sliding.size", "sliding: {size: 1m, every: 10s}")
		}
		if s.Every == 0 {
			v.required(p+".sliding.every", "sliding: {size: 1m, every: 10s}")
		}
		windowSpan(v, p+".sliding.size", s.Size, s.Size != 0)
		windowSpan(v, p+".sliding.every", s.Every, s.Every != 0)
		if s.Size > 0 && s.Every > s.Size {
			v.add(p+".sliding.every", CodeInvalid, fmt.Sprintf("%s is longer than size %s", s.Every, s.Size), "every ≤ size (every = size is a tumbling window)")
		}
	}
	if s := w.Session; s != nil {
		if s.Gap == 0 {
			v.required(p+".session.gap", "session: {gap: 30s}")
		}
		windowSpan(v, p+".session.gap", s.Gap, s.Gap != 0)
	}
	if w.AllowedLateness < 0 || w.AllowedLateness%time.Millisecond != 0 {
		v.add(p+".allowed_lateness", CodeInvalid, fmt.Sprintf("%s is not a whole, non-negative number of milliseconds", w.AllowedLateness), "e.g. 30s")
	}
	if c := w.StateCache; c != 0 && (c < MinStateCache || c > MaxStateCache) {
		v.add(p+".state_cache", CodeInvalid, fmt.Sprintf("%d is out of range", c), fmt.Sprintf("%d–%d window states", MinStateCache, MaxStateCache))
	}
	validateAggregates(v, w, p+".aggregate")
}

// span checks a window length that is set.
func windowSpan(v *validator, path string, d time.Duration, set bool) {
	if set && (d <= 0 || d%time.Millisecond != 0) {
		v.add(path, CodeInvalid, fmt.Sprintf("%s is not a positive, whole number of milliseconds", d), "e.g. 10s, 1m")
	}
}

func validateAggregates(v *validator, w *Window, p string) {
	if len(w.Aggregate) == 0 {
		v.add(p, CodeMissing, "a window needs at least one aggregate", "e.g. aggregate: {views: count}")
		return
	}
	seen := map[string]bool{}
	for i := range w.Aggregate {
		a := &w.Aggregate[i]
		ap := p + "." + a.Name
		switch {
		case !columnRE.MatchString(a.Name):
			v.add(ap, CodeInvalid, fmt.Sprintf("%q is not a valid column name", a.Name), "letters, digits and _, not starting with a digit")
		case slices.Contains(reservedColumns, a.Name):
			v.add(ap, CodeInvalid, fmt.Sprintf("%q clashes with a result column", a.Name), "window_start, window_end and key are taken; pick another name")
		case seen[a.Name]:
			v.add(ap, CodeDuplicateKey, "appears twice", "")
		}
		seen[a.Name] = true
		validateAggregate(v, a, ap)
	}
}

func validateAggregate(v *validator, a *Aggregate, ap string) {
	parts := a.Init != "" || a.Add != "" || a.Merge != "" || a.Result != ""
	if a.Func == AggCustom || a.Object != "" || parts {
		a.Func, a.Field = AggCustom, ""
		switch {
		case a.Object != "" && parts:
			v.add(ap+".object", CodeConflict, "a custom aggregate is one object expression or init/add/merge/result, not both", "")
		case a.Object == "":
			for _, part := range []struct{ name, js string }{{"init", a.Init}, {"add", a.Add}, {"merge", a.Merge}} {
				if part.js == "" {
					v.required(ap+"."+part.name, "a custom aggregate needs init, add and merge (result is optional)")
				}
			}
		}
		switch {
		case a.Type == "":
			a.Type = ColumnFloat64
		case !slices.Contains(ColumnTypes, a.Type):
			v.add(ap+".type", CodeInvalid, fmt.Sprintf("%q is not a column type", a.Type), hintAllowed(a.Type, ColumnTypes))
		}
		return
	}
	if a.Type != "" {
		v.add(ap+".type", CodeInvalid, fmt.Sprintf("%s has a fixed column type", a.Func), "type applies to custom aggregates only")
	}
	if !slices.Contains(BuiltinAggregates, a.Func) {
		v.add(ap, CodeInvalid, fmt.Sprintf("%q is not an aggregate", a.Func), hintAllowed(a.Func, BuiltinAggregates))
		return
	}
	switch {
	case a.Func == AggCount && a.Field != "":
		v.add(ap, CodeInvalid, "count takes no field", "write count")
	case a.Func != AggCount && a.Field == "":
		v.add(ap, CodeInvalid, fmt.Sprintf("%s needs a field", a.Func), fmt.Sprintf("e.g. %s(latency_ms)", a.Func))
	case a.Func != AggCount && !fieldRE.MatchString(a.Field):
		v.add(ap, CodeInvalid, fmt.Sprintf("%q is not a field name", a.Field), "a name like latency_ms, or a dotted path like req.ms")
	}
}

// windowFields returns the top-level record fields window w reads, when
// they are all it reads: its aggregates are builtins, no sink takes its
// late records and its errors are not dead-lettered (late records and
// dead letters carry the whole record). Otherwise nil.
func (b *builder) windowFields(w *Operator) []string {
	if w.OnError.Policy == OnErrorDeadLetter {
		return nil
	}
	for _, s := range b.spec.Sinks {
		if s.Late == w.ID {
			return nil
		}
	}
	fields := []string{}
	for _, a := range w.Window.Aggregate {
		if a.Func == AggCustom {
			return nil
		}
		if a.Field == "" {
			continue
		}
		top, _, _ := strings.Cut(a.Field, ".")
		if !slices.Contains(fields, top) {
			fields = append(fields, top)
		}
	}
	return fields
}

func buildWindow(b *builder, op *Operator, preKeyed bool) error {
	w := op.Window
	cfg := window.Config{Job: b.spec.Name, ID: op.ID, Size: w.Tumbling, AllowedLateness: w.AllowedLateness,
		Functions: b.spec.Functions, OnError: onError(op.OnError), JSOptions: b.jsOptions(op)}
	if w.StateCache > 0 {
		// A smaller cache holds fewer unwritten changes too.
		cfg.StateCacheEntries = w.StateCache
		cfg.StateDirtyEntries = min(window.DefaultStateDirtyEntries, max(w.StateCache/4, 256))
	}
	switch w.Kind() {
	case WindowTumbling:
		cfg.Kind = window.Tumbling
	case WindowSliding:
		cfg.Kind, cfg.Size, cfg.Every = window.Sliding, w.Sliding.Size, w.Sliding.Every
	case WindowSession:
		cfg.Kind, cfg.Gap = window.Session, w.Session.Gap
	}
	for _, a := range w.Aggregate {
		cfg.Aggregates = append(cfg.Aggregates, aggregate.Spec{Name: a.Name, Func: a.Func, Field: a.Field, Object: a.Object,
			Init: a.Init, Add: a.Add, Merge: a.Merge, Result: a.Result, Type: aggregate.ColumnType(a.Type)})
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("job %s: operator %s: %w", b.spec.Name, op.ID, err)
	}
	if b.env.WindowStore != nil {
		cfg.NewStore = b.env.WindowStore(op.ID)
	}
	keySrc := w.Key
	if preKeyed {
		keySrc = "" // computed by the upstream chain
	}
	key, err := b.keyFunc(op.ID, keySrc, op)
	if err != nil {
		return err
	}
	b.node(engine.Node{ID: op.ID, Inputs: b.inputs(op.From), Key: key,
		New: func() (operators.Operator, error) { return window.New(cfg) }})
	var aggs []sinks.Column
	for _, a := range cfg.Aggregates {
		aggs = append(aggs, sinks.Column{Name: a.Name, Type: sinks.ColumnType(a.ColumnType())})
	}
	b.setColumns(op.ID, sinks.WindowColumns(aggs...))
	return nil
}
