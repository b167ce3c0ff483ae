package engine

import (
	"time"

	"github.com/runnel-dev/runnel/operators"
)

// watermarkGen is the watermark generator of one source shard. It follows
// the largest event time the shard read, derives the shard's watermark
// from it (that maximum less the source's bound), and decides when the
// shard is idle: when its reads waited for the idle timeout without a
// record. The shard task asks it for the deadline of each read and tells
// it what it read, when a checkpoint cut a read short and when a read ran
// into that deadline; what to send downstream stays with the task.
//
// The idle timer counts only time spent waiting in reads: not the time
// the task spends processing and pushing what it read (a sink that waits
// for its target holds every shard behind it there), nor the time a
// checkpoint holds the sources. A shard held that long has records
// waiting; were it counted idle, the watermark would follow the shards
// ahead of it and its records would arrive late for windows that fired
// without them.
type watermarkGen struct {
	bound       int64         // bounded out-of-orderness, in milliseconds
	idleTimeout time.Duration // <= 0: the shard never goes idle
	maxET, wm   int64
	idle        bool
	// waited is how long reads have waited without a record since the
	// shard last read one, across reads a checkpoint interrupted;
	// readStart is when the current read started.
	waited    time.Duration
	readStart time.Time
}

// newWatermarkGen returns the generator of a shard of src, starting with
// nothing seen and nothing waited.
func newWatermarkGen(src *SourceNode) *watermarkGen {
	idle := src.IdleTimeout
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	return &watermarkGen{
		bound:       src.Watermark.Milliseconds(),
		idleTimeout: idle,
		maxET:       NoWatermark,
		wm:          NoWatermark,
	}
}

// restore starts the generator from a checkpoint's maximum event time and
// returns the watermark that gives.
func (g *watermarkGen) restore(maxET int64) int64 {
	g.maxET = maxET
	g.wm = shardWatermark(maxET, g.bound)
	return g.wm
}

// readDeadline starts a read and returns when it must give up for the
// shard to go idle: once the reads since the last record have waited the
// idle timeout in all. ok is false when no deadline applies (idleness is
// off, or the shard is idle already and waits for data however long it
// takes).
func (g *watermarkGen) readDeadline() (deadline time.Time, ok bool) {
	g.readStart = time.Now()
	if g.idleTimeout <= 0 || g.idle {
		return time.Time{}, false
	}
	return g.readStart.Add(g.idleTimeout - g.waited), true
}

// read notes that a read returned records and restarts the idle timer.
// back says the shard was idle until now.
func (g *watermarkGen) read() (back bool) {
	g.waited = 0
	back, g.idle = g.idle, false
	return back
}

// interrupted notes that a checkpoint cut the current read short before
// it returned a record: the time it waited counts toward idleness.
func (g *watermarkGen) interrupted() { g.waited += time.Since(g.readStart) }

// advance takes the event times of records read and returns the shard's
// watermark after them. It never goes backwards.
func (g *watermarkGen) advance(recs []operators.Record) int64 {
	for i := range recs {
		g.maxET = max(g.maxET, recs[i].EventTime)
	}
	g.wm = shardWatermark(g.maxET, g.bound)
	return g.wm
}

// timedOut notes that a read found nothing before its deadline: the shard
// is idle until it reads again.
func (g *watermarkGen) timedOut() { g.idle = true }

// maxEventTime is the largest event time seen (or restored).
func (g *watermarkGen) maxEventTime() int64 { return g.maxET }

// watermark is the shard's current watermark.
func (g *watermarkGen) watermark() int64 { return g.wm }
