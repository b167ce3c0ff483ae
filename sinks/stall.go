package sinks

import (
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Stalled calls. A target that stops answering without closing its
// connections (a paused or overloaded database, broker or object store)
// holds the call a sink made to it. A Watchdog makes that wait said: once
// a call has waited StallAfter it logs a WARN naming the job, the sink,
// its target and the wait, and again each time the wait doubles; it counts
// the call in StalledCalls (the server's metrics) and lists it in Stalled
// (the job's warnings) until the call returns.
//
// The call is waited for, not abandoned: a commit whose answer has not
// come may have happened (the PostgreSQL COMMIT, the Kafka EndTxn, the S3
// copy), and the sink's next call on the same connection or transaction
// could not tell. When the wait ends otherwise — the target closes the
// connection, the client's own timeouts give up, or the job stops and
// cancels the call — the sink fails, and the job's restart settles the
// commit of unknown outcome as after a crash: OpenState commits the
// restored epochs that the target's progress (row, offset or published
// object) does not show, and skips those it does.

// StallAfter is how long a call to a sink's target may wait for an answer
// before the watchdog says so.
const StallAfter = 5 * time.Second

// maxStallRepeat caps the interval between two WARNs of one stalled call.
const maxStallRepeat = 5 * time.Minute

// StallKey names the sink of a stalled call.
type StallKey struct {
	Job, Sink, Kind string
}

// Stall is a call to a sink's target that is waiting for an answer.
type Stall struct {
	Sink, Kind, Target, Call string
	Since                    time.Time
}

// String says what waits, for the job's warnings.
func (s Stall) String() string {
	return fmt.Sprintf("sink %s (%s, %s): %s has waited %v for an answer from its target (a WARN repeats while it waits)",
		s.Sink, s.Kind, s.Target, s.Call, time.Since(s.Since).Round(time.Second))
}

// stalls is the process's registry of stalled calls: a job's sinks and
// the server's metrics meet there, as neither holds the other.
var stalls struct {
	mu    sync.Mutex
	calls map[StallKey]int64
	open  map[*watched]struct{}
}

// StalledCalls returns, per sink, how many of its calls waited StallAfter
// or more for their target since the process started.
func StalledCalls() map[StallKey]int64 {
	stalls.mu.Lock()
	defer stalls.mu.Unlock()
	out := make(map[StallKey]int64, len(stalls.calls))
	for k, n := range stalls.calls {
		out[k] = n
	}
	return out
}

// Stalled lists the calls of job's sinks that have waited StallAfter or
// more and wait still, oldest first.
func Stalled(job string) []Stall {
	stalls.mu.Lock()
	var out []Stall
	for c := range stalls.open {
		if w := c.w; w.job == job {
			out = append(out, Stall{Sink: w.sink, Kind: w.kind, Target: w.target, Call: c.call, Since: c.since})
		}
	}
	stalls.mu.Unlock()
	slices.SortFunc(out, func(a, b Stall) int { return a.Since.Compare(b.Since) })
	return out
}

// Watchdog watches the calls of one sink to its target. A nil Watchdog
// watches nothing.
type Watchdog struct {
	job, sink, kind, target string
	log                     *slog.Logger
	after                   time.Duration
}

// NewWatchdog returns the watchdog of sink (of kind, writing to target,
// e.g. "table public.results") of job; log gets its lines (nil:
// slog.Default()).
func NewWatchdog(job, sink, kind, target string, log *slog.Logger) *Watchdog {
	if log == nil {
		log = slog.Default()
	}
	return &Watchdog{job: job, sink: sink, kind: kind, target: target, log: log, after: StallAfter}
}

// WithAfter returns a copy of w that says a call after d instead of
// StallAfter (tests).
func (w *Watchdog) WithAfter(d time.Duration) *Watchdog {
	c := *w
	c.after = d
	return &c
}

// watched is one call being watched.
type watched struct {
	w     *Watchdog
	call  string
	since time.Time
	// Guarded by stalls.mu.
	timer *time.Timer
	said  bool
	ended bool
}

// Watch starts watching a call (call says which, e.g. "the commit of
// checkpoint epoch 7"); the caller calls the returned function when the
// call returns.
func (w *Watchdog) Watch(call string) (done func()) {
	if w == nil {
		return func() {}
	}
	c := &watched{w: w, call: call, since: time.Now()}
	stalls.mu.Lock()
	c.timer = time.AfterFunc(w.after, c.fire)
	stalls.mu.Unlock()
	return c.end
}

// fire says the call waits, and sets the next time to: when the wait has
// doubled, at most maxStallRepeat later.
func (c *watched) fire() {
	stalls.mu.Lock()
	if c.ended {
		stalls.mu.Unlock()
		return
	}
	waited := time.Since(c.since)
	if !c.said {
		c.said = true
		if stalls.calls == nil {
			stalls.calls, stalls.open = map[StallKey]int64{}, map[*watched]struct{}{}
		}
		stalls.calls[StallKey{c.w.job, c.w.sink, c.w.kind}]++
		stalls.open[c] = struct{}{}
	}
	c.timer.Reset(min(waited, maxStallRepeat))
	stalls.mu.Unlock()
	w := c.w
	w.log.Warn("sink: its target has not answered a call; waiting", "job", w.job, "sink", w.sink, "kind", w.kind,
		"target", w.target, "call", c.call, "waited", waited.Round(100*time.Millisecond))
}

func (c *watched) end() {
	stalls.mu.Lock()
	c.ended = true
	c.timer.Stop()
	said := c.said
	delete(stalls.open, c)
	stalls.mu.Unlock()
	if said {
		w := c.w
		w.log.Info("sink: its target answered a stalled call", "job", w.job, "sink", w.sink, "kind", w.kind,
			"target", w.target, "call", c.call, "waited", time.Since(c.since).Round(100*time.Millisecond))
	}
}
