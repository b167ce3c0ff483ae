package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runnel-dev/runnel/consumergroups"
)

// Run is one worker of group: it syncs with the lease store every
// SyncInterval, reads each shard it holds a lease on and hands its records
// to h, checkpointing after each batch h returns nil for. It returns when
// ctx ends, after a graceful hand-off (batches in hand finish and are
// checkpointed, leases released, the worker leaves the group), or with an
// error when the group's settings are wrong or a shard cannot be read for
// a reason no retry helps (a *ReadError: the credentials were refused;
// the worker hands its leases off gracefully first). Reads that fail
// otherwise (the endpoint down, throttled, the shard not found) are
// retried; the Logger says so at WARN, once per kind of failure and
// shard and then in a summary, and at INFO when reads work again.
//
// Delivery is at least once: a batch handled but not checkpointed (the
// worker died, or lost its lease meanwhile) is handed again to whichever
// worker takes the shard next.
func Run(ctx context.Context, group Group, h Handler) error {
	group.EnsureDefaults()
	if err := group.Validate(); err != nil {
		return err
	}
	w := &worker{g: group, h: h, log: group.Logger.With("worker", group.Worker, "stream", group.Stream),
		shards: map[string]*shardRunner{}, draining: map[string]*shardRunner{}, wake: make(chan struct{}, 1), failed: make(chan struct{}),
		m: newMetrics(group.Registerer)}
	return w.run(ctx)
}

type worker struct {
	g   Group
	h   Handler
	log *slog.Logger
	m   *metrics
	// deadline (unix nanos) is when the leases last synced run out.
	deadline atomic.Int64
	shards   map[string]*shardRunner
	// draining holds readers stopped while their handler call may still
	// run (a handler may ignore its context): a new reader of the shard
	// waits for the old one to end, so that the worker hands a shard's
	// batches one at a time.
	draining map[string]*shardRunner
	wake     chan struct{} // a shard finished: sync at once
	wg       sync.WaitGroup
	// failed closes when a reader met a failure no retry helps (failErr):
	// the worker stops, and Run returns it.
	failed   chan struct{}
	failOnce sync.Once
	failErr  error
}

// fail stops the worker with err, the first such error.
func (w *worker) fail(err error) {
	w.failOnce.Do(func() {
		w.failErr = err
		close(w.failed)
	})
}

func (w *worker) run(ctx context.Context) error {
	interval := w.g.SyncInterval
	var leaseDur time.Duration // by the last Sync; 0 before the first
	for ctx.Err() == nil && !w.stopped() {
		start := time.Now()
		res, err := w.sync(ctx, leaseDur)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			w.m.syncErrors.Inc()
			w.log.Warn("consumer group sync failed; retrying", "err", err)
			if time.Now().UnixNano() > w.deadline.Load() {
				w.stopAll() // our leases have run out: someone else may hold them
			}
		} else {
			leaseDur = res.LeaseDuration
			w.deadline.Store(start.Add(res.LeaseDuration).UnixNano())
			w.apply(ctx, res, start.Add(res.LeaseDuration))
			if w.g.SyncInterval <= 0 {
				interval = res.LeaseDuration / 3
			}
		}
		if interval <= 0 {
			interval = time.Second
		}
		t := time.NewTimer(interval)
		select {
		case <-ctx.Done():
		case <-t.C:
		case <-w.wake:
		case <-w.failed:
		}
		t.Stop()
	}
	err := w.shutdown(interval)
	if w.stopped() {
		return errors.Join(w.failErr, err)
	}
	return err
}

// stopped reports whether a reader failed the worker.
func (w *worker) stopped() bool {
	select {
	case <-w.failed:
		return true
	default:
		return false
	}
}

// sync is one Sync, given up after the lease duration (once one is
// known): its answer would come too late to keep any lease, and a store
// that hangs (a paused server, a dropped connection) must not keep the
// worker from retrying and from saying that it does.
func (w *worker) sync(ctx context.Context, leaseDur time.Duration) (SyncResult, error) {
	if leaseDur <= 0 {
		return w.g.Leases.Sync(ctx, w.g.Worker)
	}
	sctx, cancel := context.WithTimeout(ctx, leaseDur)
	defer cancel()
	res, err := w.g.Leases.Sync(sctx, w.g.Worker)
	if err != nil && ctx.Err() == nil && sctx.Err() != nil {
		err = fmt.Errorf("no answer within the lease duration (%v): %w", leaseDur, err)
	}
	return res, err
}

// apply starts readers for new leases, stops those of leases lost, and
// hands off those the group asked back.
func (w *worker) apply(ctx context.Context, res SyncResult, until time.Time) {
	held := map[string]bool{}
	for _, l := range res.Leases {
		held[l.Shard] = true
		r := w.shards[l.Shard]
		if r != nil && r.lease.Epoch != l.Epoch {
			w.retire(l.Shard, r)
			r = nil
		}
		if r != nil && !r.finished() {
			r.validUntil.Store(until.UnixNano())
			if l.ReleaseRequested {
				r.stop(true) // checkpoint and release after the batch in hand
			}
			continue
		}
		if l.ReleaseRequested {
			w.release(ctx, l)
			continue
		}
		w.start(ctx, l, res.Start, until)
	}
	for id, r := range w.shards {
		if !held[id] {
			if !r.finished() {
				w.log.Info("lease no longer held; stopping the shard", "shard", id, "epoch", r.lease.Epoch)
			}
			w.retire(id, r)
		}
	}
	for id, r := range w.draining {
		if r.finished() {
			delete(w.draining, id)
		}
	}
	w.m.leases.Set(float64(len(res.Leases)))
}

// release gives back a lease the worker holds but has not started reading.
func (w *worker) release(ctx context.Context, l consumergroups.Lease) {
	if err := w.g.Leases.Release(ctx, l.Shard, w.g.Worker, l.Epoch, nil); err != nil {
		w.log.Warn("release lease", "shard", l.Shard, "err", err)
	}
}

// retire stops reader r of shard id at once, keeping it in draining
// until it has ended.
func (w *worker) retire(id string, r *shardRunner) {
	r.stop(false)
	delete(w.shards, id)
	if !r.finished() {
		w.draining[id] = r
	}
}

// start starts a reader of l's shard, which waits for the shard's
// previous reader, if one is still draining, to end first.
func (w *worker) start(ctx context.Context, l consumergroups.Lease, start string, until time.Time) {
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	r := &shardRunner{w: w, lease: l, startAt: start, cancel: cancel, graceful: make(chan struct{}), done: make(chan struct{})}
	r.validUntil.Store(until.UnixNano())
	prev := w.draining[l.Shard]
	delete(w.draining, l.Shard)
	w.shards[l.Shard] = r
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		defer close(r.done)
		defer cancel()
		if prev != nil {
			select {
			case <-prev.done:
			case <-rctx.Done():
				return
			}
		}
		if err := r.run(rctx); err != nil && rctx.Err() == nil {
			if re := (*ReadError)(nil); errors.As(err, &re) {
				w.fail(re)
				return
			}
			w.log.Error("shard reader stopped", "shard", l.Shard, "err", err)
		}
	}()
}

// stopAll stops every reader at once (the worker's leases ran out).
func (w *worker) stopAll() {
	for id, r := range w.shards {
		w.retire(id, r)
	}
}

// shutdown hands every lease off gracefully within ShutdownTimeout, then
// leaves the group. Meanwhile it goes on syncing every interval, so that
// the leases of batches still in hand stay the worker's (a batch that
// outlasted its lease would have its checkpoint refused and be handed
// again elsewhere), as the KCL renews leases during a graceful shutdown.
func (w *worker) shutdown(interval time.Duration) error {
	for _, r := range w.shards {
		r.stop(true)
	}
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	t := time.NewTimer(w.g.ShutdownTimeout)
	defer t.Stop()
	if interval <= 0 { // stopped before its first Sync
		interval = time.Second
	}
	renew := time.NewTicker(interval)
	defer renew.Stop()
wait:
	for {
		select {
		case <-done:
			break wait
		case <-renew.C:
			w.renewWhileLeaving(interval)
		case <-t.C:
			w.log.Error("graceful hand-off timed out; stopping the handlers", "timeout", w.g.ShutdownTimeout)
			for _, r := range w.shards {
				r.stop(false)
			}
			<-done
			break wait
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.g.Leases.Leave(ctx, w.g.Worker); err != nil {
		return fmt.Errorf("consumer: leave group: %w", err)
	}
	return nil
}

// renewWhileLeaving syncs during a graceful hand-off: the leases of
// readers still handing off are renewed; any other lease the sync lists
// (one the group gave the worker meanwhile) is given back at once.
func (w *worker) renewWhileLeaving(interval time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), interval)
	defer cancel()
	start := time.Now()
	res, err := w.g.Leases.Sync(ctx, w.g.Worker)
	if err != nil {
		w.m.syncErrors.Inc()
		w.log.Warn("consumer group sync failed during the hand-off", "err", err)
		return
	}
	until := start.Add(res.LeaseDuration).UnixNano()
	w.deadline.Store(until)
	for _, l := range res.Leases {
		if r := w.shards[l.Shard]; r != nil && r.lease.Epoch == l.Epoch && !r.finished() {
			r.validUntil.Store(until)
			continue
		}
		w.release(ctx, l)
	}
}

// leaseValid reports whether the last successful Sync that listed the
// shard's lease at this epoch says it is still the worker's: a worker that
// paused (or lost the store) past the expiry hands nothing more until a
// Sync lists the lease again, and one that does not stops the shard.
func (r *shardRunner) leaseValid() bool { return time.Now().UnixNano() < r.validUntil.Load() }

// shardRunner reads one leased shard.
type shardRunner struct {
	w       *worker
	lease   consumergroups.Lease
	startAt string
	cancel  context.CancelFunc
	// validUntil (unix nanos) is when the lease runs out by the last Sync
	// that listed it.
	validUntil atomic.Int64
	// graceful closes to ask for a hand-off after the batch in hand.
	graceful chan struct{}
	once     sync.Once
	done     chan struct{}
	// health is what the reader says about its reads (set by run).
	health *readHealth
}

func (r *shardRunner) stop(graceful bool) {
	r.once.Do(func() { close(r.graceful) })
	if !graceful {
		r.cancel()
	}
}

func (r *shardRunner) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (r *shardRunner) handingOff() bool {
	select {
	case <-r.graceful:
		return true
	default:
		return false
	}
}

// isLost reports whether err is the store refusing a stale lease.
func isLost(err error) bool { return errors.Is(err, consumergroups.ErrLeaseLost) }
