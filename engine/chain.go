package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/sinks"
)

// sideOutputs is operators.SideOutputs, asserted structurally.
type sideOutputs interface {
	SideOutputNames() []string
	SetSideOutput(name string, out operators.Emitter)
}

// chain runs the nodes of one segment inside one task: a batch enters at
// the segment's entry, every node processes its whole pending input in
// topological order, and what leaves the segment is buffered per target
// (an exchange into a keyed node, or a sink) and flushed at the end of the
// batch. Watermarks pass through in the same order, after the data.
type chain struct {
	job     *Job
	entry   []*target
	nodes   []*chainNode
	exits   []*exchangeOut
	sinkOut []*sinkOut
	from    string // this task's sender id in exchanges
	closed  bool
}

type chainNode struct {
	id    string
	op    operators.Operator
	wmh   operators.WatermarkHandler
	in    operators.Batch
	main  *emitter
	stats *nodeStats
}

// target is where emitted records go: a node of the chain, an exchange or
// a sink.
type target struct {
	node *chainNode
	exch *exchangeOut
	sink *sinkOut
}

func (t *target) push(r operators.Record) {
	switch {
	case t.node != nil:
		t.node.in.Records = append(t.node.in.Records, r)
	case t.exch != nil:
		t.exch.buf = append(t.exch.buf, r)
	default:
		t.sink.buf = append(t.sink.buf, sinks.Row{Key: r.Key, Value: r.Value})
	}
}

// emitter fans an operator's output out to its targets and counts it.
type emitter struct {
	targets []*target
	n       int64
}

func (e *emitter) Emit(r operators.Record) {
	e.n++
	for i, t := range e.targets {
		if i > 0 {
			// Every further branch gets its own copy: JS operators write
			// through to the Go maps they are handed.
			r.Value = operators.ValueOf(r.Value).Copy().Any()
		}
		t.push(r)
	}
}

// newChain instantiates the nodes of segment seg reachable from entry (a
// source id, or the keyed node itself) for one task.
func (j *Job) newChain(seg int, entry string, from string) (*chain, error) {
	p := j.plan
	c := &chain{job: j, from: from}
	nodes := map[string]*chainNode{}
	exch := map[string]*exchangeOut{}
	sk := map[string]*sinkOut{}
	// reachable nodes of this segment, in topological order
	reach := map[string]bool{entry: true}
	for _, id := range p.order {
		if p.segment[id] != seg {
			continue
		}
		if id == entry {
			reach[id] = true
			continue
		}
		if p.node[id].Key != nil {
			continue
		}
		for _, in := range p.node[id].Inputs {
			if f, _ := splitInput(in); reach[f] {
				reach[id] = true
			}
		}
	}
	for _, id := range p.order {
		if !reach[id] || p.segment[id] != seg {
			continue
		}
		op, err := p.node[id].New()
		if err != nil {
			c.close()
			return nil, fmt.Errorf("create operator %s: %w", id, err)
		}
		n := &chainNode{id: id, op: op, stats: j.nodeStats[id], main: &emitter{}}
		n.wmh, _ = op.(operators.WatermarkHandler)
		if st, ok := op.(operators.Stateful); ok && j.opts.State != nil {
			c.nodes = append(c.nodes, n) // closed with the chain on error
			sp, err := j.opts.State.Namespace(id, from)
			if err == nil {
				err = st.OpenState(sp)
			}
			if err != nil {
				c.close()
				return nil, fmt.Errorf("open state of operator %s in task %s: %w", id, from, err)
			}
			c.nodes = c.nodes[:len(c.nodes)-1]
		}
		nodes[id] = n
		c.nodes = append(c.nodes, n)
	}
	targetOf := func(to string) (*target, error) {
		switch p.kind[to] {
		case "sink":
			if sk[to] == nil {
				sk[to] = &sinkOut{inbox: j.sinkInbox[to]}
				c.sinkOut = append(c.sinkOut, sk[to])
			}
			return &target{sink: sk[to]}, nil
		case "node":
			if p.node[to].Key != nil {
				if exch[to] == nil {
					kf, err := p.node[to].Key()
					if err != nil {
						return nil, fmt.Errorf("create key function of %s: %w", to, err)
					}
					exch[to] = &exchangeOut{ex: j.exchanges[to], key: kf, from: from, node: to}
					c.exits = append(c.exits, exch[to])
				}
				return &target{exch: exch[to]}, nil
			}
			if n := nodes[to]; n != nil {
				return &target{node: n}, nil
			}
		}
		return nil, nil
	}
	wire := func(from string, side string, em *emitter) error {
		for _, e := range p.outs[from] {
			if e.side != side {
				continue
			}
			t, err := targetOf(e.to)
			if err != nil {
				return err
			}
			if t != nil {
				em.targets = append(em.targets, t)
			}
		}
		return nil
	}
	entryEm := &emitter{}
	if p.kind[entry] == "source" {
		if err := wire(entry, "", entryEm); err != nil {
			c.close()
			return nil, err
		}
		c.entry = entryEm.targets
	} else {
		c.entry = []*target{{node: nodes[entry]}}
	}
	for _, n := range c.nodes {
		if err := wire(n.id, "", n.main); err != nil {
			c.close()
			return nil, err
		}
		if so, ok := n.op.(sideOutputs); ok {
			for _, name := range so.SideOutputNames() {
				em := &emitter{}
				if err := wire(n.id, name, em); err != nil {
					c.close()
					return nil, err
				}
				if len(em.targets) > 0 {
					so.SetSideOutput(name, em)
				}
			}
		}
	}
	return c, nil
}

// push runs recs through the chain and flushes its outputs. wm, unless
// NoWatermark, then advances the chain's timers: a shard task passes its
// shard's watermark, so a WatermarkHandler running in shard tasks sees
// that shard's event time (keyed tasks advance separately, at the minimum
// over their inputs).
func (c *chain) push(ctx context.Context, recs []operators.Record, wm int64) error {
	for i, t := range c.entry {
		for _, r := range recs {
			if i > 0 {
				r.Value = operators.ValueOf(r.Value).Copy().Any()
			}
			t.push(r)
		}
	}
	return c.run(ctx, wm)
}

// run processes pending input node by node; when wm is not NoWatermark it
// also advances each node's event-time timers after its data, then flushes
// the chain's outputs (data before the watermark).
func (c *chain) run(ctx context.Context, wm int64) error {
	for _, n := range c.nodes {
		if len(n.in.Records) > 0 {
			n.stats.in.Add(int64(len(n.in.Records)))
			n.main.n = 0
			err := n.op.Process(ctx, &n.in, n.main)
			n.stats.out.Add(n.main.n)
			clear(n.in.Records)
			n.in.Records = n.in.Records[:0]
			if err != nil {
				n.stats.errors.Add(1)
				return operatorErr(n.id, "", err)
			}
		}
		if wm != NoWatermark && n.wmh != nil {
			n.main.n = 0
			err := n.wmh.OnWatermark(ctx, wm, n.main)
			n.stats.out.Add(n.main.n)
			if err != nil {
				n.stats.errors.Add(1)
				return operatorErr(n.id, fmt.Sprintf(" at watermark %d", wm), err)
			}
		}
	}
	for _, x := range c.exits {
		if err := x.flush(ctx); err != nil {
			return err
		}
	}
	for _, s := range c.sinkOut {
		if err := s.flush(ctx); err != nil {
			return err
		}
	}
	return nil
}

// setWatermark sets the watermark the chain's next flush sends downstream
// with (or after) its records.
func (c *chain) setWatermark(wm int64) {
	for _, x := range c.exits {
		x.wm = wm
	}
}

// advance passes watermark wm through the chain's timers and on to the
// keyed tasks downstream.
func (c *chain) advance(ctx context.Context, wm int64) error {
	c.setWatermark(wm)
	return c.run(ctx, wm)
}

// broadcast sends m to every keyed task behind the chain's exchanges.
func (c *chain) broadcast(ctx context.Context, m message) error {
	for _, x := range c.exits {
		if err := x.ex.broadcast(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// snapshot asks the chain's stateful operators to write out what they
// hold in memory, at a checkpoint barrier.
func (c *chain) snapshot() error {
	if c.job.opts.State == nil {
		return nil
	}
	for _, n := range c.nodes {
		if st, ok := n.op.(operators.Stateful); ok {
			if err := st.SnapshotState(); err != nil {
				return fmt.Errorf("snapshot operator %s in task %s: %w", n.id, c.from, err)
			}
		}
	}
	return nil
}

// close closes the chain's operators once; later calls return nil.
func (c *chain) close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	var first error
	for _, n := range c.nodes {
		if err := n.op.Close(); err != nil && first == nil {
			first = fmt.Errorf("close operator %s: %w", n.id, err)
		}
	}
	return first
}

// sinkMsg is what a sink's inbox carries: rows, or a checkpoint barrier or
// commit from the coordinator (ack set).
type sinkMsg struct {
	rows   []sinks.Row
	commit bool // with ack: commit epoch; else a barrier
	epoch  uint64
	ack    chan<- error
}

// sinkOut buffers one task's rows for a sink.
type sinkOut struct {
	inbox chan sinkMsg
	buf   []sinks.Row
}

func (s *sinkOut) flush(ctx context.Context) error {
	if len(s.buf) == 0 {
		return nil
	}
	rows := s.buf
	s.buf = make([]sinks.Row, 0, cap(rows))
	select {
	case s.inbox <- sinkMsg{rows: rows}:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// recordPool recycles exchange batches; a receiver returns a batch after
// the operator's Process returned (the operator contract forbids keeping
// it).
var recordPool = sync.Pool{New: func() any { s := make([]operators.Record, 0, 256); return &s }}

func getRecords() []operators.Record { return (*recordPool.Get().(*[]operators.Record))[:0] }

func putRecords(s []operators.Record) {
	clear(s)
	s = s[:0]
	recordPool.Put(&s)
}

// operatorErr names the operator id (and where, when not empty) an error
// happened in, unless the error names it already: a JS error says job,
// operator and record, so saying the operator again would repeat it.
func operatorErr(id, where string, err error) error {
	if _, ok := errors.AsType[*js.Error](err); ok {
		return err
	}
	return fmt.Errorf("operator %s%s: %w", id, where, err)
}
