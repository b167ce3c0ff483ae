package jobs

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/runnel-dev/runnel/streams"
)

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	idRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	// fieldRE is a record field name or a dotted path into one.
	fieldRE = regexp.MustCompile(`^[A-Za-z_$][A-Za-z0-9_$]*(\.[A-Za-z_$][A-Za-z0-9_$]*)*$`)
)

// validStream reports whether name is a valid stream name, by the streams
// package's own rule.
func validStream(name string) bool { return streams.ValidateStreamName(name) == nil }

// Limits on numeric fields.
const (
	maxShards     = 1024
	maxTimeout    = time.Minute
	minCheckpoint = 100 * time.Millisecond
	maxIDLength   = 64
)

// Validate checks the Spec, fills in every default and resolves the
// operator graph (Operator.From, Sink.From). It compiles every JS snippet.
// The error is a *SpecError listing every problem; for a Spec from Parse
// each names its line.
func (s *Spec) Validate() error {
	v := newValidator(s)
	v.run()
	return v.ps.err()
}

type validator struct {
	s  *Spec
	ps *problems
	// badIDs is set when an id has a problem; graph checks that would
	// only echo it are skipped.
	badIDs bool
}

func newValidator(s *Spec) *validator {
	return &validator{s: s, ps: &problems{}}
}

func (v *validator) run() {
	v.normalize()
	v.name()
	v.source()
	for i := range v.s.Operators {
		v.operator(i)
	}
	for i := range v.s.Sinks {
		v.sink(i)
	}
	v.ids()
	if v.s.Checkpoint.Every == 0 {
		v.s.Checkpoint.Every = DefaultCheckpointEvery
	} else if v.s.Checkpoint.Every < minCheckpoint {
		v.add("checkpoint.every", CodeInvalid, fmt.Sprintf("%s is too short", v.s.Checkpoint.Every), "at least 100ms")
	}
	switch r := v.s.Checkpoint.Retain; {
	case r == 0:
		v.s.Checkpoint.Retain = DefaultCheckpointRetain
	case r > 100:
		v.add("checkpoint.retain", CodeInvalid, fmt.Sprintf("%d is too many", r), "from 1 to 100")
	}
	v.restart()
	v.graph()
	v.scripts()
}

// normalize trims every snippet with NormalizeSnippet, so the Spec holds
// exactly the text that compiles (at validation and at run time).
func (v *validator) normalize() {
	n := func(s *string) { *s = NormalizeSnippet(*s) }
	n(&v.s.Source.EventTime)
	for i := range v.s.Operators {
		for _, sn := range v.s.Operators[i].snippets() {
			n(sn.Src)
		}
	}
}

// snippets lists the operator's JS snippets (those of its kinds).
func (op *Operator) snippets() []snippetRef {
	var out []snippetRef
	for _, k := range operatorKinds() {
		if k.Snippets != nil && k.Has(op) {
			out = append(out, k.Snippets(op)...)
		}
	}
	return out
}

// parent strips the last element of a field path.
func parent(path string) string {
	i := strings.LastIndexAny(path, ".[")
	if i < 0 {
		return ""
	}
	return path[:i]
}

// at returns the file position of a field, or of its nearest recorded
// ancestor (a missing field is reported where its parent is).
func (v *validator) at(path string) position {
	if v.s.info == nil {
		return position{}
	}
	for p := path; p != ""; p = parent(p) {
		if pos, ok := v.s.info.pos[p]; ok {
			return pos
		}
	}
	return position{}
}

// suppressed reports whether parsing already reported a problem for path
// or an ancestor, which would make a problem found now a mere echo.
func (v *validator) suppressed(path string) bool {
	if v.s.info == nil {
		return false
	}
	for p := path; p != ""; p = parent(p) {
		if v.s.info.bad[p] {
			return true
		}
	}
	return false
}

func (v *validator) add(path, code, msg, hint string) {
	if v.suppressed(path) {
		return
	}
	pos := v.at(path)
	v.ps.add(Problem{Line: pos.line, Column: pos.col, Field: path, Code: code, Message: msg, Hint: hint})
}

// anyBad reports whether parsing already found a problem in one of the
// alternatives of an "exactly one of" choice under path.
func (v *validator) anyBad(path string, keys ...string) bool {
	for _, k := range keys {
		if v.suppressed(join(path, k)) {
			return true
		}
	}
	return false
}

func (v *validator) required(path, hint string) {
	v.add(path, CodeMissing, "is required", hint)
}

func (v *validator) name() {
	switch n := v.s.Name; {
	case n == "":
		v.required("name", "e.g. name: page-views")
	case !nameRE.MatchString(n):
		v.add("name", CodeInvalid, fmt.Sprintf("%q is not a valid job name", n), "1–64 of a-z, 0-9 and -, starting with a letter or digit")
	}
}

func (v *validator) source() {
	src := &v.s.Source
	var set []string
	for _, k := range sourceKinds() {
		if k.Has(src) {
			set = append(set, k.Name)
		}
	}
	listed := oneOf(sourceNames(func(k *sourceKind) bool { return !k.Connector }))
	switch {
	case len(set) == 0 && v.anyBad("source", sourceNames(nil)...):
		return
	case len(set) == 0:
		v.add("source", CodeMissing, "needs one of "+listed, "e.g. source: {stream: clicks}")
		return
	case len(set) > 1:
		v.add("source."+set[1], CodeConflict, fmt.Sprintf("a source is one of %s; this one has %s", listed, strings.Join(set, " and ")), "run one job per source, or union them with a stream")
		return
	}
	kind := lookupSource(set[0])
	switch {
	case kind.NoShards != "":
		if src.Shards != 0 {
			v.add("source.shards", CodeConflict, kind.NoShards, "remove shards")
		}
	case src.Shards == 0:
		src.Shards = 1
	case src.Shards < 1 || src.Shards > maxShards:
		v.add("source.shards", CodeInvalid, fmt.Sprintf("%d is out of range", src.Shards), "1–1024")
	}
	v.start(kind)
	v.format(kind)
	if src.Watermark < 0 {
		v.add("source.watermark", CodeInvalid, "must not be negative", "e.g. 5s")
	}
	if oe := src.OnError; !kind.OnError && (oe.Policy == OnErrorSkip || oe.Policy == OnErrorDeadLetter || oe.DeadLetter != "") {
		v.add("source.on_error", CodeConflict, "applies to "+kindsWith(func(k *sourceKind) bool { return k.OnError })+" sources only", "remove on_error")
	} else {
		v.onError(&src.OnError, "source")
	}
	switch src.EventTimeFallback {
	case "":
	case EventTimeArrival:
		if src.EventTime == "" {
			v.add("source.event_time_fallback", CodeConflict, "only with event_time (without it every record has its arrival time)", "remove event_time_fallback")
		}
	default:
		v.add("source.event_time_fallback", CodeInvalid, fmt.Sprintf("%q is not a fallback", src.EventTimeFallback), "allowed: arrival")
	}
	if kind.Validate != nil {
		kind.Validate(v, src)
	}
}

// kindsWith names the source kinds keep selects, as "a and b".
func kindsWith(keep func(*sourceKind) bool) string {
	return strings.Join(sourceNames(keep), " and ")
}

func (v *validator) start(kind *sourceKind) {
	st := &v.s.Source.Start
	if !kind.Start {
		if st.Position != "" || !st.AtTimestamp.IsZero() {
			v.add("source.start", CodeConflict, "start applies to "+kindsWith(func(k *sourceKind) bool { return k.Start })+" sources only", "remove start")
		}
		return
	}
	switch st.Position {
	case "":
		if !st.AtTimestamp.IsZero() {
			st.Position = StartAtTimestamp
		} else {
			st.Position = StartTrimHorizon
		}
	case StartTrimHorizon, StartLatest:
		if !st.AtTimestamp.IsZero() {
			v.add("source.start.at_timestamp", CodeConflict, "only with start at_timestamp", "")
		}
	case StartAtTimestamp:
		if st.AtTimestamp.IsZero() {
			v.required("source.start.at_timestamp", "start: {at_timestamp: 2026-01-02T15:04:05Z}")
		}
	default:
		v.add("source.start", CodeInvalid, fmt.Sprintf("%q is not a start position", st.Position), "allowed: trim_horizon, latest, {at_timestamp: TIME}")
	}
}

func (v *validator) format(kind *sourceKind) {
	src := &v.s.Source
	if kind.Formats == nil {
		if src.Format != "" {
			v.add("source.format", CodeConflict, kind.NoFormat, "remove format")
		}
		return
	}
	if src.Format == "" {
		src.Format = kind.Formats[0]
		if kind.DefaultFormat != nil {
			src.Format = kind.DefaultFormat(src)
		}
		return
	}
	if !slices.Contains(kind.Formats, src.Format) {
		v.add("source.format", CodeInvalid, fmt.Sprintf("%q is not a %s source format", src.Format, kind.Name), hintAllowed(src.Format, kind.Formats))
	}
}

func hintAllowed(got string, allowed []string) string {
	if h := suggest(got, allowed); h != "" {
		return h
	}
	return "allowed: " + strings.Join(allowed, ", ")
}

// setKinds returns the names in order whose flag is set.
func setKinds(set map[string]bool, order ...string) []string {
	var out []string
	for _, k := range order {
		if set[k] {
			out = append(out, k)
		}
	}
	return out
}

func (v *validator) operator(i int) {
	op := &v.s.Operators[i]
	p := fmt.Sprintf("operators[%d]", i)
	if op.ID == "" {
		v.required(p+".id", fmt.Sprintf("e.g. id: step%d", i+1))
	}
	var set []string
	for _, k := range operatorKinds() {
		if k.Has(op) {
			set = append(set, k.Name)
		}
	}
	switch {
	case len(set) == 0 && v.anyBad(p, operatorNames(nil)...):
	case len(set) == 0:
		v.add(p, CodeMissing, "needs one of "+oneOf(operatorNames(nil)), "")
	case len(set) > 1:
		v.add(p+"."+set[1], CodeConflict, fmt.Sprintf("an operator does one thing; this one has %s", strings.Join(set, " and ")), "split it into one operator per step")
	}
	if op.Input != "" && op.Inputs != nil {
		v.add(p+".inputs", CodeConflict, "use input or inputs, not both", "inputs: [a, b] for a union")
	}
	if op.Inputs != nil && len(op.Inputs) == 0 {
		v.add(p+".inputs", CodeInvalid, "is empty", "remove it to read the previous operator")
	}
	v.onError(&op.OnError, p)
	switch {
	case op.Timeout == 0:
		op.Timeout = DefaultTimeout
	case op.Timeout < time.Millisecond || op.Timeout > maxTimeout:
		v.add(p+".timeout", CodeInvalid, fmt.Sprintf("%s is out of range", op.Timeout), "1ms–1m")
	}
	for _, k := range operatorKinds() {
		if k.Validate != nil && k.Has(op) {
			k.Validate(v, op, p)
		}
	}
}

func (v *validator) onError(oe *OnError, p string) {
	switch oe.Policy {
	case "":
		if oe.DeadLetter != "" {
			oe.Policy = OnErrorDeadLetter
		} else {
			oe.Policy = OnErrorFail
		}
	case OnErrorFail, OnErrorSkip:
		if oe.DeadLetter != "" {
			v.add(p+".on_error.dead_letter", CodeConflict, fmt.Sprintf("only with the dead_letter policy, not %s", oe.Policy), "")
		}
	case OnErrorDeadLetter:
	default:
		v.add(p+".on_error", CodeInvalid, fmt.Sprintf("%q is not an error policy", oe.Policy), "allowed: fail, skip, {dead_letter: STREAM}")
		return
	}
	if oe.Policy == OnErrorDeadLetter {
		switch {
		case oe.DeadLetter == "":
			v.required(p+".on_error.dead_letter", "on_error: {dead_letter: STREAM}")
		case !validStream(oe.DeadLetter):
			v.add(p+".on_error.dead_letter", CodeInvalid, fmt.Sprintf("%q is not a valid stream name", oe.DeadLetter), "1–128 of A-Z, a-z, 0-9, _ . - (not . or ..)")
		}
	}
}

func (v *validator) sink(i int) {
	s := &v.s.Sinks[i]
	p := fmt.Sprintf("sinks[%d]", i)
	if s.ID == "" {
		v.required(p+".id", "e.g. id: out")
	}
	var set []string
	for _, k := range sinkKinds() {
		if k.Has(s) {
			set = append(set, k.Name)
		}
	}
	for _, k := range sinkKinds() {
		if k.Connector && k.Validate != nil && k.Has(s) {
			k.Validate(v, s, p)
		}
	}
	switch {
	case len(set) == 0 && v.anyBad(p, sinkNames(nil)...):
	case len(set) == 0:
		v.add(p, CodeMissing, "needs one of "+oneOf(sinkNames(func(k *sinkKind) bool { return !k.Connector })), "e.g. log: {}")
	case len(set) > 1:
		v.add(p+"."+set[1], CodeConflict, fmt.Sprintf("a sink is one kind; this one has %s", strings.Join(set, " and ")), "use one sink per destination")
	}
	if s.Input != "" && s.Late != "" {
		v.add(p+".late", CodeConflict, "a sink takes input or late, not both", "add a second sink for the late records")
	}
	for _, k := range sinkKinds() {
		if !k.Connector && k.Validate != nil && k.Has(s) {
			k.Validate(v, s, p)
		}
	}
}

// ids checks operator and sink ids: well-formed, not the reserved source
// id, and unique across operators and sinks.
func (v *validator) ids() {
	first := map[string]string{}
	check := func(id, path string) {
		switch {
		case id == "":
			v.badIDs = true
			return
		case id == SourceID:
			v.badIDs = true
			v.add(path, CodeInvalid, `"source" is reserved`, "it names the job's source in input:; pick another id")
			return
		case len(id) > maxIDLength || !idRE.MatchString(id):
			v.badIDs = true
			v.add(path, CodeInvalid, fmt.Sprintf("%q is not a valid id", id), "1–64 of a-z, 0-9, _ and -, starting with a letter or digit")
			return
		}
		if prev, dup := first[id]; dup {
			v.badIDs = true
			v.add(path, CodeDuplicateID, fmt.Sprintf("%q is already the id of %s", id, prev), "ids are unique across operators and sinks")
			return
		}
		first[id] = path
	}
	for i := range v.s.Operators {
		check(v.s.Operators[i].ID, fmt.Sprintf("operators[%d].id", i))
	}
	for i := range v.s.Sinks {
		check(v.s.Sinks[i].ID, fmt.Sprintf("sinks[%d].id", i))
	}
}

// scripts compiles every JS snippet and reports syntax errors where they
// are, in the file and in the snippet.
func (v *validator) scripts() {
	if v.s.Functions != "" {
		_, err := CompileFunctions("functions", v.s.Functions)
		v.jsProblem("functions", "", err)
	}
	if v.s.Source.EventTime != "" {
		_, err := CompileSnippet("source.event_time", v.s.Source.EventTime)
		v.jsProblem("source.event_time", "", err)
	}
	for i := range v.s.Operators {
		op := &v.s.Operators[i]
		p := fmt.Sprintf("operators[%d]", i)
		for _, sn := range op.snippets() {
			if *sn.Src == "" {
				continue
			}
			field := sn.Field
			compile := CompileSnippet
			if sn.Object {
				// The object is either the aggregate's value or its
				// object: key; report it where it is written.
				if v.s.info != nil {
					if _, ok := v.s.info.pos[p+"."+field+".object"]; ok {
						field += ".object"
					}
				}
				compile = CompileObjectSnippet
			}
			_, err := compile(op.ID+"."+field, *sn.Src)
			v.jsProblem(p+"."+field, op.ID, err)
		}
	}
}

func (v *validator) jsProblem(path, opID string, err error) {
	if err == nil || v.suppressed(path) {
		return
	}
	var je *JSError
	if !errors.As(err, &je) {
		v.add(path, CodeJSSyntax, err.Error(), "")
		return
	}
	pos := v.at(path)
	line, col := pos.line, pos.col
	if line > 0 {
		line, col = snippetFilePos(pos, je.Line, je.Column)
	}
	where := "JS"
	if opID != "" {
		where = fmt.Sprintf("operator %q: JS", opID)
	}
	v.ps.add(Problem{
		Line: line, Column: col, Field: path, Code: CodeJSSyntax,
		Message:  fmt.Sprintf("%s syntax error at line %d, column %d of the snippet: %s", where, je.Line, je.Column, je.Message),
		Operator: opID, JSLine: je.Line, JSColumn: je.Column,
	})
}

// snippetFilePos maps a position inside a snippet to the job file: exact
// for literal blocks (|) and for one-line plain or quoted scalars (when the
// quoted text has no escapes); otherwise the snippet's first line.
func snippetFilePos(pos position, line, col int) (int, int) {
	switch {
	case pos.style&yaml.LiteralStyle != 0:
		return pos.line + line, pos.indent + col - 1
	case line == 1 && pos.style == 0:
		return pos.line, pos.col + col - 1
	case line == 1 && pos.style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		return pos.line, pos.col + col
	}
	return pos.line, pos.col
}
