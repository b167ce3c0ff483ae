package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// loop runs one transaction per commit interval until ctx ends: poll and
// process, write the tasks' changelogs, commit (input offsets included).
// An aborted transaction (a rebalance took partitions, or processing
// failed) drops every task: their state is that of the aborted work, and
// they restore from their changelogs when their partitions' records, now
// read again from the committed offsets, come.
func (w *Worker) loop(ctx context.Context) error {
	work := context.WithoutCancel(ctx) // a shutdown finishes the batch at hand
	for {
		if err := w.sess.Begin(); err != nil {
			return fmt.Errorf("cluster: begin transaction: %w", err)
		}
		w.idled = w.idled[:0]
		err := w.poll(ctx, work)
		if err == nil && w.kin != nil {
			err = w.kin.take(work)
		}
		if err == nil {
			err = w.idle(work)
		}
		for _, t := range w.tasks {
			if err == nil {
				err = w.flushChangelog(work, t)
			}
		}
		w.sealOutboxes(work)
		try := kgo.TryCommit
		var recreated []string
		if err == nil {
			recreated = w.changelogRecreated(work)
		}
		if err != nil || len(recreated) > 0 {
			try = kgo.TryAbort
		}
		// End waits out a rebalance (at most the rebalance timeout). One
		// that outlives the transaction timeout, which the broker has
		// aborted by then, leaves the client in an unknown state: the
		// worker stops with an error rather than hold its partitions.
		endCtx, cancel := context.WithTimeout(w.fenceIdle(work), w.cfg.TransactionTimeout)
		began := time.Now()
		committed, endErr := w.end(endCtx, try)
		cancel()
		if endErr == nil {
			w.cfg.Metrics.ended(w.cfg.Spec.Name, committed, time.Since(began))
		}
		w.noteGeneration()
		if len(recreated) > 0 && endErr == nil {
			// Records the transaction wrote by the old changelog's ID
			// (Kafka 4.1 and later) failed with it; aborted, they are
			// moot. The producer keeps the ID it first saw of a topic
			// (it fails records of a topic created again rather than
			// follow the name): purged, the topic is looked up again
			// when a task next writes to it.
			w.clearProduceErr()
			w.sess.Client().PurgeTopicsFromProducing(recreated...)
		}
		if err == nil {
			err = w.producedErr()
		}
		switch {
		case endErr != nil:
			return fmt.Errorf("cluster: end transaction: %w", endErr)
		case err != nil:
			return err
		case !committed:
			why := "the group rebalanced"
			switch {
			case len(recreated) > 0:
				why = "a changelog topic was created again"
			case w.kin != nil && w.kin.refused:
				why = "the lease table did not confirm its shard leases"
			}
			w.cfg.Log.Info("transaction aborted ("+why+"): tasks restore from their changelogs", "worker", w.cfg.ID)
			w.dropTasks()
		default:
			if w.local != nil {
				w.saveLocal()
				if w.snap != nil && w.local != nil {
					w.snapshotAfterCommit()
				}
			}
			w.dropRevoked()
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// maxPollRecords bounds the records taken per poll, so a transaction
// lasts about a commit interval even when a backlog waits: the broker
// aborts one that outlives the transaction timeout.
const maxPollRecords = 5000

// poll processes fetched records until the commit interval ends.
func (w *Worker) poll(ctx, work context.Context) error {
	deadline := time.Now().Add(w.cfg.CommitInterval)
	for {
		pctx, cancel := context.WithDeadline(ctx, deadline)
		began := time.Now()
		fetches := w.sess.PollRecords(pctx, maxPollRecords)
		w.readClock.add(time.Since(began))
		cancel()
		if fetches.IsClientClosed() {
			return errors.New("cluster: the Kafka client closed")
		}
		for _, fe := range fetches.Errors() {
			if errors.Is(fe.Err, context.DeadlineExceeded) || errors.Is(fe.Err, context.Canceled) {
				continue
			}
			w.cfg.Log.Error("fetch failed", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
		}
		var err error
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			if err != nil || len(p.Records) == 0 {
				return
			}
			id := tp{p.Topic, p.Partition}
			t := w.tasks[id]
			if t == nil {
				if t, err = w.newTask(work, id); err != nil {
					return
				}
				w.tasks[id] = t
			}
			err = w.process(work, t, p.Records)
		})
		if err != nil {
			return err
		}
		if ctx.Err() != nil || !time.Now().Before(deadline) {
			return nil
		}
	}
}

// idle writes an idle record for each source partition of this worker
// whose reads waited the idle timeout without a record (by the read
// clock), once until it has one.
func (w *Worker) idle(ctx context.Context) error {
	if w.kin != nil {
		return w.kin.idle(ctx)
	}
	if w.cfg.IdleTimeout < 0 || len(w.feeds[0]) == 0 {
		return nil
	}
	w.mu.Lock()
	assigned := make(map[tp]time.Duration, len(w.mu.assigned))
	for id, at := range w.mu.assigned {
		if w.isSource(id.topic) {
			assigned[id] = at
		}
	}
	w.mu.Unlock()
	gen := w.generation()
	if gen < 0 {
		return nil // not in the group yet
	}
	now := w.readClock.now()
	for id, at := range assigned {
		t := w.tasks[id]
		if t == nil {
			if now-at < w.cfg.IdleTimeout {
				continue
			}
			var err error
			if t, err = w.newTask(ctx, id); err != nil {
				return err
			}
			w.tasks[id] = t
		} else {
			at = max(at, t.lastRead)
		}
		w.keepIdle(ctx, t, gen, now-at)
	}
	return nil
}

// readClock is the time the worker's loop spent waiting in its polls: the
// idle clock of Kafka source partitions. A partition is idle when the
// clock moved the idle timeout since its last record (or its assignment):
// when its reads waited that long with nothing to read. Time the loop
// spends elsewhere (processing what it read, writing it, committing,
// restoring tasks) does not count: a partition whose records wait behind
// a slow commit or sink is not idle, and were it counted so, the next
// stage's watermark would follow the partitions ahead of it and its
// records would arrive late for windows that fired without them.
type readClock struct{ ns atomic.Int64 }

// add moves the clock by d, the time a poll waited.
func (c *readClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// now is the clock's reading.
func (c *readClock) now() time.Duration { return time.Duration(c.ns.Load()) }

// produce adds a record to the open transaction; a failure fails it.
// ok, if not nil, is called (under produceMu) once the record is written.
func (w *Worker) produce(ctx context.Context, r *kgo.Record, ok func(*kgo.Record)) {
	w.sess.Produce(ctx, r, func(r *kgo.Record, err error) {
		if err == nil && ok == nil {
			return
		}
		w.produceMu.Lock()
		defer w.produceMu.Unlock()
		if err == nil {
			ok(r)
			return
		}
		if w.produceErr == nil {
			w.produceErr = fmt.Errorf("cluster: produce to %s/%d: %w", r.Topic, r.Partition, err)
		}
	})
}

func (w *Worker) clearProduceErr() {
	w.produceMu.Lock()
	defer w.produceMu.Unlock()
	w.produceErr = nil
}

func (w *Worker) producedErr() error {
	w.produceMu.Lock()
	defer w.produceMu.Unlock()
	return w.produceErr
}

// dropTasks closes every task.
func (w *Worker) dropTasks() {
	for id, t := range w.tasks {
		t.close()
		w.cfg.Metrics.dropTask(w.cfg.Spec.Name, t)
		delete(w.tasks, id)
	}
	// A partition it keeps is read again from its committed offset: it
	// may be announced idle only after its reads waited a whole idle
	// timeout without records from now.
	w.mu.Lock()
	now := w.readClock.now()
	for id := range w.mu.assigned {
		w.mu.assigned[id] = now
	}
	w.mu.Unlock()
}

// dropRevoked closes the tasks of partitions the worker no longer has.
func (w *Worker) dropRevoked() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.mu.revoked {
		return
	}
	w.mu.revoked = false
	for id, t := range w.tasks {
		if _, ok := w.mu.assigned[id]; !ok {
			t.close()
			w.cfg.Metrics.dropTask(w.cfg.Spec.Name, t)
			delete(w.tasks, id)
		}
	}
}
