package aggregate

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
)

// Column is one result column of a window: its name and type.
type Column struct {
	Name string
	Type ColumnType
}

// Compiled is a window's list of aggregates, validated and with any custom
// JS compiled once; make one Instance per task.
type Compiled struct {
	specs []Spec
	paths [][]string
	prog  *js.Program
	// snippet holds, per spec, the index of its first snippet in prog (-1
	// for builtins).
	snippet []int
	opts    js.Options
}

// Compile validates specs (names must be unique and must not clash with
// window_start, window_end or key) and compiles custom aggregates with the
// job's functions block.
func Compile(functions string, specs []Spec, opts js.Options) (*Compiled, error) {
	if len(specs) == 0 {
		return nil, errors.New("aggregate: a window needs at least one aggregate")
	}
	c := &Compiled{specs: specs, opts: opts}
	seen := map[string]bool{"window_start": true, "window_end": true, "key": true}
	var snips []js.Snippet
	for _, s := range specs {
		if err := s.Validate(); err != nil {
			return nil, err
		}
		if seen[s.Name] {
			return nil, fmt.Errorf("aggregate %q: duplicate or reserved column name", s.Name)
		}
		seen[s.Name] = true
		var path []string
		if s.Field != "" {
			path = strings.Split(s.Field, ".")
		}
		c.paths = append(c.paths, path)
		if s.Func != Custom {
			c.snippet = append(c.snippet, -1)
			continue
		}
		c.snippet = append(c.snippet, len(snips))
		if s.Object != "" {
			snips = append(snips, js.Snippet{Name: s.Name + ".aggregate", Src: s.Object, Methods: []string{"init", "add", "merge"}})
			continue
		}
		result := s.Result
		if result == "" {
			result = "acc => acc"
		}
		snips = append(snips,
			js.Snippet{Name: s.Name + ".init", Src: s.Init},
			js.Snippet{Name: s.Name + ".add", Src: s.Add},
			js.Snippet{Name: s.Name + ".merge", Src: s.Merge},
			js.Snippet{Name: s.Name + ".result", Src: result})
	}
	if len(snips) > 0 {
		prog, err := js.Compile(functions, snips...)
		if err != nil {
			return nil, err
		}
		c.prog = prog
	}
	return c, nil
}

// Columns returns the result columns in spec order.
func (c *Compiled) Columns() []Column {
	cols := make([]Column, len(c.specs))
	for i, s := range c.specs {
		cols[i] = Column{Name: s.Name, Type: s.ColumnType()}
	}
	return cols
}

// Specs returns the aggregate specs.
func (c *Compiled) Specs() []Spec { return c.specs }

// Instance evaluates a window's aggregates in one task. It owns the task's
// JS runtime for custom aggregates and is not safe for concurrent use.
type Instance struct {
	c      *Compiled
	vm     *js.VM
	custom []*jsAgg // per spec; nil for builtins
}

// Instance makes the per-task evaluator.
func (c *Compiled) Instance() (*Instance, error) {
	in := &Instance{c: c, custom: make([]*jsAgg, len(c.specs))}
	if c.prog == nil {
		return in, nil
	}
	vm, err := c.prog.NewVM(c.opts)
	if err != nil {
		return nil, err
	}
	in.vm = vm
	for i, s := range c.specs {
		if s.Func != Custom {
			continue
		}
		agg, err := newJSAgg(vm, s, c.snippet[i])
		if err != nil {
			return nil, err
		}
		in.custom[i] = agg
	}
	return in, nil
}

// Close stops the instance's JS VM, if it has one.
func (in *Instance) Close() {
	if in.vm != nil {
		in.vm.Close()
	}
}

// New returns fresh accumulators, one per spec.
func (in *Instance) New() ([]Accumulator, error) {
	accs := make([]Accumulator, len(in.c.specs))
	for i, s := range in.c.specs {
		if agg := in.custom[i]; agg != nil {
			a, err := agg.newAcc()
			if err != nil {
				return nil, &SpecError{Spec: s.Name, Err: err}
			}
			accs[i] = a
			continue
		}
		accs[i] = newBuiltin(s)
	}
	return accs, nil
}

// SpecError is a failure of a custom aggregate's JS, naming the aggregate.
type SpecError struct {
	Spec string
	Err  error
}

func (e *SpecError) Error() string { return fmt.Sprintf("aggregate %q: %v", e.Spec, e.Err) }
func (e *SpecError) Unwrap() error { return e.Err }

// Add folds one record value into accs. The value may be in any form of
// operators.Value (a JS object of another VM from js.Chain's raw sink, a
// projection, raw JSON): builtins read their fields from it, and custom
// aggregates get it exported.
func (in *Instance) Add(accs []Accumulator, value any) error {
	if in.vm != nil {
		if x, err := operators.ValueOf(value).Export(); err == nil {
			value = x
		}
	}
	for i, s := range in.c.specs {
		v := value
		if p := in.c.paths[i]; p != nil {
			v = fieldOf(value, p)
		}
		if err := accs[i].Add(v); err != nil {
			return &SpecError{Spec: s.Name, Err: err}
		}
	}
	return nil
}

// Merge folds src into dst (both from this instance's New or Unmarshal).
func (in *Instance) Merge(dst, src []Accumulator) error {
	for i := range dst {
		if err := dst[i].Merge(src[i]); err != nil {
			return &SpecError{Spec: in.c.specs[i].Name, Err: err}
		}
	}
	return nil
}

// Results returns the column values in spec order.
func (in *Instance) Results(accs []Accumulator) []any {
	out := make([]any, len(accs))
	for i, a := range accs {
		out[i] = a.Result()
	}
	return out
}

// Marshal encodes accs: per accumulator, a length and its bytes.
func (in *Instance) Marshal(accs []Accumulator) ([]byte, error) {
	var b []byte
	for i, a := range accs {
		data, err := a.MarshalBinary()
		if err != nil {
			return nil, &SpecError{Spec: in.c.specs[i].Name, Err: err}
		}
		b = binary.AppendUvarint(b, uint64(len(data)))
		b = append(b, data...)
	}
	return b, nil
}

// Unmarshal decodes what Marshal wrote (by any instance of the same
// Compiled, in any process).
func (in *Instance) Unmarshal(b []byte) ([]Accumulator, error) {
	accs, err := in.New()
	if err != nil {
		return nil, err
	}
	d := decoder{b: b}
	for i, a := range accs {
		n := d.uvarint()
		data := d.bytes(int(n))
		if d.err {
			return nil, ErrCorrupt
		}
		if err := a.UnmarshalBinary(data); err != nil {
			return nil, &SpecError{Spec: in.c.specs[i].Name, Err: err}
		}
	}
	if len(d.b) != 0 {
		return nil, ErrCorrupt
	}
	return accs, nil
}
