package jobs

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
)

// The registry of kinds. Every source, operator and sink kind is one
// declaration in one file (kind_<name>.go, registered from its init):
// the key that selects it in the job file, its fields (which the parser
// accepts, docs/jobs.md lists and Fields returns), how it parses and
// validates, how Build maps it onto the runtime, and whether it keeps
// state in checkpoints. The rest of the package asks the registry and
// knows no kind by name. docs/architecture.md shows how to add one.
//
// A kind keeps its settings either in a field of its own in Source,
// Operator or Sink (the kinds that predate the registry) or in the
// element's ext map under its name (extConfig), so a new kind needs no
// edit outside its file.

// sourceKind declares a kind of source: one key under source:.
type sourceKind struct {
	// Name is the key under source: that selects the kind.
	Name string
	// Rank orders the kinds in the reference, in the messages that list
	// them and in conflict reports.
	Rank int
	// Connector marks a kind that reaches an outside system: docs/
	// connectors.md documents it, and messages listing the kinds leave it
	// out.
	Connector bool
	// Fields documents the kind's key (Path "") and the keys under it
	// (Path relative to it, e.g. "rate").
	Fields []Field
	// Has reports whether src is of this kind.
	Has func(src *Source) bool
	// Parse reads the kind's key from f, the source: mapping. It is
	// called only when the key is present.
	Parse func(p *parser, f fieldMap, src *Source)
	// Shards says source.shards applies (default 1); NoShards, when it
	// does not, is the message for a source that sets it.
	NoShards string
	// Start and OnError say source.start and source.on_error apply.
	Start, OnError bool
	// Formats lists the allowed source.format values; DefaultFormat
	// picks the default (nil: the first). NoFormat, for a kind without
	// formats, is the message for a source that sets one.
	Formats       []string
	DefaultFormat func(src *Source) string
	NoFormat      string
	// Validate checks the kind's own settings and fills their defaults.
	Validate func(v *validator, src *Source)
	// Files lists the local files the kind reads, with their field paths,
	// for the checks of a server's files root; nil for none.
	Files func(src *Source) []fileRef
	// Stream returns the Runnel stream the source reads (a job must not
	// write into it; retention must not trim what a checkpoint needs);
	// nil for kinds that read none.
	Stream func(src *Source) string
	// Build makes the source.
	Build func(b *builder, src *Source) (sources.Source, error)
}

// operatorKind declares a kind of operator: one key of an operators[]
// entry.
type operatorKind struct {
	Name string
	Rank int
	// Fields documents the kind's key (Path "") and the keys under it.
	Fields []Field
	Has    func(op *Operator) bool
	// Parse reads the kind's key from f, the operator's mapping; called
	// only when the key is present.
	Parse func(p *parser, f fieldMap, op *Operator)
	// Snippets lists the operator's JS snippets, in the order they are
	// compiled; Validate trims and compiles them and reports syntax errors
	// at their lines.
	Snippets func(op *Operator) []snippetRef
	// Validate checks the kind's settings (path is "operators[i]") and
	// fills their defaults.
	Validate func(v *validator, op *Operator, path string)
	// Columns returns the result columns when they are fixed by the
	// operator (a window's), else nil. Reads lists the record fields the
	// operator reads by name; when every input has fixed columns, each
	// must be one of them.
	Columns func(op *Operator) []string
	Reads   func(op *Operator, path string) []fieldRead
	// Late says the kind has late records a sink may take (sinks[].late).
	Late bool
	// Stateful says the operator keeps state in checkpoints: a savepoint
	// restores only into an operator of the same id and kind.
	Stateful bool
	// Stage, when set, makes the kind a stage of a JS chain: consecutive
	// chain operators that only each other feed fuse into one JS call per
	// batch, and a source feeding only chains may hand on raw JSON.
	Stage func(op *Operator) js.Stage
	// KeyStage, when set, is the JS key stage an upstream chain may run
	// for the operator, with the top-level fields the operator reads
	// afterwards (nil: the whole record); ok false when it has none.
	KeyStage func(b *builder, op *Operator) (st js.Stage, project []string, ok bool)
	// Build adds the operator's node to b (a chain kind is built by the
	// chain, not by Build). preKeyed says an upstream chain ran KeyStage.
	Build func(b *builder, op *Operator, preKeyed bool) error
}

// sinkKind declares a kind of sink: one key of a sinks[] entry.
type sinkKind struct {
	Name      string
	Rank      int
	Connector bool
	Fields    []Field
	Has       func(s *Sink) bool
	// Parse reads the kind's key from f, the sink's mapping; called only
	// when the key is present.
	Parse func(p *parser, f fieldMap, s *Sink)
	// Validate checks the kind's settings (path is "sinks[i]") and fills
	// their defaults.
	Validate func(v *validator, s *Sink, path string)
	// Stream returns the Runnel stream the sink writes and the field that
	// names it, or "" (a job must not write into its source stream).
	Stream func(s *Sink, path string) (name, field string)
	// Files lists the local files the sink writes, with their field paths.
	Files func(s *Sink, path string) []fileRef
	// Build makes the sink; cols are its input's result columns when
	// known (nil otherwise).
	Build func(b *builder, s *Sink, cols []sinks.Column) (sinks.Sink, error)
}

// snippetRef is one JS snippet of an operator: Field is its path under
// the operator (e.g. "window.key"); Object marks a custom aggregate
// object, reported at Field+".object" when the file wrote it there.
type snippetRef struct {
	Field  string
	Src    *string
	Object bool
}

// fieldRead is a record field an operator reads by name, at a field path.
type fieldRead struct{ Path, Field string }

// fileRef is a local file path a kind reads or writes, at a field path.
type fileRef struct{ Path, Field string }

// registry holds the kinds of each category in rank order once sealed,
// and the job-file reference made from them.
type registry struct {
	mu     sync.Mutex
	sealed bool
	names  map[string]bool
	source []*sourceKind
	op     []*operatorKind
	sink   []*sinkKind
	// fields and children are made when the registry is sealed.
	fields   []Field
	children map[string][]string
}

// kinds is the registry Parse, Validate and Build use.
var kinds = &registry{}

// registerSource, registerOperator and registerSink add a kind to the
// registry; each kind file calls one from its init. They panic on a
// duplicate name or after the registry is first used.
func registerSource(k *sourceKind) {
	kinds.add("source", k.Name, func() { kinds.source = append(kinds.source, k) })
}
func registerOperator(k *operatorKind) {
	kinds.add("operator", k.Name, func() { kinds.op = append(kinds.op, k) })
}
func registerSink(k *sinkKind) {
	kinds.add("sink", k.Name, func() { kinds.sink = append(kinds.sink, k) })
}

func (r *registry) add(what, name string, add func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sealed {
		panic(fmt.Sprintf("jobs: %s kind %q registered after the registry was first used", what, name))
	}
	if r.names == nil {
		r.names = map[string]bool{}
	}
	if r.names[what+" "+name] {
		panic(fmt.Sprintf("jobs: %s kind %q registered twice", what, name))
	}
	r.names[what+" "+name] = true
	add()
}

// get returns the registry, sealed: its kinds sorted by rank and its
// reference made, on first use.
func (r *registry) get() *registry {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.sealed {
		r.sealed = true
		slices.SortStableFunc(r.source, func(a, b *sourceKind) int { return a.Rank - b.Rank })
		slices.SortStableFunc(r.op, func(a, b *operatorKind) int { return a.Rank - b.Rank })
		slices.SortStableFunc(r.sink, func(a, b *sinkKind) int { return a.Rank - b.Rank })
		r.fields = r.reference()
		r.children = childIndex(r.fields)
	}
	return r
}

// clone returns an unsealed copy of r, for tests that add a kind.
func (r *registry) clone() *registry {
	r = r.get()
	return &registry{names: maps.Clone(r.names), source: slices.Clone(r.source), op: slices.Clone(r.op), sink: slices.Clone(r.sink)}
}

// sourceKinds, operatorKinds and sinkKinds list the registered kinds in
// rank order.
func sourceKinds() []*sourceKind     { return kinds.get().source }
func operatorKinds() []*operatorKind { return kinds.get().op }
func sinkKinds() []*sinkKind         { return kinds.get().sink }

func lookupSource(name string) *sourceKind {
	for _, k := range sourceKinds() {
		if k.Name == name {
			return k
		}
	}
	return nil
}

func lookupOperator(name string) *operatorKind {
	for _, k := range operatorKinds() {
		if k.Name == name {
			return k
		}
	}
	return nil
}

func lookupSink(name string) *sinkKind {
	for _, k := range sinkKinds() {
		if k.Name == name {
			return k
		}
	}
	return nil
}

// kindNames returns the names of the kinds keep selects, in rank order.
func kindNames[K any](list []K, name func(K) string, keep func(K) bool) []string {
	var out []string
	for _, k := range list {
		if keep == nil || keep(k) {
			out = append(out, name(k))
		}
	}
	return out
}

func sourceNames(keep func(*sourceKind) bool) []string {
	return kindNames(sourceKinds(), func(k *sourceKind) string { return k.Name }, keep)
}

func operatorNames(keep func(*operatorKind) bool) []string {
	return kindNames(operatorKinds(), func(k *operatorKind) string { return k.Name }, keep)
}

func sinkNames(keep func(*sinkKind) bool) []string {
	return kindNames(sinkKinds(), func(k *sinkKind) string { return k.Name }, keep)
}

// oneOf writes names as "a, b or c".
func oneOf(names []string) string {
	if len(names) < 2 {
		return strings.Join(names, "")
	}
	return strings.Join(names[:len(names)-1], ", ") + " or " + names[len(names)-1]
}

// Kind returns the source's kind (the first in rank order that is set),
// or "" when none is set.
func (s *Source) Kind() string {
	for _, k := range sourceKinds() {
		if k.Has(s) {
			return k.Name
		}
	}
	return ""
}

// stream returns the Runnel stream the source reads, or "".
func (s *Source) stream() string {
	if k := lookupSource(s.Kind()); k != nil && k.Stream != nil {
		return k.Stream(s)
	}
	return ""
}

// Kind returns the operator's kind, or "" when none is set.
func (o *Operator) Kind() string {
	for _, k := range operatorKinds() {
		if k.Has(o) {
			return k.Name
		}
	}
	return ""
}

// Kind returns the sink's kind, or "" when none is set.
func (s *Sink) Kind() string {
	for _, k := range sinkKinds() {
		if k.Has(s) {
			return k.Name
		}
	}
	return ""
}

// extConfig returns the settings a kind without a field of its own keeps
// in an element's ext map under the kind's name, creating them when create
// is set; nil when absent.
func extConfig[C any](ext *map[string]any, name string, create bool) *C {
	if c, ok := (*ext)[name].(*C); ok {
		return c
	}
	if !create {
		return nil
	}
	if *ext == nil {
		*ext = map[string]any{}
	}
	c := new(C)
	(*ext)[name] = c
	return c
}

// kindFields prefixes a kind's fields with where the kind sits.
func kindFields(prefix string, fs []Field) []Field {
	out := make([]Field, len(fs))
	for i, f := range fs {
		if f.Path == "" {
			f.Path = prefix
		} else {
			f.Path = prefix + "." + f.Path
		}
		out[i] = f
	}
	return out
}

// sub parses the mapping under key of f.
func (p *parser) sub(f fieldMap, key string) (fieldMap, bool) {
	return p.mapping(f.m[key], join(f.schema, key), join(f.path, key))
}
