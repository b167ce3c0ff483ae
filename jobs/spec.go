package jobs

import (
	"time"
)

// Spec is a parsed job file. Parse fills it from YAML and runs Validate,
// which fills in every default (documented per field in docs/jobs.md and in
// Fields) and resolves the operator graph into Operator.From and Sink.From.
// The yaml tags name each field's key in the job file; fields tagged "-" are
// derived from the file rather than spelled in it.
type Spec struct {
	Name       string     `yaml:"name"`
	Source     Source     `yaml:"source"`
	Functions  string     `yaml:"functions"`
	Operators  []Operator `yaml:"operators"`
	Sinks      []Sink     `yaml:"sinks"`
	Checkpoint Checkpoint `yaml:"checkpoint"`

	// info remembers where each field sits in the file, so Validate can
	// name lines. Nil for a Spec built in Go.
	info *fileInfo
}

// Source kinds, as returned by Source.Kind.
const (
	SourceStream    = "stream"
	SourceFile      = "file"
	SourceGenerator = "generator"
)

// Source says where a job's records come from: exactly one of Stream, File
// or Generator is set.
type Source struct {
	// Stream is the name of a Runnel stream to read (created with Shards
	// shards if it does not exist).
	Stream string `yaml:"stream"`
	// File lists bounded JSON-lines or CSV files (for runnel run); each
	// file is one shard. The job file takes one path or a list.
	File []string `yaml:"file"`
	// Generator is the built-in synthetic source.
	Generator *Generator `yaml:"generator"`
	// Kafka reads Kafka topics (see KafkaSource).
	Kafka *KafkaSource `yaml:"kafka"`
	// Shards: for a stream, the shard count used if the stream is created;
	// for the generator, how many shards it produces. Default 1; 0 for a
	// file source (one shard per file).
	Shards int `yaml:"shards"`
	// Start is where a stream source starts reading. Default trim_horizon.
	Start Start `yaml:"start"`
	// Format is how records are decoded: json|text|bytes for a stream,
	// jsonl|csv for a file. Default json for a stream; for a file csv when
	// the (first) path ends in .csv, else jsonl.
	Format string `yaml:"format"`
	// EventTime is a JS snippet returning a record's event time (epoch ms
	// or RFC 3339 string). Empty: arrival time.
	EventTime string `yaml:"event_time"`
	// Watermark is the bounded out-of-orderness. Default 0.
	Watermark time.Duration `yaml:"watermark"`
	// OnError is what a stream source does with a record it cannot hand
	// on: data that does not decode in Format (or JSON nested deeper than
	// sources.MaxJSONDepth), or an event time EventTime cannot read.
	// Default fail.
	OnError OnError `yaml:"on_error"`
	// EventTimeFallback "arrival": a record whose event time EventTime
	// cannot read takes its arrival time instead (before OnError).
	EventTimeFallback string `yaml:"event_time_fallback"`
}

// EventTimeArrival is Source.EventTimeFallback's one value.
const EventTimeArrival = "arrival"

// Kind returns SourceStream, SourceFile, SourceGenerator, or "" when none
// is set.
func (s *Source) Kind() string {
	switch {
	case s.Stream != "":
		return SourceStream
	case len(s.File) > 0:
		return SourceFile
	case s.Generator != nil:
		return SourceGenerator
	case s.Kafka != nil:
		return SourceKafka
	}
	return ""
}

// Start positions for a stream source.
const (
	StartTrimHorizon = "trim_horizon"
	StartLatest      = "latest"
	StartAtTimestamp = "at_timestamp"
)

// Start is a stream source's starting position.
type Start struct {
	// Position is trim_horizon, latest or at_timestamp.
	Position string `yaml:"-"`
	// AtTimestamp is the time to start at when Position is at_timestamp.
	AtTimestamp time.Time `yaml:"at_timestamp"`
}

// RateMax as Generator.Rate means "as fast as the job consumes".
const RateMax = -1

// DefaultGeneratorRate is the generator's rate when none is set.
const DefaultGeneratorRate = 1000

// Generator configures the built-in synthetic source.
type Generator struct {
	// Rate is records per second over all shards, or RateMax. Default
	// DefaultGeneratorRate.
	Rate float64 `yaml:"rate"`
	// Keys is the number of distinct pages. Default 100.
	Keys int `yaml:"keys"`
	// Users is the number of distinct users. Default 1000.
	Users int `yaml:"users"`
	// Shape is the record shape. Default and only value: clickstream
	// ({page, user, latency_ms, status, country, ts, elapsed_ms}).
	Shape string `yaml:"shape"`
	// Count ends the source after this many records in total (spread over
	// the shards); 0 means unbounded.
	Count int64 `yaml:"count"`
	// Seed makes the generated records reproducible. Default 0.
	Seed uint64 `yaml:"seed"`
}

// Operator kinds, as returned by Operator.Kind.
const (
	KindMap    = "map"
	KindFilter = "filter"
	KindWindow = "window"
	KindDetect = "detect"
)

// SourceID is the id by which operators and sinks name the job's source in
// input:/inputs:. No operator or sink may use it.
const SourceID = "source"

// DefaultTimeout is the time budget of one JS call when an operator sets
// no timeout.
const DefaultTimeout = 100 * time.Millisecond

// Operator is one step of the job graph: exactly one of Map, Filter,
// Window or Detect is set.
type Operator struct {
	ID string `yaml:"id"`
	// Input or Inputs, as written; at most one is set. See From.
	Input  string   `yaml:"input"`
	Inputs []string `yaml:"inputs"`
	// Map and Filter are JS snippets (see Snippet).
	Map    string  `yaml:"map"`
	Filter string  `yaml:"filter"`
	Window *Window `yaml:"window"`
	Detect *Detect `yaml:"detect"`
	// OnError is what a failing JS call does. Default fail.
	OnError OnError `yaml:"on_error"`
	// Timeout is the time budget of one JS call. Default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`

	// From is the resolved list of inputs, filled by Validate: Inputs, or
	// [Input], or the previous operator (SourceID for the first operator).
	From []string `yaml:"-"`
}

// Kind returns KindMap, KindFilter, KindWindow, KindDetect, or "" when
// none is set.
func (o *Operator) Kind() string {
	switch {
	case o.Map != "":
		return KindMap
	case o.Filter != "":
		return KindFilter
	case o.Window != nil:
		return KindWindow
	case o.Detect != nil:
		return KindDetect
	}
	return ""
}

// Error policies for OnError.Policy.
const (
	OnErrorFail       = "fail"
	OnErrorSkip       = "skip"
	OnErrorDeadLetter = "dead_letter"
)

// OnError is an operator's error policy: fail stops the job; skip drops the
// record and counts it; dead_letter writes the record and the error to the
// stream DeadLetter.
type OnError struct {
	Policy     string `yaml:"-"`
	DeadLetter string `yaml:"dead_letter"`
}

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

// DefaultDetectMethod is the anomaly method used when detect sets none.
const DefaultDetectMethod = "auto"

// Detect scores records for anomalies, one model per key.
type Detect struct {
	// Value lists the numeric fields scored together (one or more).
	Value []string `yaml:"value"`
	// Key is a JS snippet returning the model key; empty: the record's
	// key as set by the upstream window.
	Key string `yaml:"key"`
	// Method names the detector. Default auto.
	Method string `yaml:"method"`
	// Threshold is the anomaly_score in (0, 1] at or above which
	// is_anomaly is set; 0 means the method's default.
	Threshold float64 `yaml:"threshold"`
	// Seed makes randomized detectors reproducible. Default 0.
	Seed int64 `yaml:"seed"`
}

// Sink kinds, as returned by Sink.Kind.
const (
	SinkDashboard = "dashboard"
	SinkStream    = "stream"
	SinkFile      = "file"
	SinkLog       = "log"
)

// Sink is where results go: exactly one of Dashboard, Stream, File or Log
// is set.
type Sink struct {
	ID string `yaml:"id"`
	// Input names the operator (or SourceID) whose output the sink takes.
	Input string `yaml:"input"`
	// Late names a window operator whose late records the sink takes
	// instead of a regular input.
	Late      string         `yaml:"late"`
	Dashboard *DashboardSink `yaml:"dashboard"`
	Stream    *StreamSink    `yaml:"stream"`
	File      *FileSink      `yaml:"file"`
	Log       *LogSink       `yaml:"log"`
	Kafka     *KafkaSink     `yaml:"kafka"`
	Postgres  *PostgresSink  `yaml:"postgres"`

	// From is the resolved input, filled by Validate: Late, Input, or the
	// job's only end operator (SourceID when there are no operators).
	From string `yaml:"-"`
}

// Kind returns SinkDashboard, SinkStream, SinkFile, SinkLog or "".
func (s *Sink) Kind() string {
	switch {
	case s.Dashboard != nil:
		return SinkDashboard
	case s.Stream != nil:
		return SinkStream
	case s.File != nil:
		return SinkFile
	case s.Log != nil:
		return SinkLog
	case s.Kafka != nil:
		return SinkKafka
	case s.Postgres != nil:
		return SinkPostgres
	}
	return ""
}

// DefaultDashboardRows is how many recent result rows a dashboard keeps.
const DefaultDashboardRows = 10000

// DashboardSink keeps recent results for the web UI and results API.
type DashboardSink struct {
	// Title shown above the chart. Default: the sink id.
	Title string `yaml:"title"`
	// Rows is how many recent result rows are kept.
	Rows int `yaml:"rows"`
}

// StreamSink writes one JSON record per result to a stream; the partition
// key is the window key.
type StreamSink struct {
	Name string `yaml:"name"`
	// Shards is the shard count used if the stream is created. Default 1.
	Shards int `yaml:"shards"`
}

// File sink formats.
const (
	FileJSONL   = "jsonl"
	FileArrow   = "arrow"
	FileParquet = "parquet"
)

// FileSink writes results to a file.
type FileSink struct {
	Path string `yaml:"path"`
	// Format is jsonl, arrow (Arrow IPC file) or parquet. Default from the
	// extension: .arrow/.ipc/.feather → arrow, .parquet → parquet, else
	// jsonl.
	Format string `yaml:"format"`
}

// LogSink prints results as JSON lines (to stdout under runnel run).
type LogSink struct{}

// DefaultCheckpointEvery is the checkpoint interval when none is set.
const DefaultCheckpointEvery = 10 * time.Second

// DefaultCheckpointRetain is how many complete checkpoints a job keeps.
const DefaultCheckpointRetain = 3

// Checkpoint configures periodic checkpoints.
type Checkpoint struct {
	Every time.Duration `yaml:"every"`
	// Retain is how many complete checkpoints are kept (the newest).
	Retain int `yaml:"retain"`
}
