package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
)

// Graph is a job: sources → a DAG of operators → sinks. IDs are unique over
// sources, nodes and sinks, and Nodes are in topological order: every node
// comes after the nodes it reads. An input names a source or node by ID, or a
// node's side output as "ID:NAME" (e.g. "per-page:late").
type Graph struct {
	Name    string
	Sources []SourceNode
	Nodes   []Node
	Sinks   []SinkNode
}

// SourceNode is a source with its event-time rules.
type SourceNode struct {
	ID     string
	Source sources.Source
	// EventTime assigns records' event times; nil means arrival time.
	EventTime EventTimeFactory
	// Watermark is the bounded out-of-orderness: a shard's watermark is its
	// maximum event time seen minus Watermark.
	Watermark time.Duration
	// IdleTimeout excludes a shard from the watermark after it returned no
	// record for this long (0 means DefaultIdleTimeout, negative never).
	IdleTimeout time.Duration
}

// DefaultIdleTimeout is SourceNode.IdleTimeout's default.
const DefaultIdleTimeout = 10 * time.Second

// EventTimeFunc sets EventTime on each record of a batch and returns the
// batch, which may be shorter when records were dropped (an extractor
// whose on_error is skip or dead_letter). It may reuse recs. It is called
// by one task only.
type EventTimeFunc func(ctx context.Context, recs []operators.Record) ([]operators.Record, error)

// EventTimeFactory makes the EventTimeFunc of one task (each task gets its
// own, e.g. its own JS runtime).
type EventTimeFactory func() (EventTimeFunc, error)

// KeyFunc sets Key on each record of a batch. It is called by one task.
type KeyFunc func(ctx context.Context, recs []operators.Record) error

// Node is an operator of the graph.
type Node struct {
	ID     string
	Inputs []string
	// New makes the operator instance of one task; it is called once per
	// task that runs the node.
	New func() (operators.Operator, error)
	// Key, if set, makes the node keyed: records are exchanged by the hash
	// of the key Key sets, so all records of a key reach the same task,
	// and the node's instances see Record.Key already set. Key is called
	// once per sending task.
	Key func() (KeyFunc, error)
}

// SinkNode is a sink with the nodes it reads.
type SinkNode struct {
	ID     string
	Inputs []string
	Sink   sinks.Sink
}

// ErrGraph marks an invalid job graph.
var ErrGraph = errors.New("runtime: invalid graph")

func graphErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrGraph, fmt.Sprintf(format, args...))
}

// splitInput splits "id:side" into its parts.
func splitInput(in string) (id, side string) {
	if i := strings.IndexByte(in, ':'); i >= 0 {
		return in[:i], in[i+1:]
	}
	return in, ""
}

// Validate checks IDs, inputs, cycles and partitioning. A node that is not
// keyed runs in the tasks of its inputs, so its inputs must be partitioned
// alike: all read from sources (the shard tasks), or all behind the same
// keyed node.
func (g *Graph) Validate() error {
	_, err := plan(g)
	return err
}

// A segment is a run of nodes executed in the same tasks: the shard tasks
// (keyed == -1) or the tasks of keyed node number keyed.
type planned struct {
	g       *Graph
	kind    map[string]string // id → "source", "node", "sink"
	node    map[string]*Node
	order   []string       // nodes in topological order
	segment map[string]int // node id → -1 (shard tasks) or index into keyed
	keyed   []string       // keyed node ids, topological
	// outs: producer id → consumers (node or sink ids) with the side name.
	outs map[string][]edge
}

type edge struct {
	to   string
	side string
}

func plan(g *Graph) (*planned, error) {
	p := &planned{g: g, kind: map[string]string{}, node: map[string]*Node{},
		segment: map[string]int{}, outs: map[string][]edge{}}
	add := func(id, kind string) error {
		if id == "" {
			return graphErr("a %s has no id", kind)
		}
		if strings.ContainsRune(id, ':') {
			return graphErr("%s id %q: ':' is reserved for side outputs", kind, id)
		}
		if k, dup := p.kind[id]; dup {
			return graphErr("id %q used by a %s and a %s", id, k, kind)
		}
		p.kind[id] = kind
		return nil
	}
	if len(g.Sources) == 0 {
		return nil, graphErr("no source")
	}
	for _, s := range g.Sources {
		if err := add(s.ID, "source"); err != nil {
			return nil, err
		}
		if s.Source == nil {
			return nil, graphErr("source %q has no Source", s.ID)
		}
		if s.Watermark < 0 {
			return nil, graphErr("source %q: negative watermark %v", s.ID, s.Watermark)
		}
	}
	for i := range g.Nodes {
		n := &g.Nodes[i]
		if err := add(n.ID, "node"); err != nil {
			return nil, err
		}
		if n.New == nil {
			return nil, graphErr("node %q has no operator factory", n.ID)
		}
		p.node[n.ID] = n
	}
	for _, s := range g.Sinks {
		if err := add(s.ID, "sink"); err != nil {
			return nil, err
		}
		if s.Sink == nil {
			return nil, graphErr("sink %q has no Sink", s.ID)
		}
	}
	link := func(to string, inputs []string) error {
		if len(inputs) == 0 {
			return graphErr("%s %q has no input", p.kind[to], to)
		}
		for _, in := range inputs {
			id, side := splitInput(in)
			switch p.kind[id] {
			case "source", "node":
			case "":
				return graphErr("%s %q reads %q, which does not exist", p.kind[to], to, id)
			default:
				return graphErr("%s %q reads %q, which is a sink", p.kind[to], to, id)
			}
			if side != "" && p.kind[id] != "node" {
				return graphErr("%s %q reads side output %q of source %q; only operators have side outputs", p.kind[to], to, side, id)
			}
			p.outs[id] = append(p.outs[id], edge{to: to, side: side})
		}
		return nil
	}
	for _, n := range g.Nodes {
		if err := link(n.ID, n.Inputs); err != nil {
			return nil, err
		}
	}
	for _, s := range g.Sinks {
		if err := link(s.ID, s.Inputs); err != nil {
			return nil, err
		}
	}
	// The nodes come in topological order (jobs sorts the graph once, when
	// it resolves the job file): check it, which also rules out cycles.
	at := map[string]int{}
	for i, n := range g.Nodes {
		at[n.ID] = i
	}
	for i, n := range g.Nodes {
		for _, in := range n.Inputs {
			if id, _ := splitInput(in); p.kind[id] == "node" && at[id] >= i {
				return nil, graphErr("operator %q reads %q, which does not come before it: Graph.Nodes must be in topological order, and a cycle has none", n.ID, id)
			}
		}
		p.order = append(p.order, n.ID)
	}
	// Segments.
	for _, id := range p.order {
		n := p.node[id]
		if n.Key != nil {
			p.segment[id] = len(p.keyed)
			p.keyed = append(p.keyed, id)
			continue
		}
		seg, first := 0, true
		for _, in := range n.Inputs {
			from, _ := splitInput(in)
			s := -1
			if p.kind[from] == "node" {
				s = p.segment[from]
			}
			if !first && s != seg {
				return nil, graphErr("operator %q unions inputs that are partitioned differently (%s); make it keyed so the runtime exchanges its input by key", id, strings.Join(n.Inputs, ", "))
			}
			seg, first = s, false
		}
		p.segment[id] = seg
	}
	return p, nil
}

// Bounded reports whether every source of g ends on its own, so Run
// returns without Stop (what `runnel run` requires).
func (g *Graph) Bounded() bool {
	for _, s := range g.Sources {
		if !sources.IsBounded(s.Source) {
			return false
		}
	}
	return len(g.Sources) > 0
}
