package js

import (
	"context"
	"runtime"
	"runtime/metrics"
	"sync"
	"time"

	"github.com/dop251/goja"
	"github.com/runnel-dev/runnel/internal/cpuclock"
)

// watchdog interrupts a runtime when a call overruns its time budget or
// the heap grows too much. Each VM has one, reused by every call, with one
// timer ticking every min(budget, 10ms) while a call runs. A call is over
// budget when both the wall time since it began and the CPU time the
// process received since the call's first tick reach the budget: on an
// overloaded machine a starved call is not blamed for the time it spent
// waiting for a CPU. The CPU and heap baselines are taken at the first
// tick, so the many calls shorter than a tick cost no system call.
type watchdog struct {
	rt   *goja.Runtime
	opts Options
	mu   struct {
		sync.Mutex
		running bool
		ctx     context.Context
		start   time.Time
		cpu0    time.Duration
		heap0   uint64
		timer   *time.Timer
		// suspect interrupts on heap growth before confirming it
		// (errHeapSuspect), for callers that can resume a call.
		suspect bool
	}
}

// unknownCPU marks a baseline not yet taken.
const unknownCPU = time.Duration(-2)

const watchTick = 10 * time.Millisecond

func newWatchdog(rt *goja.Runtime, opts Options) *watchdog {
	w := &watchdog{rt: rt, opts: opts}
	w.mu.Lock()
	w.mu.timer = time.AfterFunc(time.Hour, w.check)
	w.mu.timer.Stop()
	w.mu.Unlock()
	return w
}

// heapBytes returns the bytes in heap objects, live or not yet swept.
func heapBytes() uint64 { return runtimeCount("/memory/classes/heap/objects:bytes") }

// allocBytes returns the bytes allocated on the heap since the process
// started.
func allocBytes() uint64 { return runtimeCount("/gc/heap/allocs:bytes") }

// runtimeCount reads the runtime/metrics value name, 0 unless it is a
// uint64.
func runtimeCount(name string) uint64 {
	sample := [1]metrics.Sample{{Name: name}}
	metrics.Read(sample[:])
	if sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return sample[0].Value.Uint64()
}

// begin starts watching a call; with measure, its heap baseline is taken
// now rather than at the first tick.
func (w *watchdog) begin(ctx context.Context, measure, suspect bool) {
	w.rt.ClearInterrupt()
	var heap0 uint64
	if measure {
		heap0 = heapBytes()
	}
	w.mu.Lock()
	w.mu.running, w.mu.ctx, w.mu.start = true, ctx, time.Now()
	w.mu.cpu0, w.mu.heap0, w.mu.suspect = unknownCPU, heap0, suspect
	w.mu.timer.Reset(min(w.opts.Budget, watchTick))
	w.mu.Unlock()
}

func (w *watchdog) end() (heap0 uint64) {
	w.mu.Lock()
	w.mu.running = false
	w.mu.ctx = nil
	w.mu.timer.Stop()
	heap0 = w.mu.heap0
	w.mu.Unlock()
	w.rt.ClearInterrupt()
	return heap0
}

func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.mu.running {
		return
	}
	if w.mu.cpu0 == unknownCPU {
		w.mu.cpu0 = cpuclock.Process()
		if w.mu.heap0 == 0 {
			w.mu.heap0 = heapBytes()
		}
	}
	var cause error
	if err := w.mu.ctx.Err(); err != nil {
		cause = err
	} else if time.Since(w.mu.start) >= w.opts.Budget && w.cpuSpent() {
		cause = ErrTimeout
	} else if w.heapGrown() && w.mu.suspect {
		// Stop the call at once (it may go on doubling a value while a
		// GC runs); the caller confirms with a GC and resumes if the
		// growth was garbage.
		cause = errHeapSuspect
	} else if w.heapGrown() {
		// Confirm with a GC that the growth is live, not garbage.
		w.mu.Unlock()
		runtime.GC()
		w.mu.Lock()
		if !w.mu.running {
			return
		}
		if w.heapGrown() {
			cause = ErrMemory
		}
	}
	if cause != nil {
		w.rt.Interrupt(cause)
		return
	}
	next := min(w.opts.Budget-time.Since(w.mu.start), watchTick)
	if next <= 0 {
		next = watchTick // waiting for CPU time
	}
	w.mu.timer.Reset(max(next, time.Millisecond))
}

func (w *watchdog) heapGrown() bool {
	h := heapBytes()
	return h > w.mu.heap0 && h-w.mu.heap0 > w.opts.MaxHeapGrowth
}

// cpuSpent reports whether the process got a budget's worth of CPU time
// since the call's first tick; where CPU time is unknown, the budget is
// wall time alone.
func (w *watchdog) cpuSpent() bool {
	now := cpuclock.Process()
	return now < 0 || w.mu.cpu0 < 0 || now-w.mu.cpu0 >= w.opts.Budget
}
