package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	goruntime "runtime"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/state"
)

// Options tune how a job runs. Zero values pick the defaults.
type Options struct {
	// Parallelism is the number of tasks of each keyed node; default
	// GOMAXPROCS.
	Parallelism int
	// BatchSize is the most records a shard task reads at once; default
	// 512.
	BatchSize int
	// QueueDepth is the capacity, in batches, of every inbox between tasks
	// (exchanges and sinks); default 4. Together with BatchSize it bounds
	// the records in flight: a slow sink blocks its producers instead of
	// growing memory.
	QueueDepth int
	// Positions resumes shards after these positions, keyed
	// "SOURCE/SHARD" (what Status.Shards reports), e.g. from a checkpoint.
	Positions map[string]string
	// State, when set, makes the job checkpointable (Job.Checkpoint):
	// Stateful operators and Transactional sinks get their key spaces in
	// it. The caller owns it and closes it after the job ended.
	State *state.DB
	// Failpoint, if set, is called at the steps of a checkpoint the state
	// store does not see (the Checkpoint* step constants); an error ends
	// the checkpoint there. Tests only.
	Failpoint func(step string) error
	// Restore resumes the job from a checkpoint's snapshot: its positions
	// (over Positions), watermarks and parallelism. State must hold the
	// same checkpoint's contents (state.Restore).
	Restore *Snapshot
	// MaxStagedRows bounds the rows a Transactional sink may be given
	// between two checkpoints, which it holds until the next one
	// (default DefaultMaxStagedRows); past it the job fails with an
	// error naming the sink, rather than growing memory.
	MaxStagedRows int
	// Logger receives what the runtime reports on its own (shards found
	// while the job runs, failed shard listings); default slog.Default().
	Logger *slog.Logger
}

// DefaultMaxStagedRows is the default of Options.MaxStagedRows.
const DefaultMaxStagedRows = 1_000_000

// restored takes from o.Restore what the job restores: its parallelism
// (keyed state is split by it) and its shards' positions.
func (o *Options) restored() {
	if o.Restore == nil {
		return
	}
	if o.Restore.Parallelism > 0 {
		o.Parallelism = o.Restore.Parallelism
	}
	if o.Restore.Positions != nil {
		o.Positions = o.Restore.Positions
	}
}

// EnsureDefaults fills the fields left zero (or negative) with their
// defaults (one task per CPU, batches of 512 records,
// DefaultMaxStagedRows, queues of 4 batches) and returns o.
func (o *Options) EnsureDefaults() *Options {
	if o.Parallelism <= 0 {
		o.Parallelism = goruntime.GOMAXPROCS(0)
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 512
	}
	if o.MaxStagedRows <= 0 {
		o.MaxStagedRows = DefaultMaxStagedRows
	}
	if o.QueueDepth <= 0 {
		o.QueueDepth = 4
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// State is a job's lifecycle state.
type State string

// Job states.
const (
	Running  State = "running"
	Finished State = "finished" // every source ended and all results were written
	Stopped  State = "stopped"  // Stop drained the job, or it was canceled
	Failed   State = "failed"   // an operator, source or sink failed; see Reason
)

// LateCounter is implemented by operators that count late records (a
// window's records beyond allowed lateness). It is called concurrently
// with Process.
type LateCounter interface{ LateRecords() int64 }

// SkipCounter is implemented by operators that count records they
// skipped on error (on_error: skip). It is called concurrently with
// Process.
type SkipCounter interface{ SkippedRecords() int64 }

// errHardStop is the cancel cause when Stop's deadline passed.
var errHardStop = errors.New("runtime: stop deadline passed; job canceled before it drained")

// Job is a running job graph. All methods are safe for concurrent use.
type Job struct {
	name string
	plan *planned
	opts Options

	exchanges map[string]*exchange // keyed node id → its inboxes
	sinkInbox map[string]chan sinkMsg
	nodeStats map[string]*nodeStats // nodes, sinks and sources
	// fanIns close each inbox (keyed node or sink id) after its last
	// producer task returned.
	fanIns map[string]*fanIn
	// keyedWM is each keyed task's current watermark, for Status.
	keyedWM  map[string][]*atomic.Int64
	initial  map[string][]sources.Shard // source id → shards to start first
	srcReach map[string]map[string]bool // source id → keyed nodes its tasks feed

	hctx   context.Context // canceled hard: parent ctx, Stop deadline
	cancel context.CancelCauseFunc
	// srcCtx ends when the sources must stop reading (Stop); gctx when
	// any task failed or the job was canceled hard.
	srcCancel context.CancelFunc
	srcCtx    context.Context
	group     *errgroup.Group
	gctx      context.Context
	done      chan struct{}
	stopping  atomic.Bool

	ckpt checkpointer

	mu struct {
		sync.Mutex
		state   State
		err     error
		started time.Time
		ended   time.Time
		shards  map[string]*shardStatus
		ops     map[string][]operators.Operator
	}
}

type nodeStats struct {
	in, out, errors atomic.Int64
}

// fanIn closes an inbox when its last producer is done.
type fanIn struct {
	n     atomic.Int64
	close func()
}

func (f *fanIn) acquire() { f.n.Add(1) }
func (f *fanIn) release() {
	if f.n.Add(-1) == 0 {
		f.close()
	}
}

// Start validates g, lists the sources' shards and starts the job. The
// job runs until its bounded sources end, Stop is called, a task fails or
// ctx is canceled (a hard cancel).
func Start(ctx context.Context, g *Graph, opts Options) (*Job, error) {
	return StartSetup(ctx, ctx, g, opts)
}

// StartSetup is Start whose setup is bounded by setup as well as ctx: the
// listing of the sources' shards and the opening of the transactional
// sinks' state, which settles what an earlier run staged (and may wait
// on a sink's target). A cancel of setup cuts the start short, and Start
// returns its cause; once StartSetup returned, setup is no concern of the
// job's (ctx alone bounds its run).
func StartSetup(ctx, setup context.Context, g *Graph, opts Options) (*Job, error) {
	sctx, done := setupContext(ctx, setup)
	defer done()
	p, err := plan(g)
	if err != nil {
		return nil, err
	}
	opts.restored()
	opts.EnsureDefaults()
	j := &Job{name: g.Name, plan: p, opts: opts,
		exchanges: map[string]*exchange{}, sinkInbox: map[string]chan sinkMsg{},
		nodeStats: map[string]*nodeStats{}, fanIns: map[string]*fanIn{},
		keyedWM: map[string][]*atomic.Int64{}, initial: map[string][]sources.Shard{},
		srcReach: map[string]map[string]bool{}, done: make(chan struct{})}
	j.mu.state = Running
	j.mu.started = time.Now()
	j.mu.shards = map[string]*shardStatus{}
	j.mu.ops = map[string][]operators.Operator{}
	for id := range p.kind {
		j.nodeStats[id] = &nodeStats{}
	}
	for _, id := range p.keyed {
		x := newExchange(id, opts.Parallelism, opts.QueueDepth)
		j.exchanges[id] = x
		j.fanIns[id] = &fanIn{close: x.close}
		wms := make([]*atomic.Int64, opts.Parallelism)
		for i := range wms {
			wms[i] = &atomic.Int64{}
			wms[i].Store(opts.restoredWatermark(keyedTaskID(id, i)))
		}
		j.keyedWM[id] = wms
	}
	for _, s := range g.Sinks {
		ch := make(chan sinkMsg, opts.QueueDepth)
		j.sinkInbox[s.ID] = ch
		j.fanIns[s.ID] = &fanIn{close: func() { close(ch) }}
	}
	for _, s := range g.Sources {
		shards, err := s.Source.Shards(sctx)
		if err != nil {
			return nil, fmt.Errorf("list shards of source %s: %w", s.ID, setupErr(sctx, err))
		}
		j.initial[s.ID] = shards
		j.srcReach[s.ID] = p.reachKeyed(s.ID)
	}

	hctx, cancel := context.WithCancelCause(ctx)
	j.hctx, j.cancel = hctx, cancel
	j.group, j.gctx = errgroup.WithContext(hctx)
	j.srcCtx, j.srcCancel = context.WithCancel(j.gctx)

	// Producers take their references before any task runs, so no inbox
	// closes early.
	srcTargets := p.segmentTargets(-1)
	for _, t := range srcTargets {
		j.fanIns[t].acquire()
	}
	keyedTargets := make([][]string, len(p.keyed))
	for k := range p.keyed {
		keyedTargets[k] = p.segmentTargets(k)
		for range opts.Parallelism {
			for _, t := range keyedTargets[k] {
				j.fanIns[t].acquire()
			}
		}
	}
	if err := j.openSinkState(sctx); err != nil {
		err = setupErr(sctx, err)
		cancel(err)
		return nil, err
	}
	j.ckpt.hold(j)
	for _, s := range g.Sinks {
		s := s
		j.group.Go(func() error { return j.runSink(j.gctx, s) })
	}
	for k, id := range p.keyed {
		inputs := j.keyedInputs(k)
		for i := range opts.Parallelism {
			tr := newTracker(inputs)
			tr.last = opts.restoredWatermark(keyedTaskID(id, i))
			targets := keyedTargets[k]
			j.group.Go(func() error {
				defer j.releaseAll(targets)
				return j.runKeyed(j.gctx, k, i, j.exchanges[id].inbox[i], tr)
			})
		}
	}
	j.group.Go(func() error {
		defer j.releaseAll(srcTargets)
		// No checkpoint can start once the sources are done: the
		// coordinator lets go of the inboxes it could send to.
		defer j.ckpt.close(j)
		if err := j.runSources(j.gctx); err != nil {
			return err
		}
		if j.opts.State != nil && !j.stopping.Load() && j.gctx.Err() == nil {
			// Every source ended: a last checkpoint, so the sinks
			// commit the job's final results.
			if _, err := j.Checkpoint(j.gctx, CheckpointOptions{}); err != nil {
				return err
			}
		}
		return nil
	})
	go j.wait()
	return j, nil
}

func (j *Job) releaseAll(targets []string) {
	for _, t := range targets {
		j.fanIns[t].release()
	}
}

// keyedInputs lists the senders a task of keyed node k waits for at start:
// the initial shards of the sources that feed it and the tasks of the keyed
// nodes that feed it.
func (j *Job) keyedInputs(k int) []string {
	id := j.plan.keyed[k]
	var out []string
	for _, s := range j.plan.g.Sources {
		if !j.srcReach[s.ID][id] {
			continue
		}
		for _, sh := range j.startable(s.ID, j.initial[s.ID], nil) {
			out = append(out, s.ID+"/"+sh.ID)
		}
	}
	for k2, up := range j.plan.keyed {
		if k2 != k && j.plan.segmentFeeds(k2, id) {
			for i := range j.opts.Parallelism {
				out = append(out, keyedTaskID(up, i))
			}
		}
	}
	return out
}

func keyedTaskID(node string, i int) string { return node + "#" + strconv.Itoa(i) }

func (j *Job) wait() {
	err := j.group.Wait()
	hard := context.Cause(j.hctx) // before our own cancel below
	j.cancel(nil)
	j.mu.Lock()
	j.mu.ended = time.Now()
	switch {
	case hard != nil:
		j.mu.state, j.mu.err = Stopped, hard
	case err == nil && j.stopping.Load():
		j.mu.state = Stopped
	case err == nil:
		j.mu.state = Finished
	default:
		j.mu.state, j.mu.err = Failed, err
	}
	j.mu.Unlock()
	close(j.done)
}

// Done is closed when the job has ended and all its goroutines returned.
func (j *Job) Done() <-chan struct{} { return j.done }

// Wait blocks until the job ended and returns why it failed, or nil when
// it finished or was stopped.
func (j *Job) Wait() error {
	<-j.done
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.mu.state == Failed {
		return j.mu.err
	}
	return nil
}

// Stop stops the sources, lets the records already read drain through the
// operators, and closes the sinks (which flushes them). Windows that have
// not fired stay unfired: stopping is not the end of event time. If ctx
// ends first, the job is canceled hard and Stop returns ctx's error after
// every goroutine returned.
func (j *Job) Stop(ctx context.Context) error {
	j.stopping.Store(true)
	j.srcCancel()
	select {
	case <-j.done:
		return j.Wait()
	case <-ctx.Done():
		j.cancel(errHardStop)
		<-j.done
		return ctx.Err()
	}
}

// Run runs g to completion: for `runnel run` over bounded sources (see
// Graph.Bounded; with an unbounded source Run returns only when ctx ends).
func Run(ctx context.Context, g *Graph, opts Options) (Status, error) {
	j, err := Start(ctx, g, opts)
	if err != nil {
		return Status{}, err
	}
	err = j.Wait()
	return j.Status(), err
}

// runSink feeds one sink until all its producers are done, then closes it.
func (j *Job) runSink(ctx context.Context, s SinkNode) (err error) {
	st := j.nodeStats[s.ID]
	defer func() {
		if cerr := s.Sink.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close sink %s: %w", s.ID, cerr)
		}
	}()
	inbox := j.sinkInbox[s.ID]
	tx, _ := s.Sink.(sinks.Transactional)
	if j.opts.State == nil {
		tx = nil
	}
	staged := 0 // rows since the last checkpoint, held by tx
	for {
		select {
		case m, ok := <-inbox:
			if !ok {
				return nil
			}
			if m.ack != nil {
				var err error
				switch {
				case tx == nil:
				case m.commit:
					err = tx.Commit(ctx, m.epoch)
				default:
					err = tx.PreCommit(ctx, m.epoch)
				}
				if err != nil {
					st.errors.Add(1)
					err = fmt.Errorf("sink %s: checkpoint %d: %w", s.ID, m.epoch, err)
				}
				m.ack <- err
				if err != nil {
					return err
				}
				if !m.commit {
					staged = 0
				}
				continue
			}
			st.in.Add(int64(len(m.rows)))
			if staged += len(m.rows); tx != nil && staged > j.opts.MaxStagedRows {
				st.errors.Add(1)
				return fmt.Errorf("sink %s: %d rows since the last checkpoint, more than the limit of %d it may hold until the next one: checkpoint more often (checkpoint.every) or emit fewer rows",
					s.ID, staged, j.opts.MaxStagedRows)
			}
			if err := s.Sink.Write(ctx, m.rows); err != nil {
				st.errors.Add(1)
				return fmt.Errorf("sink %s: %w", s.ID, err)
			}
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// runKeyed is one task of keyed node k.
func (j *Job) runKeyed(ctx context.Context, k, i int, inbox chan message, tr *tracker) error {
	id := j.plan.keyed[k]
	c, err := j.newChain(k, id, keyedTaskID(id, i))
	if err != nil {
		return err
	}
	j.registerOps(c)
	defer c.close()
	last := tr.last
	wm := j.keyedWM[id][i]
	if last != NoWatermark {
		// Restored: keyed tasks downstream learn this task's watermark
		// now, not only once it advances (it may never, if its inputs
		// are caught up and quiet).
		c.setWatermark(last)
		if err := c.run(ctx, NoWatermark); err != nil {
			return err
		}
	}
	for {
		var m message
		var ok bool
		select {
		case m, ok = <-inbox:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
		if !ok {
			return c.close()
		}
		switch m.kind {
		case msgData:
			err := c.push(ctx, m.recs, NoWatermark)
			putRecords(m.recs)
			if err != nil {
				return err
			}
			tr.update(m.from, m.wm)
		case msgWatermark:
			tr.update(m.from, m.wm)
		case msgOpen:
			tr.open(m.from, m.wm)
		case msgIdle:
			tr.idle(m.from)
		case msgEnd:
			tr.end(m.from)
		case msgBarrier:
			err := c.snapshot()
			m.ack <- err
			if err != nil {
				return err
			}
		}
		if w := tr.current(); w > last {
			last = w
			if err := c.advance(ctx, w); err != nil {
				return err
			}
			wm.Store(w)
		}
	}
}

func (j *Job) registerOps(c *chain) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, n := range c.nodes {
		j.mu.ops[n.id] = append(j.mu.ops[n.id], n.op)
	}
}

// segmentTargets lists the keyed nodes and sinks segment seg's tasks send to.
func (p *planned) segmentTargets(seg int) []string {
	set := map[string]bool{}
	from := func(id string) {
		for _, e := range p.outs[id] {
			if p.kind[e.to] == "sink" || (p.kind[e.to] == "node" && p.node[e.to].Key != nil) {
				set[e.to] = true
			}
		}
	}
	if seg == -1 {
		for _, s := range p.g.Sources {
			from(s.ID)
		}
	}
	for _, id := range p.order {
		if p.segment[id] == seg {
			from(id)
		}
	}
	out := make([]string, 0, len(set))
	for id := range set {
		out = append(out, id)
	}
	sort.Strings(out)
	return out
}

// segmentFeeds reports whether keyed segment k sends to keyed node to.
func (p *planned) segmentFeeds(k int, to string) bool {
	for _, t := range p.segmentTargets(k) {
		if t == to {
			return true
		}
	}
	return false
}

// reachKeyed lists the keyed nodes that the shard tasks of source src
// send to.
func (p *planned) reachKeyed(src string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]bool{}
	var walk func(id string)
	walk = func(id string) {
		if seen[id] {
			return
		}
		seen[id] = true
		for _, e := range p.outs[id] {
			if p.kind[e.to] != "node" {
				continue
			}
			if p.node[e.to].Key != nil {
				out[e.to] = true
				continue
			}
			walk(e.to)
		}
	}
	walk(src)
	return out
}
