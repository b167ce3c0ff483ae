package jobs

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/runnel-dev/runnel/operators/anomaly"
	"github.com/runnel-dev/runnel/streams"
)

var (
	nameRE   = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,63}$`)
	idRE     = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	columnRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
)

// validStream reports whether name is a valid stream name, by the streams
// package's own rule.
func validStream(name string) bool { return streams.ValidateStreamName(name) == nil }

// Limits on numeric fields.
const (
	maxShards        = 1024
	maxDashboardRows = 1_000_000
	maxTimeout       = time.Minute
	minCheckpoint    = 100 * time.Millisecond
	maxIDLength      = 64
)

// reservedColumns are the window result columns aggregates may not reuse.
var reservedColumns = []string{"window_start", "window_end", "key"}

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
	v.graph()
	v.scripts()
}

// normalize trims every snippet with NormalizeSnippet, so the Spec holds
// exactly the text that compiles (at validation and at run time).
func (v *validator) normalize() {
	n := func(s *string) { *s = NormalizeSnippet(*s) }
	n(&v.s.Source.EventTime)
	for i := range v.s.Operators {
		op := &v.s.Operators[i]
		n(&op.Map)
		n(&op.Filter)
		if w := op.Window; w != nil {
			n(&w.Key)
			for j := range w.Aggregate {
				a := &w.Aggregate[j]
				for _, part := range []*string{&a.Init, &a.Add, &a.Merge, &a.Result, &a.Object} {
					n(part)
				}
			}
		}
		if d := op.Detect; d != nil {
			n(&d.Key)
		}
	}
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
	set := setKinds(map[string]bool{SourceStream: src.Stream != "", SourceFile: len(src.File) > 0, SourceGenerator: src.Generator != nil, SourceKafka: src.Kafka != nil},
		SourceStream, SourceFile, SourceGenerator, SourceKafka)
	switch {
	case len(set) == 0 && v.anyBad("source", SourceStream, SourceFile, SourceGenerator, SourceKafka):
		return
	case len(set) == 0:
		v.add("source", CodeMissing, "needs one of stream, file or generator", "e.g. source: {stream: clicks}")
		return
	case len(set) > 1:
		v.add("source."+set[1], CodeConflict, fmt.Sprintf("a source is one of stream, file or generator; this one has %s", strings.Join(set, " and ")), "run one job per source, or union them with a stream")
		return
	}
	kind := set[0]
	if kind == SourceStream && !validStream(src.Stream) {
		v.add("source.stream", CodeInvalid, fmt.Sprintf("%q is not a valid stream name", src.Stream), "1–128 of A-Z, a-z, 0-9, _ . - (not . or ..)")
	}
	switch {
	case kind == SourceFile:
		if src.Shards != 0 {
			v.add("source.shards", CodeConflict, "a file source has one shard per file", "remove shards")
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
	if oe := src.OnError; kind != SourceStream && (oe.Policy == OnErrorSkip || oe.Policy == OnErrorDeadLetter || oe.DeadLetter != "") {
		v.add("source.on_error", CodeConflict, "applies to stream sources only", "remove on_error")
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
	if kind == SourceGenerator {
		v.generator(src.Generator)
	}
	v.validateConnectorSource(src)
}

func (v *validator) start(kind string) {
	st := &v.s.Source.Start
	if kind != SourceStream {
		if st.Position != "" || !st.AtTimestamp.IsZero() {
			v.add("source.start", CodeConflict, "start applies to stream sources only", "remove start")
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

func (v *validator) format(kind string) {
	src := &v.s.Source
	var allowed []string
	switch kind {
	case SourceStream, SourceKafka:
		allowed = []string{"json", "text", "bytes"}
	case SourceFile:
		allowed = []string{"jsonl", "csv"}
	case SourceGenerator:
		if src.Format != "" {
			v.add("source.format", CodeConflict, "the generator makes JSON-like records; format does not apply", "remove format")
		}
		return
	}
	if src.Format == "" {
		src.Format = "json"
		if kind == SourceFile {
			src.Format = "jsonl"
			if strings.EqualFold(filepath.Ext(src.File[0]), ".csv") {
				src.Format = "csv"
			}
		}
		return
	}
	if !contains(allowed, src.Format) {
		v.add("source.format", CodeInvalid, fmt.Sprintf("%q is not a %s source format", src.Format, kind), hintAllowed(src.Format, allowed))
	}
}

func hintAllowed(got string, allowed []string) string {
	if h := suggest(got, allowed); h != "" {
		return h
	}
	return "allowed: " + strings.Join(allowed, ", ")
}

func (v *validator) generator(g *Generator) {
	const p = "source.generator"
	switch {
	case g.Rate == 0:
		g.Rate = DefaultGeneratorRate
	case (g.Rate <= 0 || math.IsNaN(g.Rate) || math.IsInf(g.Rate, 0)) && g.Rate != RateMax:
		v.add(p+".rate", CodeInvalid, fmt.Sprintf("%g is not a rate", g.Rate), "records per second (> 0) or max")
	}
	switch {
	case g.Keys == 0:
		g.Keys = 100
	case g.Keys < 0:
		v.add(p+".keys", CodeInvalid, fmt.Sprintf("%d is not a key count", g.Keys), "at least 1")
	}
	switch {
	case g.Users == 0:
		g.Users = 1000
	case g.Users < 0:
		v.add(p+".users", CodeInvalid, fmt.Sprintf("%d is not a user count", g.Users), "at least 1")
	}
	switch {
	case g.Shape == "":
		g.Shape = "clickstream"
	case g.Shape != "clickstream":
		v.add(p+".shape", CodeInvalid, fmt.Sprintf("%q is not a generator shape", g.Shape), "allowed: clickstream")
	}
	if g.Count < 0 {
		v.add(p+".count", CodeInvalid, "must not be negative", "0 means unbounded")
	}
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
	set := setKinds(map[string]bool{KindMap: op.Map != "", KindFilter: op.Filter != "", KindWindow: op.Window != nil, KindDetect: op.Detect != nil},
		KindMap, KindFilter, KindWindow, KindDetect)
	switch {
	case len(set) == 0 && v.anyBad(p, KindMap, KindFilter, KindWindow, KindDetect):
	case len(set) == 0:
		v.add(p, CodeMissing, "needs one of map, filter, window or detect", "")
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
	if op.Window != nil {
		v.window(op.Window, p+".window")
	}
	if op.Detect != nil {
		v.detect(op.Detect, p+".detect")
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

func (v *validator) window(w *Window, p string) {
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
	v.span(p+".tumbling", w.Tumbling, w.Tumbling != 0)
	if s := w.Sliding; s != nil {
		if s.Size == 0 {
			v.required(p+".sliding.size", "sliding: {size: 1m, every: 10s}")
		}
		if s.Every == 0 {
			v.required(p+".sliding.every", "sliding: {size: 1m, every: 10s}")
		}
		v.span(p+".sliding.size", s.Size, s.Size != 0)
		v.span(p+".sliding.every", s.Every, s.Every != 0)
		if s.Size > 0 && s.Every > s.Size {
			v.add(p+".sliding.every", CodeInvalid, fmt.Sprintf("%s is longer than size %s", s.Every, s.Size), "every ≤ size (every = size is a tumbling window)")
		}
	}
	if s := w.Session; s != nil {
		if s.Gap == 0 {
			v.required(p+".session.gap", "session: {gap: 30s}")
		}
		v.span(p+".session.gap", s.Gap, s.Gap != 0)
	}
	if w.AllowedLateness < 0 || w.AllowedLateness%time.Millisecond != 0 {
		v.add(p+".allowed_lateness", CodeInvalid, fmt.Sprintf("%s is not a whole, non-negative number of milliseconds", w.AllowedLateness), "e.g. 30s")
	}
	if c := w.StateCache; c != 0 && (c < MinStateCache || c > MaxStateCache) {
		v.add(p+".state_cache", CodeInvalid, fmt.Sprintf("%d is out of range", c), fmt.Sprintf("%d–%d window states", MinStateCache, MaxStateCache))
	}
	v.aggregates(w, p+".aggregate")
}

// span checks a window length that is set.
func (v *validator) span(path string, d time.Duration, set bool) {
	if set && (d <= 0 || d%time.Millisecond != 0) {
		v.add(path, CodeInvalid, fmt.Sprintf("%s is not a positive, whole number of milliseconds", d), "e.g. 10s, 1m")
	}
}

func (v *validator) aggregates(w *Window, p string) {
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
		case contains(reservedColumns, a.Name):
			v.add(ap, CodeInvalid, fmt.Sprintf("%q clashes with a result column", a.Name), "window_start, window_end and key are taken; pick another name")
		case seen[a.Name]:
			v.add(ap, CodeDuplicateKey, "appears twice", "")
		}
		seen[a.Name] = true
		v.aggregate(a, ap)
	}
}

func (v *validator) aggregate(a *Aggregate, ap string) {
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
		case !contains(ColumnTypes, a.Type):
			v.add(ap+".type", CodeInvalid, fmt.Sprintf("%q is not a column type", a.Type), hintAllowed(a.Type, ColumnTypes))
		}
		return
	}
	if a.Type != "" {
		v.add(ap+".type", CodeInvalid, fmt.Sprintf("%s has a fixed column type", a.Func), "type applies to custom aggregates only")
	}
	if !contains(BuiltinAggregates, a.Func) {
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

func (v *validator) detect(d *Detect, p string) {
	if len(d.Value) == 0 {
		v.add(p+".value", CodeMissing, "detect needs the field(s) to score", "e.g. value: views, or value: [views, p95_ms]")
	}
	for i, f := range d.Value {
		if !fieldRE.MatchString(f) {
			v.add(fmt.Sprintf("%s.value[%d]", p, i), CodeInvalid, fmt.Sprintf("%q is not a field name", f), "a name like views, or a dotted path like stats.ms")
		}
	}
	seen := map[string]bool{}
	for i, f := range d.Value {
		if seen[f] {
			v.add(fmt.Sprintf("%s.value[%d]", p, i), CodeInvalid, fmt.Sprintf("%q is listed twice", f), "")
		}
		seen[f] = true
	}
	switch {
	case d.Method == "":
		d.Method = DefaultDetectMethod
	case !contains(anomaly.Methods, d.Method):
		v.add(p+".method", CodeInvalid, fmt.Sprintf("%q is not an anomaly detection method", d.Method), hintAllowed(d.Method, anomaly.Methods))
	}
	if math.IsNaN(d.Threshold) || d.Threshold < 0 || d.Threshold > 1 {
		v.add(p+".threshold", CodeInvalid, fmt.Sprintf("%g is out of range", d.Threshold), "0 < threshold ≤ 1 (anomaly scores are in [0, 1])")
	}
}

func (v *validator) sink(i int) {
	s := &v.s.Sinks[i]
	p := fmt.Sprintf("sinks[%d]", i)
	if s.ID == "" {
		v.required(p+".id", "e.g. id: out")
	}
	set := setKinds(map[string]bool{SinkDashboard: s.Dashboard != nil, SinkStream: s.Stream != nil, SinkFile: s.File != nil, SinkLog: s.Log != nil,
		SinkKafka: s.Kafka != nil, SinkPostgres: s.Postgres != nil},
		SinkDashboard, SinkStream, SinkFile, SinkLog, SinkKafka, SinkPostgres)
	v.validateConnectorSink(p, s)
	switch {
	case len(set) == 0 && v.anyBad(p, SinkDashboard, SinkStream, SinkFile, SinkLog, SinkKafka, SinkPostgres):
	case len(set) == 0:
		v.add(p, CodeMissing, "needs one of dashboard, stream, file or log", "e.g. log: {}")
	case len(set) > 1:
		v.add(p+"."+set[1], CodeConflict, fmt.Sprintf("a sink is one kind; this one has %s", strings.Join(set, " and ")), "use one sink per destination")
	}
	if s.Input != "" && s.Late != "" {
		v.add(p+".late", CodeConflict, "a sink takes input or late, not both", "add a second sink for the late records")
	}
	if d := s.Dashboard; d != nil {
		if d.Title == "" {
			d.Title = s.ID
		}
		switch {
		case d.Rows == 0:
			d.Rows = DefaultDashboardRows
		case d.Rows < 1 || d.Rows > maxDashboardRows:
			v.add(p+".dashboard.rows", CodeInvalid, fmt.Sprintf("%d is out of range", d.Rows), "1–1000000")
		}
	}
	if st := s.Stream; st != nil {
		switch {
		case st.Name == "":
			v.required(p+".stream.name", "stream: {name: results}")
		case !validStream(st.Name):
			v.add(p+".stream.name", CodeInvalid, fmt.Sprintf("%q is not a valid stream name", st.Name), "1–128 of A-Z, a-z, 0-9, _ . - (not . or ..)")
		}
		switch {
		case st.Shards == 0:
			st.Shards = 1
		case st.Shards < 1 || st.Shards > maxShards:
			v.add(p+".stream.shards", CodeInvalid, fmt.Sprintf("%d is out of range", st.Shards), "1–1024")
		}
	}
	if f := s.File; f != nil {
		if f.Path == "" {
			v.required(p+".file.path", "file: {path: out.jsonl}")
		}
		allowed := []string{FileJSONL, FileArrow, FileParquet}
		switch {
		case f.Format == "":
			switch strings.ToLower(filepath.Ext(f.Path)) {
			case ".arrow", ".ipc", ".feather":
				f.Format = FileArrow
			case ".parquet":
				f.Format = FileParquet
			default:
				f.Format = FileJSONL
			}
		case !contains(allowed, f.Format):
			v.add(p+".file.format", CodeInvalid, fmt.Sprintf("%q is not a file format", f.Format), hintAllowed(f.Format, allowed))
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
		snippet := func(field, js string) {
			if js != "" {
				_, err := CompileSnippet(op.ID+"."+field, js)
				v.jsProblem(p+"."+field, op.ID, err)
			}
		}
		snippet("map", op.Map)
		snippet("filter", op.Filter)
		if w := op.Window; w != nil {
			snippet("window.key", w.Key)
			for _, a := range w.Aggregate {
				ap := "window.aggregate." + a.Name
				if a.Object != "" {
					// The object is either the aggregate's value or its
					// object: key; report it where it is written.
					field := ap
					if v.s.info != nil {
						if _, ok := v.s.info.pos[p+"."+ap+".object"]; ok {
							field += ".object"
						}
					}
					_, err := CompileObjectSnippet(op.ID+"."+field, a.Object)
					v.jsProblem(p+"."+field, op.ID, err)
				}
				snippet(ap+".init", a.Init)
				snippet(ap+".add", a.Add)
				snippet(ap+".merge", a.Merge)
				snippet(ap+".result", a.Result)
			}
		}
		if d := op.Detect; d != nil {
			snippet("detect.key", d.Key)
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
