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
	// Restart is what happens when a run fails (restart.go).
	Restart Restart `yaml:"restart"`

	// info remembers where each field sits in the file, so Validate can
	// name lines. Nil for a Spec built in Go.
	info *fileInfo
}

// Source says where a job's records come from: exactly one kind is set
// (Stream, File, Generator, Kafka, or one in ext; see kind_*.go).
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
	// ext holds the settings of kinds without a field above, by kind
	// name (extConfig).
	ext map[string]any
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

// SourceID is the id by which operators and sinks name the job's source in
// input:/inputs:. No operator or sink may use it.
const SourceID = "source"

// DefaultTimeout is the time budget of one JS call when an operator sets
// no timeout.
const DefaultTimeout = 100 * time.Millisecond

// Operator is one step of the job graph: exactly one kind is set (Map,
// Filter, Window, Detect, or one in ext).
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
	// ext holds the settings of kinds without a field above (extConfig).
	ext map[string]any
	// OnError is what a failing JS call does. Default fail.
	OnError OnError `yaml:"on_error"`
	// Timeout is the time budget of one JS call. Default DefaultTimeout.
	Timeout time.Duration `yaml:"timeout"`

	// From is the resolved list of inputs, filled by Validate: Inputs, or
	// [Input], or the previous operator (SourceID for the first operator).
	From []string `yaml:"-"`
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

// Sink is where results go: exactly one kind is set (Dashboard, Stream,
// File, Log, Kafka, Postgres, or one in ext).
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
	// ext holds the settings of kinds without a field above (extConfig).
	ext map[string]any

	// From is the resolved input, filled by Validate: Late, Input, or the
	// job's only end operator (SourceID when there are no operators).
	From string `yaml:"-"`
}

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
