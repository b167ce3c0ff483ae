package jobs

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/internal/apitime"
	"github.com/runnel-dev/runnel/operators/js"
	"github.com/runnel-dev/runnel/sinks"
)

// The error history of a job: the last ErrorHistory errors of its
// records (dead letters of its operators) and the failures that ended its
// runs, in memory for as long as the job's entry lives in the manager (a
// server restart starts it empty but for the failure of a job that is
// still failed). Counts of every error are in the job's
// operator counters; the dead-letter streams keep the letters themselves.

// ErrorHistory is how many errors a job's history keeps.
const ErrorHistory = 1000

// APITime is a time as the API writes it (apitime.Layout:
// "2026-12-06T10:35:48.123Z").
type APITime = apitime.Time

// APITimeFormat is the layout of APITime.
const APITimeFormat = apitime.Layout

// ErrorEntry is one error of a job's history.
type ErrorEntry struct {
	Time     APITime `json:"time"`
	Operator string  `json:"operator"`
	Shard    string  `json:"shard"`
	Origin   *Origin `json:"origin"`
	// Message says what failed, without the JS engine's stack positions.
	Message string `json:"message"`
	// Policy is what the operator's on_error did with the record: "skip"
	// (dropped, counted in skipped), "dead_letter", or "fail" (the run
	// ended).
	Policy string `json:"policy"`
	// Record is the record that failed (JSON, or a string for bytes that
	// are not JSON); null for a failure of the run as a whole.
	Record any `json:"record"`
	// DeadLetter is where the record's dead letter went (null when the
	// operator does not dead-letter). Sequence is empty: the letter is
	// committed with the job's next checkpoint, after the history saw it.
	DeadLetter *DeadLetterRef `json:"dead_letter"`
}

// DeadLetterRef names a dead letter's stream.
type DeadLetterRef struct {
	Stream   string `json:"stream"`
	Sequence string `json:"sequence"`
}

// ErrorPage is a read of a job's error history, newest first.
type ErrorPage struct {
	// Total counts the errors the history was given, including those it
	// no longer keeps.
	Total  int64        `json:"total"`
	Errors []ErrorEntry `json:"errors"`
}

type errorLog struct {
	mu      sync.Mutex
	entries []ErrorEntry // ring
	next    int
	total   int64
}

func (l *errorLog) add(e ErrorEntry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.total++
	if len(l.entries) < ErrorHistory {
		l.entries = append(l.entries, e)
		return
	}
	l.entries[l.next] = e
	l.next = (l.next + 1) % ErrorHistory
}

// read returns up to limit entries, newest first.
func (l *errorLog) read(limit int) ErrorPage {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.entries)
	if limit <= 0 || limit > n {
		limit = n
	}
	out := make([]ErrorEntry, 0, limit)
	for i := 0; i < limit; i++ {
		// The newest is just before next (or the last appended).
		k := (l.next - 1 - i + 2*n) % n
		if n < ErrorHistory {
			k = n - 1 - i
		}
		out = append(out, l.entries[k])
	}
	return ErrorPage{Total: l.total, Errors: out}
}

// deadLetterEntries makes history entries of an operator's dead letters
// (the rows its dead-letter sink is given).
func (j *Job) deadLetterEntries(op, stream string, rows []sinks.Row) {
	now := APITime(time.Now())
	for _, r := range rows {
		m, _ := r.Value.(map[string]any)
		msg, _ := m["error"].(string)
		origin, _ := m["origin"].(string)
		o := parseOrigin(j.Spec.Source.stream(), origin)
		e := ErrorEntry{Time: now, Operator: op, Origin: o, Message: CleanMessage(msg), Policy: "dead_letter",
			Record: jsonValue(m["record"]), DeadLetter: &DeadLetterRef{Stream: stream}}
		if o != nil {
			e.Shard = o.Shard
		}
		j.errors.add(e)
	}
}

// skipEntry records a record an on_error: skip operator dropped.
func (j *Job) skipEntry(s js.Skipped) {
	o := parseOrigin(j.Spec.Source.stream(), s.Origin)
	e := ErrorEntry{Time: APITime(time.Now()), Operator: s.Operator, Origin: o, Message: CleanMessage(s.Err.Error()),
		Policy: "skip", Record: jsonValue(s.Record)}
	if o != nil {
		e.Shard = o.Shard
	}
	j.errors.add(e)
}

// failedOperator and failedRecord find the operator and record a run's
// failure names (js.Error's prefix), if it does.
var (
	failedOperator = regexp.MustCompile(`operator "([^"]+)"|^operator ([^\s:"]+)`)
	failedRecord   = regexp.MustCompile(`record (\S+@\S+):`)
	// failedRead is a record a source could not read: its source's id
	// leads the shard.
	failedRead = regexp.MustCompile(`^read record ([^/\s]+)/`)
	// failedShard is a shard a source could not read (the stream gone,
	// the log damaged): the source's id, then the shard.
	failedShard = regexp.MustCompile(`^read ([^/\s]+)/(\S+): `)
)

// failureEntry records the failure that ended a run. A failure that names
// no operator but a record of the source (its event time, its decoding)
// is the source's.
func (j *Job) failureEntry(reason string) { j.failureEntryAt(reason, time.Now()) }

// failureEntryAt is failureEntry for a failure at t: a job loaded failed
// gets back the entry of the failure that ended its last run, at the time
// it ended, since the history itself is not kept across restarts.
func (j *Job) failureEntryAt(reason string, t time.Time) {
	e := ErrorEntry{Time: APITime(t), Message: CleanMessage(reason), Policy: "fail"}
	if m := failedOperator.FindStringSubmatch(reason); m != nil {
		e.Operator = m[1] + m[2]
	}
	if m := failedRecord.FindStringSubmatch(reason); m != nil {
		e.Origin = parseOrigin(j.Spec.Source.stream(), m[1])
		e.Shard = e.Origin.Shard
		if e.Operator == "" {
			e.Operator, _, _ = strings.Cut(m[1], "/")
		}
	}
	if m := failedRead.FindStringSubmatch(reason); m != nil && e.Operator == "" {
		e.Operator = m[1]
	}
	if m := failedShard.FindStringSubmatch(reason); m != nil && e.Operator == "" {
		e.Operator, e.Shard = m[1], m[2]
	}
	j.errors.add(e)
}

// Errors reads a job's error history, newest first: at most limit
// entries (0: all it keeps).
func (m *Manager) Errors(id string, limit int) (ErrorPage, error) {
	j, err := m.job(id)
	if err != nil {
		return ErrorPage{}, err
	}
	return j.errors.read(limit), nil
}

// errorTap is the hook the output taps call with the rows a dead-letter
// sink is given.
func (j *Job) errorTap(sinkID string) func(context.Context, []sinks.Row) {
	for _, op := range j.Spec.Operators {
		if op.OnError.Policy == OnErrorDeadLetter && op.ID+deadLetterSuffix == sinkID {
			op, stream := op.ID, op.OnError.DeadLetter
			return func(_ context.Context, rows []sinks.Row) { j.deadLetterEntries(op, stream, rows) }
		}
	}
	return nil
}
