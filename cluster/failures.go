package cluster

import (
	"slices"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/internal/apitime"
)

// Kinds of the failures a worker survives but must not keep silent: the
// job goes on (the changelog topics hold the whole state, the Kafka
// commit holds the output), but something the operator relies on did
// not happen. Each is logged as an ERROR, counted in
// runnel_worker_failures_total{kind} and kept in the worker's list of
// failures, which the whole-job view shows (Status, WorkerStatus.Failures).
const (
	// FailSnapshotUpload: a task's snapshot was not written to the
	// snapshot store; a restore elsewhere reads more of its changelog.
	FailSnapshotUpload = "snapshot_upload"
	// FailSnapshotRestore: a task's snapshot could not be read or does not
	// decode; the task restored from its whole changelog instead.
	FailSnapshotRestore = "snapshot_restore"
	// FailChangelogLost: a task's changelog topic (the same topic, by
	// its ID) no longer holds records its local state or snapshot
	// copied; the task restored from what the changelog holds, without
	// the lost records' changes.
	FailChangelogLost = "changelog_lost"
	// FailLocalState: the worker's local state (Pebble, --data) could not
	// be opened, read or written; the worker stops using it and its tasks
	// restore from their changelogs.
	FailLocalState = "local_state"
	// FailKinesisCheckpoint: a Kinesis checkpoint was not stored in the
	// lease table after its Kafka commit; the shard's position record in
	// Kafka is ahead of the table until the next commit stores one.
	FailKinesisCheckpoint = "kinesis_checkpoint"
	// FailOutboxDelivery: rows of a PostgreSQL or S3 sink's outbox could
	// not be read or delivered to the target; they are delivered again
	// from the target's recorded position.
	FailOutboxDelivery = "outbox_delivery"
	// FailOutboxLost: the outbox topic's retention deleted rows that were
	// never delivered to the target; they are lost.
	FailOutboxLost = "outbox_lost"
)

// failureKinds lists every kind, so the counters exist (at 0) from the
// start and an alert on their increase sees the first one.
var failureKinds = []string{FailSnapshotUpload, FailSnapshotRestore, FailChangelogLost, FailLocalState, FailKinesisCheckpoint, FailOutboxDelivery, FailOutboxLost}

// maxFailures bounds the failures a worker keeps and reports.
const maxFailures = 16

// Failure is one failure a worker survived.
type Failure struct {
	Kind string       `json:"kind"`
	At   apitime.Time `json:"at"`
	// Task is the task it concerns ("" when it concerns the worker).
	Task string `json:"task,omitempty"`
	// Text says what failed, why, and what the worker did about it.
	Text string `json:"text"`
}

// failures is a worker's latest failures, newest last; changed is
// signalled when one is added, so the status goroutine writes the
// worker's report.
type failures struct {
	mu      sync.Mutex
	list    []Failure
	changed chan struct{}
}

func (f *failures) add(fl Failure) {
	f.mu.Lock()
	f.list = append(f.list, fl)
	if len(f.list) > maxFailures {
		f.list = slices.Delete(f.list, 0, len(f.list)-maxFailures)
	}
	f.mu.Unlock()
	select {
	case f.changed <- struct{}{}:
	default: // a report is due already
	}
}

// seed puts a previous life's failures (from its report) before the
// ones this life saw.
func (f *failures) seed(old []Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.list = append(slices.Clone(old), f.list...)
	if len(f.list) > maxFailures {
		f.list = slices.Delete(f.list, 0, len(f.list)-maxFailures)
	}
}

func (f *failures) snapshot() []Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.list)
}

// fail records a failure the worker survives: an ERROR log, the
// failures counter, and the worker's list that the whole-job view shows.
// what says what failed and what the worker does instead. It may be
// called from any goroutine.
func (w *Worker) fail(kind, task, what string, err error) {
	text := what
	if err != nil {
		text += ": " + err.Error()
	}
	w.cfg.Log.Error(what, "kind", kind, "job", w.cfg.Spec.Name, "worker", w.cfg.ID, "task", task, "err", err)
	w.cfg.Metrics.failed(w.cfg.Spec.Name, kind)
	w.failures.add(Failure{Kind: kind, At: apitime.Time(time.Now().UTC()), Task: task, Text: text})
}

// Failures returns the worker's latest failures, oldest first.
func (w *Worker) Failures() []Failure { return w.failures.snapshot() }
