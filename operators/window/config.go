package window

import (
	"errors"
	"fmt"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/js"
)

// Kind is the window kind.
type Kind int

const (
	// Tumbling windows of Size, aligned to the epoch.
	Tumbling Kind = iota
	// Sliding windows of Size, one starting every Every (aligned to the
	// epoch); a record belongs to about Size/Every windows.
	Sliding
	// Session windows: a key's records closer than Gap form one window
	// [first record, last record + Gap).
	Session
)

func (k Kind) String() string {
	switch k {
	case Sliding:
		return "sliding"
	case Session:
		return "session"
	}
	return "tumbling"
}

// Config configures a keyed event-time window operator.
type Config struct {
	// Job and ID name the job and operator in errors and result Origins.
	Job, ID string
	Kind    Kind
	// Size (tumbling, sliding), Every (sliding), Gap (session).
	Size, Every, Gap time.Duration
	// AllowedLateness keeps a window's state after it fired, so records up
	// to this much behind the watermark re-fire it with an updated result.
	AllowedLateness time.Duration
	Aggregates      []aggregate.Spec
	// Functions is the job's functions block, for custom aggregates and
	// KeyJS.
	Functions string
	// The key: KeyJS (a JS snippet, run in this operator's task), or
	// KeyFunc (Go), or neither — then Record.Key as set upstream (the
	// runtime computes the key before its exchange by key).
	KeyJS   string
	KeyFunc func(operators.Record) (string, error)
	// OnError applies to failures of KeyJS, KeyFunc and custom aggregates.
	OnError   js.OnError
	JSOptions js.Options
	// NewStore makes each instance's state store, given the codec for its
	// state; nil means NewMemStore. OpenState replaces it.
	NewStore func(Codec) Store
	// StateCacheEntries bounds the windows (plus one per key) an operator
	// with durable state (OpenState) keeps in memory; the rest is in
	// Pebble. 0 means DefaultStateCacheEntries.
	StateCacheEntries int
	// StateDirtyEntries bounds the changed windows (and deletions) such an
	// operator holds unwritten: past it, it writes them all to Pebble
	// during processing, so SnapshotState (which pauses the job) has at
	// most this many to write. A key set that changes faster than that
	// between checkpoints is then written more than once per checkpoint.
	// 0 means DefaultStateDirtyEntries.
	StateDirtyEntries int
}

// Validate checks the window's shape; aggregates are checked by Compile.
func (c Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("window: operator id missing"))
	}
	switch c.Kind {
	case Tumbling:
		if c.Size <= 0 {
			errs = append(errs, fmt.Errorf("window %q: tumbling size must be > 0, got %v", c.ID, c.Size))
		}
	case Sliding:
		if c.Size <= 0 || c.Every <= 0 || c.Every > c.Size {
			errs = append(errs, fmt.Errorf("window %q: sliding needs 0 < every <= size, got size %v every %v", c.ID, c.Size, c.Every))
		}
	case Session:
		if c.Gap <= 0 {
			errs = append(errs, fmt.Errorf("window %q: session gap must be > 0, got %v", c.ID, c.Gap))
		}
	default:
		errs = append(errs, fmt.Errorf("window %q: unknown kind %d", c.ID, c.Kind))
	}
	if c.AllowedLateness < 0 {
		errs = append(errs, fmt.Errorf("window %q: allowed_lateness must be >= 0", c.ID))
	}
	if c.StateCacheEntries < 0 || c.StateDirtyEntries < 0 {
		errs = append(errs, fmt.Errorf("window %q: state cache and dirty entries must be >= 0, got %d and %d", c.ID, c.StateCacheEntries, c.StateDirtyEntries))
	}
	if c.KeyJS != "" && c.KeyFunc != nil {
		errs = append(errs, fmt.Errorf("window %q: set KeyJS or KeyFunc, not both", c.ID))
	}
	if c.OnError.Mode == js.DeadLetter && c.OnError.Stream == "" {
		errs = append(errs, fmt.Errorf("window %q: on_error dead_letter needs a stream", c.ID))
	}
	return errors.Join(errs...)
}

// Column is a result column: its name and type.
type Column = aggregate.Column

// Compiled is a validated window with its JS compiled; New makes one
// operator instance per task.
type Compiled struct {
	cfg  Config
	aggs *aggregate.Compiled
	key  *js.ChainProgram
}

// EnsureDefaults fills the fields left zero with their defaults
// (DefaultStateCacheEntries, DefaultStateDirtyEntries) and returns c.
func (c *Config) EnsureDefaults() *Config {
	if c.StateCacheEntries == 0 {
		c.StateCacheEntries = DefaultStateCacheEntries
	}
	if c.StateDirtyEntries == 0 {
		c.StateDirtyEntries = DefaultStateDirtyEntries
	}
	return c
}

// Compile validates cfg, fills its defaults and compiles its JS once.
func Compile(cfg Config) (*Compiled, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.EnsureDefaults()
	aggs, err := aggregate.Compile(cfg.Functions, cfg.Aggregates, cfg.JSOptions)
	if err != nil {
		return nil, fmt.Errorf("window %q: %w", cfg.ID, err)
	}
	c := &Compiled{cfg: cfg, aggs: aggs}
	if cfg.KeyJS != "" {
		c.key, err = js.CompileChain(js.ChainSpec{Job: cfg.Job, Functions: cfg.Functions, Options: cfg.JSOptions,
			Stages: []js.Stage{{Operator: cfg.ID, Kind: js.Key, Src: cfg.KeyJS, OnError: cfg.OnError}}})
		if err != nil {
			return nil, err
		}
	}
	return c, nil
}

// ResultColumns returns the columns of the operator's result rows:
// window_start and window_end (int64 epoch ms; sinks show them as
// timestamp[ms, UTC]), key (string), then one per aggregate in order.
func (c *Compiled) ResultColumns() []Column {
	cols := []Column{{Name: "window_start", Type: aggregate.Int64}, {Name: "window_end", Type: aggregate.Int64},
		{Name: "key", Type: aggregate.String}}
	return append(cols, c.aggs.Columns()...)
}

// New compiles cfg and makes one operator (for a single task).
func New(cfg Config) (*Operator, error) {
	c, err := Compile(cfg)
	if err != nil {
		return nil, err
	}
	return c.New()
}
