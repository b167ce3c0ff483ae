package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/internal/backoff"
	"github.com/runnel-dev/runnel/internal/kinesisconn"
)

// ReadError is a failure to read a shard that no retry can help: the
// credentials were refused. A shard reader that meets one stops the
// worker, and Run returns it (after handing its other leases off).
type ReadError struct {
	Shard string
	// Op is the Kinesis call that failed (GetRecords, GetShardIterator).
	Op  string
	Err error
}

func (e *ReadError) Error() string {
	return fmt.Sprintf("consumer: %s of shard %s: access denied (check the worker's credentials or token): %v", e.Op, e.Shard, e.Err)
}

func (e *ReadError) Unwrap() error { return e.Err }

// Kinds of read failure, as a shard reader logs them.
const (
	readUnreachable = "unreachable"  // no answer: the server is down or the network broken
	readThrottled   = "throttled"    // the shard's read limits
	readServer      = "server error" // the service failed the call
	readNotFound    = "not found"    // the stream or the shard is gone
	readDenied      = "access denied"
	readRefused     = "refused" // any other error of the request itself
)

// readKind says which kind of failure err is.
func readKind(err error) string {
	code := kinesisconn.Code(err)
	switch {
	case kinesisconn.Throttled(err):
		return readThrottled
	case code == "ResourceNotFoundException":
		return readNotFound
	case kinesisconn.Denied(err):
		return readDenied
	case code == "" && kinesisconn.Retryable(err):
		return readUnreachable
	case code != "" && kinesisconn.Retryable(err):
		return readServer
	}
	return readRefused
}

// readHints say what a kind of failure means, in its first warning.
var readHints = map[string]string{
	readUnreachable: "the Kinesis endpoint does not answer (server down or network broken)",
	readThrottled:   "reads are throttled (the shard's read limits, or too many readers)",
	readServer:      "the Kinesis endpoint failed the call",
	readNotFound:    "the stream or shard is not found (deleted?)",
	readRefused:     "the Kinesis endpoint refused the call",
}

// readSummaryEvery bounds a shard reader's warnings: at most one per kind
// of failure in this time, and while reads go on failing, a summary this
// often.
var readSummaryEvery = time.Minute

// readHealth is what a shard reader says about its reads: in a run of
// failures, a WARN the first time a kind of failure happens in it (unless
// that kind was warned of less than readSummaryEvery ago, so that reads
// that fail now and then do not warn each time), a WARN summary every
// readSummaryEvery while failures go on, and an INFO once reads work
// again. Retries themselves are not logged.
type readHealth struct {
	log      *slog.Logger
	shard    string
	b        backoff.Backoff
	warnedAt map[string]time.Time
	// The current run of failures: since is zero while reads work.
	since       time.Time
	counts      map[string]int
	said        bool
	lastSummary time.Time
	clock       func() time.Time // nil: time.Now
}

func (h *readHealth) now() time.Time {
	if h.clock != nil {
		return h.clock()
	}
	return time.Now()
}

// failed records a failed op: it returns a *ReadError when the worker
// must stop, ctx's error when ctx ended during the pause, and nil after
// the pause before the next try.
func (h *readHealth) failed(ctx context.Context, op string, err error) error {
	kind := readKind(err)
	if kind == readDenied {
		re := &ReadError{Shard: h.shard, Op: op, Err: err}
		h.log.Error("cannot read the shard: access denied; stopping the worker", "shard", h.shard, "op", op, "err", err)
		return re
	}
	now := h.now()
	if h.since.IsZero() {
		h.since, h.lastSummary, h.counts, h.said = now, now, map[string]int{}, false
	}
	if h.warnedAt == nil {
		h.warnedAt = map[string]time.Time{}
	}
	h.counts[kind]++
	switch at, ok := h.warnedAt[kind]; {
	case h.counts[kind] == 1 && (!ok || now.Sub(at) >= readSummaryEvery):
		h.warnedAt[kind], h.lastSummary, h.said = now, now, true
		h.log.Warn("cannot read the shard: "+readHints[kind]+"; retrying", "shard", h.shard, "op", op, "kind", kind, "err", err)
	case now.Sub(h.lastSummary) >= readSummaryEvery:
		h.lastSummary, h.said = now, true
		h.log.Warn("still cannot read the shard; retrying", "shard", h.shard, "failing_for", now.Sub(h.since).Round(time.Millisecond),
			"failures", h.summary(), "last_err", err)
	}
	return backoff.Sleep(ctx, h.b.Next())
}

// ok records a call that worked: a run of failures that was reported
// ends with an INFO.
func (h *readHealth) ok() {
	h.b.Reset()
	if h.since.IsZero() {
		return
	}
	if h.said {
		h.log.Info("reads of the shard work again", "shard", h.shard, "failed_for", h.now().Sub(h.since).Round(time.Millisecond), "failures", h.summary())
	}
	h.since = time.Time{}
}

// summary lists the failures of the current run by kind: "throttled=3
// unreachable=1".
func (h *readHealth) summary() string {
	kinds := make([]string, 0, len(h.counts))
	for k := range h.counts {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var b strings.Builder
	for i, k := range kinds {
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s=%d", strings.ReplaceAll(k, " ", "_"), h.counts[k])
	}
	return b.String()
}
