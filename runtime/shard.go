package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sources"
)

// shardStatus is what a shard task reports while it runs.
type shardStatus struct {
	source, shard string
	state         ShardState
	position      string
	maxEventTime  int64
	watermark     int64
	records       int64
}

// shardDone is a shard task's report to the scheduler.
type shardDone struct {
	source   int
	shard    string
	ended    bool // read to its end (not stopped)
	children []sources.Shard
}

// startable returns the shards of list that may start once the shards in
// ended have ended: those all of whose parents in the list have ended (a
// parent outside the list has expired or was never known).
func (j *Job) startable(src string, list []sources.Shard, ended map[string]bool) []sources.Shard {
	known := map[string]bool{}
	for _, s := range list {
		known[s.ID] = true
	}
	var out []sources.Shard
	for _, s := range list {
		ok := true
		for _, p := range s.Parents {
			if known[p] && !ended[p] {
				ok = false
			}
		}
		if ok {
			out = append(out, s)
		}
	}
	return out
}

// runSources schedules shard tasks: the initial shards at once, a child
// shard once all its known parents ended. It returns after every shard
// task returned, so the inboxes it holds open close only then.
func (j *Job) runSources(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	events := make(chan shardDone)
	type srcState struct {
		known   []sources.Shard
		started map[string]bool
		ended   map[string]bool
	}
	states := make([]*srcState, len(j.plan.g.Sources))
	running := 0
	start := func(si int, sh sources.Shard) {
		st := states[si]
		st.started[sh.ID] = true
		running++
		var kids []string
		for _, k := range st.known {
			if slices.Contains(k.Parents, sh.ID) {
				kids = append(kids, k.ID)
			}
		}
		wg.Add(1)
		j.group.Go(func() error {
			defer wg.Done()
			ev, err := j.runShard(ctx, si, sh, kids)
			if err != nil {
				return err
			}
			select {
			case events <- ev:
			case <-ctx.Done():
			}
			return nil
		})
	}
	startReady := func(si int) {
		st := states[si]
		for _, sh := range j.startable(j.plan.g.Sources[si].ID, st.known, st.ended) {
			if !st.started[sh.ID] {
				start(si, sh)
			}
		}
	}
	for si, s := range j.plan.g.Sources {
		states[si] = &srcState{known: j.initial[s.ID], started: map[string]bool{}, ended: map[string]bool{}}
		for _, sh := range j.initial[s.ID] {
			j.setShard(s.ID, sh.ID, func(st *shardStatus) { st.state = ShardWaiting })
		}
		startReady(si)
	}
	for running > 0 {
		select {
		case ev := <-events:
			running--
			if !ev.ended {
				continue
			}
			st := states[ev.source]
			st.ended[ev.shard] = true
			src := j.plan.g.Sources[ev.source]
			isKnown := func(id string) bool {
				return slices.ContainsFunc(st.known, func(k sources.Shard) bool { return k.ID == id })
			}
			learn := func(sh sources.Shard) {
				if !isKnown(sh.ID) {
					st.known = append(st.known, sh)
					j.setShard(src.ID, sh.ID, func(st *shardStatus) { st.state = ShardWaiting })
				}
			}
			unknownParent := false
			for _, c := range ev.children {
				learn(c)
				for _, p := range c.Parents {
					unknownParent = unknownParent || !isKnown(p)
				}
			}
			if unknownParent {
				// A merge child whose other parent came from a reshard
				// after the job listed the shards, behind a shard still
				// being read: list again, so the child waits for that
				// parent (one no longer listed has expired).
				list, err := src.Source.Shards(ctx)
				if err != nil {
					return fmt.Errorf("list shards of source %s: %w", src.ID, err)
				}
				for _, sh := range list {
					learn(sh)
				}
			}
			if j.srcCtx.Err() == nil {
				startReady(ev.source)
			}
		case <-ctx.Done():
			return nil
		}
	}
	return nil
}

// runShard is the task of one source shard: read a batch, decode, assign
// event times, run the per-record operators, hand the rest to the
// exchanges and sinks, repeat. kids are the known children of the shard.
func (j *Job) runShard(ctx context.Context, si int, sh sources.Shard, kids []string) (shardDone, error) {
	src := &j.plan.g.Sources[si]
	id := src.ID + "/" + sh.ID
	done := shardDone{source: si, shard: sh.ID}
	c, err := j.newChain(-1, src.ID, id)
	if err != nil {
		return done, err
	}
	j.registerOps(c)
	defer c.close()
	var assign EventTimeFunc
	if src.EventTime != nil {
		if assign, err = src.EventTime(); err != nil {
			return done, fmt.Errorf("source %s: create event-time function: %w", src.ID, err)
		}
	}
	r, err := src.Source.Open(ctx, sh, j.opts.Positions[id])
	if err != nil {
		return done, fmt.Errorf("open %s: %w", id, err)
	}
	defer r.Close()
	resume := ""
	if rs, ok := r.(sources.Resumer); ok && j.opts.Positions[id] == "" {
		// Where this shard starts, for checkpoints taken before its
		// first record (a stream opened at LATEST must not skip what
		// arrives until then).
		resume = rs.ResumePosition()
	}
	j.setShard(src.ID, sh.ID, func(st *shardStatus) {
		st.state = ShardReading
		if st.position == "" {
			st.position = resume
		}
	})

	idleTimeout := src.IdleTimeout
	if idleTimeout == 0 {
		idleTimeout = DefaultIdleTimeout
	}
	bound := src.Watermark.Milliseconds()
	stats := j.nodeStats[src.ID]
	buf := make([]sources.Record, j.opts.BatchSize)
	in := make([]operators.Record, 0, j.opts.BatchSize)
	maxET, wm := NoWatermark, NoWatermark
	// announce: the shard was restored with a watermark that the keyed
	// tasks must hear before anything else of this run, even if the shard
	// never reads another record (see announceRestored).
	announce := false
	if r := j.opts.Restore; r != nil {
		if t, ok := r.MaxEventTimes[id]; ok {
			maxET = t
			wm = shardWatermark(maxET, bound)
			c.setWatermark(wm)
			announce = wm != NoWatermark
			j.setShard(src.ID, sh.ID, func(st *shardStatus) { st.maxEventTime, st.watermark = maxET, wm })
		}
	}
	idle := false
	// The idle timer runs from the last record read, across rounds a
	// checkpoint interrupted.
	lastData := time.Now()
	// step is one read-process-send round. It runs under the checkpoint
	// gate's read lock, so a checkpoint finds every shard task between
	// two rounds, with everything it read already sent on. ok=false ends
	// the task with (done, err).
	step := func() (ok bool, err error) {
		if j.srcCtx.Err() != nil {
			j.setShard(src.ID, sh.ID, func(st *shardStatus) { st.state = ShardStopped })
			return false, nil
		}
		if announce {
			announce = false
			if err := announceRestored(ctx, c, id, wm); err != nil {
				return false, err
			}
		}
		rctx, stop := j.ckpt.readContext(j.srcCtx)
		defer stop()
		if idleTimeout > 0 && !idle {
			var cancel context.CancelFunc
			rctx, cancel = context.WithDeadline(rctx, lastData.Add(idleTimeout))
			defer cancel()
		}
		n, rerr := r.Read(rctx, buf)
		if n > 0 {
			lastData = time.Now()
			wasIdle := idle
			idle = false
			in = in[:0]
			prefix := id + "@"
			for _, sr := range buf[:n] {
				in = append(in, operators.Record{Value: sr.Value, EventTime: sr.Arrival, Origin: prefix + sr.Position})
			}
			recs := in
			pos := buf[n-1].Position
			clear(buf[:n])
			if assign != nil {
				if recs, err = assign(ctx, recs); err != nil {
					return false, fmt.Errorf("source %s: %w", src.ID, err)
				}
			}
			for i := range recs {
				maxET = max(maxET, recs[i].EventTime)
			}
			wm = shardWatermark(maxET, bound)
			stats.out.Add(int64(len(recs)))
			c.setWatermark(wm)
			if err := c.push(ctx, recs, wm); err != nil {
				return false, err
			}
			if wasIdle {
				// Back from idle: every keyed task must count this shard
				// again, also those its records did not go to.
				if err := c.broadcast(ctx, message{kind: msgWatermark, from: id, wm: wm}); err != nil {
					return false, err
				}
			}
			j.setShard(src.ID, sh.ID, func(st *shardStatus) {
				st.state, st.position, st.maxEventTime, st.watermark = ShardReading, pos, maxET, wm
				st.records += int64(n)
			})
		}
		switch {
		case rerr == nil:
		case errors.Is(rerr, io.EOF):
			done, err = j.endShard(ctx, c, src.ID, sh, kids, r.Children(), wm)
			return false, err
		case ctx.Err() != nil:
			return false, context.Cause(ctx)
		case j.srcCtx.Err() != nil:
			j.setShard(src.ID, sh.ID, func(st *shardStatus) { st.state = ShardStopped })
			return false, nil
		case j.ckpt.pausedRead(rctx):
			// A checkpoint interrupted the read: nothing was lost, the
			// next round reads on once the checkpoint let go.
		case errors.Is(rerr, context.DeadlineExceeded):
			idle = true
			if err := c.broadcast(ctx, message{kind: msgIdle, from: id}); err != nil {
				return false, err
			}
			j.setShard(src.ID, sh.ID, func(st *shardStatus) { st.state = ShardIdle })
		default:
			return false, fmt.Errorf("read %s: %w", id, rerr)
		}
		return true, nil
	}
	j.ckpt.addChain(c)
	for {
		j.ckpt.gate.RLock()
		ok, err := step()
		if !ok {
			// Leave the checkpoint's view of live chains before letting
			// go of the gate: the chain is closed after this.
			j.ckpt.dropChain(c)
		}
		j.ckpt.gate.RUnlock()
		if !ok {
			return done, err
		}
	}
}

// announceRestored sends a restored shard's watermark to every keyed task
// behind its chain, in its first round (under the checkpoint gate, so in
// order with barriers). The keyed tasks' trackers start a run knowing
// nothing of their inputs; a shard that had read all its input before the
// checkpoint reads nothing after the restore, and its restored watermark
// would never reach them: when every shard then goes idle, the largest
// idle watermark they know is none, and windows the same input fires
// without a crash would never fire.
func announceRestored(ctx context.Context, c *chain, id string, wm int64) error {
	return c.broadcast(ctx, message{kind: msgWatermark, from: id, wm: wm})
}

// endShard hands the watermark over to the shard's children (registering
// them at the shard's last watermark) and then marks the shard ended.
func (j *Job) endShard(ctx context.Context, c *chain, src string, sh sources.Shard, kids []string, children []sources.Shard, wm int64) (shardDone, error) {
	id := src + "/" + sh.ID
	done := shardDone{shard: sh.ID, ended: true, children: children}
	for si, s := range j.plan.g.Sources {
		if s.ID == src {
			done.source = si
		}
	}
	// The shard's own event time is over: timers of operators in the
	// shard task fire, and what they emit goes out before the end marker.
	if err := c.run(ctx, EndOfTime); err != nil {
		return done, err
	}
	opened := map[string]bool{}
	open := func(child string) error {
		if opened[child] {
			return nil
		}
		opened[child] = true
		return c.broadcast(ctx, message{kind: msgOpen, from: src + "/" + child, wm: wm})
	}
	for _, k := range kids {
		if err := open(k); err != nil {
			return done, err
		}
	}
	for _, k := range children {
		if err := open(k.ID); err != nil {
			return done, err
		}
	}
	if err := c.broadcast(ctx, message{kind: msgEnd, from: id}); err != nil {
		return done, err
	}
	j.setShard(src, sh.ID, func(st *shardStatus) { st.state = ShardEnded })
	return done, nil
}

func (j *Job) setShard(src, shard string, f func(*shardStatus)) {
	j.mu.Lock()
	defer j.mu.Unlock()
	key := src + "/" + shard
	st := j.mu.shards[key]
	if st == nil {
		st = &shardStatus{source: src, shard: shard, maxEventTime: NoWatermark, watermark: NoWatermark}
		j.mu.shards[key] = st
	}
	f(st)
}
