package engine

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sources"
)

// shardTask is the task of one source shard: read a batch, assign event
// times, run the per-record operators of the shard's chain, hand the rest
// to the exchanges and sinks, repeat. Each round runs under the checkpoint
// gate's read lock, so a checkpoint finds every shard task between two
// rounds, with everything it read already sent on. The shard's event
// time, watermark and idleness are its watermark generator's.
type shardTask struct {
	j      *Job
	src    *SourceNode
	si     int
	sh     sources.Shard
	id     string   // source/shard
	kids   []string // the known children of the shard
	c      *chain
	r      sources.Reader
	assign EventTimeFunc // nil: arrival time
	gen    *watermarkGen
	stats  *nodeStats
	buf    []sources.Record
	in     []operators.Record
	// announce: the shard was restored with a watermark that the keyed
	// tasks must hear before anything else of this run, even if the shard
	// never reads another record (see announceRestored).
	announce bool
}

// runShard runs the task of shard sh of source si until the shard ends,
// the sources stop or the job fails. kids are the known children of the
// shard.
func (j *Job) runShard(ctx context.Context, si int, sh sources.Shard, kids []string) (shardDone, error) {
	t, err := j.openShardTask(ctx, si, sh, kids)
	if err != nil {
		return shardDone{source: si, shard: sh.ID}, err
	}
	defer t.close()
	return t.run(ctx)
}

// openShardTask makes the shard's chain and event-time function, opens
// its reader at the restored position and restores its watermark.
func (j *Job) openShardTask(ctx context.Context, si int, sh sources.Shard, kids []string) (_ *shardTask, err error) {
	src := &j.plan.g.Sources[si]
	t := &shardTask{j: j, src: src, si: si, sh: sh, id: src.ID + "/" + sh.ID, kids: kids,
		gen: newWatermarkGen(src), stats: j.nodeStats[src.ID]}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	if t.c, err = j.newChain(-1, src.ID, t.id); err != nil {
		return nil, err
	}
	j.registerOps(t.c)
	if src.EventTime != nil {
		if t.assign, err = src.EventTime(); err != nil {
			return nil, fmt.Errorf("source %s: create event-time function: %w", src.ID, err)
		}
	}
	if t.r, err = src.Source.Open(ctx, sh, j.opts.Positions[t.id]); err != nil {
		if ctx.Err() == nil {
			t.stats.errors.Add(1) // it fails the task, as a read's error does
		}
		return nil, fmt.Errorf("open %s: %w", t.id, err)
	}
	resume := ""
	if rs, ok := t.r.(sources.Resumer); ok && j.opts.Positions[t.id] == "" {
		// Where this shard starts, for checkpoints taken before its
		// first record (a stream opened at LATEST must not skip what
		// arrives until then).
		resume = rs.ResumePosition()
	}
	t.status(func(st *shardStatus) {
		st.state = ShardReading
		if st.position == "" {
			st.position = resume
		}
	})
	t.buf = make([]sources.Record, j.opts.BatchSize)
	t.in = make([]operators.Record, 0, j.opts.BatchSize)
	if r := j.opts.Restore; r != nil {
		if maxET, ok := r.MaxEventTimes[t.id]; ok {
			wm := t.gen.restore(maxET)
			t.c.setWatermark(wm)
			t.announce = wm != NoWatermark
			t.status(func(st *shardStatus) { st.maxEventTime, st.watermark = maxET, wm })
		}
	}
	return t, nil
}

// close closes the reader and the chain.
func (t *shardTask) close() {
	if t.r != nil {
		t.r.Close()
	}
	if t.c != nil {
		t.c.close()
	}
}

// status updates the shard's status.
func (t *shardTask) status(f func(*shardStatus)) { t.j.setShard(t.src.ID, t.sh.ID, f) }

// run runs rounds until one ends the task.
func (t *shardTask) run(ctx context.Context) (shardDone, error) {
	k := &t.j.ckpt
	k.addChain(t.c)
	for {
		k.gate.RLock()
		done, end, err := t.round(ctx)
		if end {
			// Leave the checkpoint's view of live chains before letting
			// go of the gate: the chain is closed after this.
			k.dropChain(t.c)
		}
		k.gate.RUnlock()
		if end {
			return done, err
		}
	}
}

// round is one read-process-send round; end=true ends the task with
// (done, err).
func (t *shardTask) round(ctx context.Context) (done shardDone, end bool, err error) {
	done = shardDone{source: t.si, shard: t.sh.ID}
	j := t.j
	if j.srcCtx.Err() != nil {
		t.status(func(st *shardStatus) { st.state = ShardStopped })
		return done, true, nil
	}
	if t.announce {
		t.announce = false
		if err := announceRestored(ctx, t.c, t.id, t.gen.watermark()); err != nil {
			return done, true, err
		}
	}
	rctx, stop := j.ckpt.readContext(j.srcCtx)
	defer stop()
	if deadline, ok := t.gen.readDeadline(); ok {
		var cancel context.CancelFunc
		rctx, cancel = context.WithDeadline(rctx, deadline)
		defer cancel()
	}
	n, rerr := t.r.Read(rctx, t.buf)
	if n > 0 {
		if err := t.process(ctx, n); err != nil {
			return done, true, err
		}
	}
	switch {
	case rerr == nil:
	case errors.Is(rerr, io.EOF):
		done, err = j.endShard(ctx, t.c, t.src.ID, t.sh, t.kids, t.r.Children(), t.gen.watermark())
		return done, true, err
	case ctx.Err() != nil:
		return done, true, context.Cause(ctx)
	case j.srcCtx.Err() != nil:
		t.status(func(st *shardStatus) { st.state = ShardStopped })
		return done, true, nil
	case j.ckpt.pausedRead(rctx):
		// A checkpoint interrupted the read: nothing was lost, the next
		// round reads on once the checkpoint let go.
		if n == 0 {
			t.gen.interrupted()
		}
	case errors.Is(rerr, context.DeadlineExceeded):
		t.gen.timedOut()
		if err := t.c.broadcast(ctx, message{kind: msgIdle, from: t.id}); err != nil {
			return done, true, err
		}
		t.status(func(st *shardStatus) { st.state = ShardIdle })
	default:
		t.stats.errors.Add(1) // an error that fails the source's task
		if re, ok := errors.AsType[*sources.RecordError](rerr); ok && re.Shard == t.sh.ID {
			// It names the shard and position: name the source once
			// beside them, as a record's origin does.
			return done, true, &sources.RecordError{Shard: t.id, Position: re.Position, Err: re.Err}
		}
		return done, true, fmt.Errorf("read %s: %w", t.id, rerr)
	}
	return done, false, nil
}

// process handles the n records the last read put in buf: event times,
// the watermark, the chain, and the shard's status.
func (t *shardTask) process(ctx context.Context, n int) error {
	back := t.gen.read()
	t.in = t.in[:0]
	prefix := t.id + "@"
	for _, sr := range t.buf[:n] {
		t.in = append(t.in, operators.Record{Value: sr.Value, EventTime: sr.Arrival, Origin: prefix + sr.Position})
	}
	recs := t.in
	pos := t.buf[n-1].Position
	clear(t.buf[:n])
	if t.assign != nil {
		var err error
		if recs, err = t.assign(ctx, recs); err != nil {
			// Its errors name the record, whose origin starts with the
			// source's id.
			return err
		}
	}
	wm := t.gen.advance(recs)
	t.stats.out.Add(int64(len(recs)))
	t.c.setWatermark(wm)
	if err := t.c.push(ctx, recs, wm); err != nil {
		return err
	}
	if back {
		// Back from idle: every keyed task must count this shard again,
		// also those its records did not go to.
		if err := t.c.broadcast(ctx, message{kind: msgWatermark, from: t.id, wm: wm}); err != nil {
			return err
		}
	}
	maxET := t.gen.maxEventTime()
	t.status(func(st *shardStatus) {
		st.state, st.position, st.maxEventTime, st.watermark = ShardReading, pos, maxET, wm
		st.records += int64(n)
	})
	return nil
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
