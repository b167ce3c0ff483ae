package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/state"
)

// Snapshot is the job-level part of a checkpoint, stored as the state
// checkpoint's metadata: where every shard is, the event time each shard
// has seen, and each keyed task's watermark. Operator state is in the
// Pebble checkpoint itself.
type Snapshot struct {
	Epoch       uint64 `json:"epoch"`
	Job         string `json:"job"`
	Parallelism int    `json:"parallelism"`
	// Positions is each shard's last position handed on ("SOURCE/SHARD"
	// keys); a shard that read nothing yet is absent and starts at the
	// source's configured start.
	Positions map[string]string `json:"positions"`
	// MaxEventTimes is the largest event time each shard had seen.
	MaxEventTimes map[string]int64 `json:"max_event_times"`
	// Watermarks is each keyed task's watermark ("NODE#i").
	Watermarks map[string]int64 `json:"watermarks"`
	// Extra is the caller's (CheckpointOptions.Extra), kept as is.
	Extra json.RawMessage `json:"extra,omitempty"`
}

// ParseSnapshot decodes a checkpoint's metadata.
func ParseSnapshot(meta []byte) (*Snapshot, error) {
	var s Snapshot
	if err := json.Unmarshal(meta, &s); err != nil {
		return nil, fmt.Errorf("runtime: checkpoint metadata: %w", err)
	}
	return &s, nil
}

func (o *Options) restoredWatermark(task string) int64 {
	if o.Restore != nil {
		if w, ok := o.Restore.Watermarks[task]; ok {
			return w
		}
	}
	return NoWatermark
}

// CheckpointOptions say how to take one checkpoint.
type CheckpointOptions struct {
	// Stop stops the sources at the checkpoint's barrier instead of
	// resuming them (a savepoint that ends the job): nothing is read after
	// it, the sinks commit it, and the job drains and ends as with Stop.
	Stop bool
	// Extra is stored in the Snapshot as is (e.g. the job file).
	Extra json.RawMessage
}

// Checkpointed reports a completed checkpoint.
type Checkpointed struct {
	state.Info
	Snapshot Snapshot
	// Held is how long the sources were held at the barrier: the longest
	// any record waited because of the checkpoint.
	Held time.Duration
	// Aligned is how long the barrier took to pass every task.
	Aligned time.Duration
}

// Errors of Checkpoint.
var (
	ErrNoState    = errors.New("runtime: the job has no state store (Options.State)")
	ErrNotRunning = errors.New("runtime: the job's sources are done; no checkpoint can be taken")
)

// Checkpoint steps passed to Options.Failpoint (the state store's own
// steps come between CheckpointAligned and CheckpointBeforeCommit).
const (
	// CheckpointAligned: every task passed the barrier, every sink staged
	// its rows; the store is not yet checkpointed.
	CheckpointAligned = "aligned"
	// CheckpointBeforeCommit: the checkpoint is durable, the sources run
	// again, the sinks have not committed.
	CheckpointBeforeCommit = "before-commit"
	// CheckpointAfterCommit: the sinks committed.
	CheckpointAfterCommit = "after-commit"
)

func (j *Job) failpoint(step string) error {
	if j.opts.Failpoint == nil {
		return nil
	}
	return j.opts.Failpoint(step)
}

// errPause is the cause a checkpoint cancels shard reads with.
var errPause = errors.New("runtime: checkpoint pause")

// checkpointer is a job's checkpoint coordination.
//
// A checkpoint holds the sources at a batch boundary and sends barriers
// behind the data already in flight: every shard task runs its rounds
// (read, process, send on) under gate's read lock, so once the
// coordinator holds the write lock, every shard task is between rounds and
// everything it read is in the queues ahead of the barrier. The shard
// tasks' own stateful operators are snapshotted directly (their tasks are
// parked). Then, keyed node by keyed node in topological order, a barrier
// goes into every task's inbox behind the data; a task reaching it has
// processed all its input, since everything upstream is parked or already
// past the barrier; it snapshots its operators and answers. Sinks come
// last: at the barrier they stage their rows (PreCommit). Now nothing
// moves: the job's Pebble store is checkpointed together with the
// Snapshot, the sources are let go, and the sinks commit.
type checkpointer struct {
	gate sync.RWMutex

	mu      sync.Mutex // guards pausing, reads, chains, last
	pausing bool
	reads   map[*pausable]struct{}
	chains  map[*chain]struct{}
	last    *Checkpointed

	run    sync.Mutex // one checkpoint at a time; guards closed, held, tried
	closed bool
	held   bool
	tried  uint64 // the last epoch attempted
}

type pausable struct{ cancel context.CancelCauseFunc }

// hold keeps every keyed inbox and sink inbox open for the coordinator's
// messages until close.
func (k *checkpointer) hold(j *Job) {
	if j.opts.State == nil {
		return
	}
	k.reads = map[*pausable]struct{}{}
	k.chains = map[*chain]struct{}{}
	k.held = true
	for _, f := range j.fanIns {
		f.acquire()
	}
}

// close ends checkpointing: the sources are done, so there is nothing
// left to snapshot that a later restore could resume.
func (k *checkpointer) close(j *Job) {
	k.run.Lock()
	defer k.run.Unlock()
	k.closed = true
	if k.held {
		k.held = false
		for _, f := range j.fanIns {
			f.release()
		}
	}
}

// readContext returns the context of one shard read: canceled with
// errPause when a checkpoint waits for the shard task.
func (k *checkpointer) readContext(parent context.Context) (context.Context, func()) {
	if k.reads == nil {
		return parent, func() {}
	}
	ctx, cancel := context.WithCancelCause(parent)
	p := &pausable{cancel: cancel}
	k.mu.Lock()
	if k.pausing {
		cancel(errPause)
	} else {
		k.reads[p] = struct{}{}
	}
	k.mu.Unlock()
	return ctx, func() {
		k.mu.Lock()
		delete(k.reads, p)
		k.mu.Unlock()
		cancel(nil)
	}
}

// pausedRead reports whether a read ended because a checkpoint paused it.
func (k *checkpointer) pausedRead(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errPause)
}

func (k *checkpointer) addChain(c *chain) {
	k.mu.Lock()
	if k.chains != nil {
		k.chains[c] = struct{}{}
	}
	k.mu.Unlock()
}

func (k *checkpointer) dropChain(c *chain) {
	k.mu.Lock()
	delete(k.chains, c)
	k.mu.Unlock()
}

// openSinkState hands transactional sinks their key spaces (which also
// commits what a crash left staged).
func (j *Job) openSinkState(ctx context.Context) error {
	if j.opts.State == nil {
		return nil
	}
	for _, s := range j.plan.g.Sinks {
		tx, ok := s.Sink.(interface {
			OpenState(context.Context, *state.Space) error
		})
		if !ok {
			continue
		}
		sp, err := j.opts.State.Namespace(s.ID, "sink")
		if err == nil {
			err = tx.OpenState(ctx, sp)
		}
		if err != nil {
			return fmt.Errorf("open state of sink %s: %w", s.ID, err)
		}
	}
	return nil
}

// Checkpoint takes the job's next checkpoint (its epoch one more than the
// newest in Options.State, or than the last attempted): see checkpointer
// for how. It returns once the checkpoint is durable and the sinks
// committed it. A failed checkpoint leaves the previous one the latest;
// the job goes on unless a task failed.
func (j *Job) Checkpoint(ctx context.Context, o CheckpointOptions) (Checkpointed, error) {
	k := &j.ckpt
	if j.opts.State == nil {
		return Checkpointed{}, ErrNoState
	}
	k.run.Lock()
	defer k.run.Unlock()
	if k.closed {
		return Checkpointed{}, ErrNotRunning
	}
	epoch := k.tried + 1
	if cs := j.opts.State.Checkpoints(); len(cs) > 0 {
		epoch = max(epoch, cs[len(cs)-1].Epoch+1)
	}
	k.tried = epoch
	return j.checkpointLocked(ctx, epoch, o)
}

func (j *Job) checkpointLocked(ctx context.Context, epoch uint64, o CheckpointOptions) (Checkpointed, error) {
	k := &j.ckpt
	begin := time.Now()
	fail := func(err error) (Checkpointed, error) {
		return Checkpointed{}, fmt.Errorf("checkpoint %d of job %s: %w", epoch, j.name, err)
	}
	// Before holding the sources, while records flow: keyed tasks write
	// out what they cache and the store flushes its memtable, so that the
	// hold below has only what changed since to write.
	if err := j.prepareCheckpoint(ctx); err != nil {
		return fail(err)
	}
	k.mu.Lock()
	k.pausing = true
	for p := range k.reads {
		p.cancel(errPause)
	}
	k.mu.Unlock()
	k.gate.Lock()
	k.mu.Lock()
	k.pausing = false
	k.mu.Unlock()
	held := time.Now()
	holding := true
	release := func() {
		if !holding {
			return
		}
		holding = false
		if o.Stop {
			j.stopping.Store(true)
			j.srcCancel()
		}
		k.gate.Unlock()
	}
	defer release()

	k.mu.Lock()
	chains := make([]*chain, 0, len(k.chains))
	for c := range k.chains {
		chains = append(chains, c)
	}
	k.mu.Unlock()
	for _, c := range chains {
		if err := c.snapshot(); err != nil {
			return fail(err)
		}
	}
	for _, id := range j.plan.keyed {
		x := j.exchanges[id]
		acks := make(chan error, len(x.inbox))
		for i := range x.inbox {
			if err := x.send(j.gctx, i, message{kind: msgBarrier, epoch: epoch, ack: acks}); err != nil {
				return fail(err)
			}
		}
		if err := j.waitAcks(ctx, acks, len(x.inbox)); err != nil {
			return fail(err)
		}
	}
	if err := j.sinkControl(ctx, epoch, false); err != nil {
		return fail(err)
	}
	aligned := time.Since(held)
	if err := j.failpoint(CheckpointAligned); err != nil {
		return fail(err)
	}

	snap := j.snapshot(epoch, o.Extra)
	meta, err := json.Marshal(snap)
	if err != nil {
		return fail(err)
	}
	info, err := j.opts.State.Checkpoint(epoch, meta)
	if err != nil {
		return fail(err)
	}
	res := Checkpointed{Info: info, Snapshot: snap, Held: time.Since(held), Aligned: aligned}
	release()
	if err := j.failpoint(CheckpointBeforeCommit); err != nil {
		return fail(err)
	}
	if err := j.sinkControl(ctx, epoch, true); err != nil {
		return fail(fmt.Errorf("commit: %w", err))
	}
	if err := j.failpoint(CheckpointAfterCommit); err != nil {
		return fail(err)
	}
	res.Duration = time.Since(begin)
	k.mu.Lock()
	k.last = &res
	k.mu.Unlock()
	return res, nil
}

// prepareCheckpoint asks every keyed task to snapshot its operators (a
// barrier without the hold: it orders nothing) and flushes the store.
func (j *Job) prepareCheckpoint(ctx context.Context) error {
	n := 0
	for _, id := range j.plan.keyed {
		n += len(j.exchanges[id].inbox)
	}
	acks := make(chan error, n)
	for _, id := range j.plan.keyed {
		x := j.exchanges[id]
		for i := range x.inbox {
			if err := x.send(j.gctx, i, message{kind: msgBarrier, ack: acks}); err != nil {
				return err
			}
		}
	}
	if err := j.waitAcks(ctx, acks, n); err != nil {
		return err
	}
	return j.opts.State.Flush()
}

// waitAcks waits for n answers on acks: the first error, the job's end or
// ctx's, whichever comes first.
func (j *Job) waitAcks(ctx context.Context, acks <-chan error, n int) error {
	for range n {
		select {
		case err := <-acks:
			if err != nil {
				return err
			}
		case <-j.gctx.Done():
			return context.Cause(j.gctx)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// sinkControl sends a barrier (or a commit) to every sink and waits for
// their answers.
func (j *Job) sinkControl(ctx context.Context, epoch uint64, commit bool) error {
	sinks := j.plan.g.Sinks
	acks := make(chan error, len(sinks))
	for _, s := range sinks {
		select {
		case j.sinkInbox[s.ID] <- sinkMsg{commit: commit, epoch: epoch, ack: acks}:
		case <-j.gctx.Done():
			return context.Cause(j.gctx)
		}
	}
	return j.waitAcks(ctx, acks, len(sinks))
}

// snapshot collects the job-level state while everything is parked.
func (j *Job) snapshot(epoch uint64, extra json.RawMessage) Snapshot {
	s := Snapshot{Epoch: epoch, Job: j.name, Parallelism: j.opts.Parallelism, Extra: extra,
		Positions: map[string]string{}, MaxEventTimes: map[string]int64{}, Watermarks: map[string]int64{}}
	j.mu.Lock()
	for key, st := range j.mu.shards {
		if st.position != "" {
			s.Positions[key] = st.position
		}
		if st.maxEventTime != NoWatermark {
			s.MaxEventTimes[key] = st.maxEventTime
		}
	}
	j.mu.Unlock()
	// A shard that read nothing in this run keeps what it was restored at.
	if r := j.opts.Restore; r != nil {
		for key, p := range r.Positions {
			if _, ok := s.Positions[key]; !ok {
				s.Positions[key] = p
			}
		}
		for key, t := range r.MaxEventTimes {
			if _, ok := s.MaxEventTimes[key]; !ok {
				s.MaxEventTimes[key] = t
			}
		}
	}
	for id, wms := range j.keyedWM {
		for i, w := range wms {
			if v := w.Load(); v != NoWatermark {
				s.Watermarks[keyedTaskID(id, i)] = v
			}
		}
	}
	return s
}

// LastCheckpoint returns the job's last completed checkpoint in this run.
func (j *Job) LastCheckpoint() (Checkpointed, bool) {
	k := &j.ckpt
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.last == nil {
		return Checkpointed{}, false
	}
	return *k.last, true
}
