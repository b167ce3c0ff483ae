package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/apitime"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/state"
)

// Output keeps the last rows each sink of a server job was given, so that
// the output of any sink (log, stream, file, dashboard, Kafka, PostgreSQL,
// dead letters) can be read from the API, the CLI and the UI without going
// to where the sink writes.
//
// Rows are numbered from 1 in the order the sink received them, across
// restarts of the job within one server process (the ring lives as long as
// the job's entry in the manager; a server restart starts it empty). Only
// the last OutputRows rows are kept: a reader asking for rows after a
// number that has left the ring is told how many it missed. A sink that
// takes part in checkpoints (a stream, dashboard, Kafka or PostgreSQL sink)
// shows its rows once the checkpoint that covers them commits, the moment
// they become visible where the sink writes; other sinks (log, file) show
// them as they are written.
type Output struct {
	mu struct {
		sync.Mutex
		rows []OutputRow // ring: rows[(first-1+i) % cap] for i < n
		n    int
		next uint64 // number the next published row gets
		// pending are rows of a transactional sink not yet covered by a
		// checkpoint; staged those covered by a checkpoint not yet
		// committed. Both are bounded by the ring's size: older ones are
		// only counted (omitted) and skip their numbers when published.
		pending        []OutputRow
		pendingOmitted int
		staged         []stagedRows
		changed        chan struct{} // closed and replaced on every publish
	}
	capacity int
}

type stagedRows struct {
	epoch   uint64
	rows    []OutputRow
	omitted int
}

// OutputRows is how many rows each sink's output ring keeps.
const OutputRows = 1000

// OutputRow is one row of a sink's output.
type OutputRow struct {
	// Seq numbers the row in its sink's output, from 1.
	Seq uint64 `json:"seq"`
	// Time is when the sink received (or, for a transactional sink,
	// committed) the row, UTC.
	Time time.Time `json:"time"`
	Key  string    `json:"key,omitempty"`
	// Value is the row as the sink got it.
	Value any `json:"value"`
}

// OutputPage is a read of a sink's output.
type OutputPage struct {
	Sink string      `json:"sink"`
	Kind string      `json:"kind"`
	Rows []OutputRow `json:"rows"`
	// Next is the number to ask for rows after, to read on.
	Next uint64 `json:"next"`
	// Missed counts rows after the asked number that left the ring
	// before this read (or that a transactional sink produced faster
	// than the ring keeps).
	Missed uint64 `json:"missed,omitempty"`
}

func newOutput(capacity int) *Output {
	o := &Output{capacity: capacity}
	o.mu.rows = make([]OutputRow, capacity)
	o.mu.next = 1
	o.mu.changed = make(chan struct{})
	return o
}

// publish adds rows to the ring, after skipping omitted numbers. Caller
// holds o.mu.
func (o *Output) publishLocked(rows []OutputRow, omitted int, now time.Time) {
	if len(rows) == 0 && omitted == 0 {
		return
	}
	o.mu.next += uint64(omitted)
	if omitted > 0 {
		o.mu.n = 0 // the numbers before the gap are older than the gap
	}
	for _, r := range rows {
		r.Seq, r.Time = o.mu.next, now
		o.mu.next++
		i := int((r.Seq - 1) % uint64(o.capacity))
		o.mu.rows[i] = r
		o.mu.n = min(o.mu.n+1, o.capacity)
	}
	close(o.mu.changed)
	o.mu.changed = make(chan struct{})
}

func (o *Output) write(rows []sinks.Row, transactional bool) {
	now := time.Now().UTC()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(rows) > o.capacity {
		skip := len(rows) - o.capacity
		if transactional {
			o.mu.pendingOmitted += skip
		} else {
			o.mu.next += uint64(skip)
			o.mu.n = 0
		}
		rows = rows[skip:]
	}
	out := make([]OutputRow, len(rows))
	for i, r := range rows {
		out[i] = OutputRow{Key: r.Key, Value: r.Value}
	}
	if !transactional {
		o.publishLocked(out, 0, now)
		return
	}
	o.mu.pending = append(o.mu.pending, out...)
	if extra := len(o.mu.pending) - o.capacity; extra > 0 {
		o.mu.pendingOmitted += extra
		o.mu.pending = append(o.mu.pending[:0], o.mu.pending[extra:]...)
	}
}

func (o *Output) preCommit(epoch uint64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.mu.staged = append(o.mu.staged, stagedRows{epoch: epoch, rows: o.mu.pending, omitted: o.mu.pendingOmitted})
	o.mu.pending, o.mu.pendingOmitted = nil, 0
}

func (o *Output) commit(epoch uint64) {
	now := time.Now().UTC()
	o.mu.Lock()
	defer o.mu.Unlock()
	i := 0
	for ; i < len(o.mu.staged) && o.mu.staged[i].epoch <= epoch; i++ {
		s := o.mu.staged[i]
		o.publishLocked(s.rows, s.omitted, now)
	}
	o.mu.staged = o.mu.staged[i:]
}

// dropUncommitted forgets rows no checkpoint committed: the run ended,
// and a restart recommits or recomputes them.
func (o *Output) dropUncommitted() {
	o.mu.Lock()
	o.mu.pending, o.mu.pendingOmitted, o.mu.staged = nil, 0, nil
	o.mu.Unlock()
}

// Read returns up to limit rows numbered after after (0: from the oldest
// kept). With wait > 0 and nothing to return, it waits up to wait (or
// until ctx ends) for rows.
func (o *Output) Read(ctx context.Context, after uint64, limit int, wait time.Duration) ([]OutputRow, uint64, uint64) {
	if limit <= 0 || limit > o.capacity {
		limit = o.capacity
	}
	var timer <-chan time.Time
	for {
		o.mu.Lock()
		rows, next, missed := o.readLocked(after, limit)
		changed := o.mu.changed
		o.mu.Unlock()
		if len(rows) > 0 || missed > 0 || wait <= 0 {
			return rows, next, missed
		}
		if timer == nil {
			t := time.NewTimer(wait)
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-changed:
		case <-timer:
			return rows, next, missed
		case <-ctx.Done():
			return rows, next, missed
		}
	}
}

func (o *Output) readLocked(after uint64, limit int) ([]OutputRow, uint64, uint64) {
	last := o.mu.next - 1
	oldest := o.mu.next - uint64(o.mu.n) // number of the oldest row kept
	if after > last {
		// Asked past the end: the numbering started again (a new server
		// process), so read from the oldest row kept.
		after = oldest - 1
	}
	var missed uint64
	if after+1 < oldest {
		if after > 0 {
			missed = oldest - 1 - after
		}
		after = oldest - 1
	}
	rows := []OutputRow{}
	for seq := after + 1; seq <= last && len(rows) < limit; seq++ {
		rows = append(rows, o.mu.rows[int((seq-1)%uint64(o.capacity))])
	}
	if len(rows) > 0 {
		after = rows[len(rows)-1].Seq
	}
	return rows, after, missed
}

// outputs holds the output rings of one job's sinks, by sink id.
type outputs struct {
	mu    sync.Mutex
	rings map[string]*Output
}

func (outs *outputs) ring(id string) *Output {
	outs.mu.Lock()
	defer outs.mu.Unlock()
	if outs.rings == nil {
		outs.rings = map[string]*Output{}
	}
	o, ok := outs.rings[id]
	if !ok {
		o = newOutput(OutputRows)
		outs.rings[id] = o
	}
	return o
}

// tap puts a tap in front of every sink of g that copies the rows
// it is given into the sink's output ring, and hands them to hook(sink id)
// when that is not nil.
func (outs *outputs) tap(g *engine.Graph, hook func(sink string) func(context.Context, []sinks.Row)) {
	for i := range g.Sinks {
		s := &g.Sinks[i]
		t := &tap{Sink: s.Sink, out: outs.ring(s.ID), hook: hook(s.ID)}
		if tx, ok := s.Sink.(sinks.Transactional); ok {
			t.transactional = true
			s.Sink = &txnTap{tap: t, tx: tx}
		} else {
			s.Sink = t
		}
	}
}

// tap copies rows into an output ring on their way to a sink.
type tap struct {
	sinks.Sink
	out  *Output
	hook func(context.Context, []sinks.Row)
	// transactional: the sink is transactional (the tap is a txnTap's),
	// so the ring holds written rows until their checkpoint commits.
	transactional bool
}

func (t *tap) Write(ctx context.Context, rows []sinks.Row) error {
	if err := t.Sink.Write(ctx, rows); err != nil {
		return err
	}
	t.out.write(rows, t.transactional)
	if t.hook != nil {
		t.hook(ctx, rows)
	}
	return nil
}

// ErrorRows passes on the count of a sink that diverts rows to an error
// output, so the tap does not hide it from the job's status.
func (t *tap) ErrorRows() int64 {
	if c, ok := t.Sink.(sinks.ErrorRowCounter); ok {
		return c.ErrorRows()
	}
	return 0
}

// txnTap is a tap in front of a transactional sink: rows reach the ring
// when the checkpoint that covers them commits.
type txnTap struct {
	*tap
	tx sinks.Transactional
}

func (t *txnTap) OpenState(ctx context.Context, sp *state.Space) error {
	return t.tx.OpenState(ctx, sp)
}

func (t *txnTap) PreCommit(ctx context.Context, epoch uint64) error {
	if err := t.tx.PreCommit(ctx, epoch); err != nil {
		return err
	}
	t.out.preCommit(epoch)
	return nil
}

func (t *txnTap) Commit(ctx context.Context, epoch uint64) error {
	if err := t.tx.Commit(ctx, epoch); err != nil {
		return err
	}
	t.out.commit(epoch)
	return nil
}

func (t *txnTap) Close() error {
	t.out.dropUncommitted()
	return t.Sink.Close()
}

// ErrNoOutput is the error of a read of a sink a job does not have.
var ErrNoOutput = errors.New("jobs: no such sink")

// Output reads the output ring of one of a job's sinks: sink "" names the
// job's only sink, or its first when it has several. Dead-letter sinks are
// named OPERATOR-dead-letters.
func (m *Manager) Output(ctx context.Context, id, sink string, after uint64, limit int, wait time.Duration) (OutputPage, error) {
	j, err := m.job(id)
	if err != nil {
		return OutputPage{}, err
	}
	names, kinds := []string{}, map[string]string{}
	for _, s := range j.Info(false).Sinks {
		names = append(names, s.ID)
		kinds[s.ID] = s.Kind
	}
	if sink == "" && len(names) > 0 {
		sink = names[0]
	}
	kind, ok := kinds[sink]
	if !ok {
		return OutputPage{}, fmt.Errorf("%w: %q in job %q (its sinks: %s)", ErrNoOutput, sink, id, strings.Join(names, ", "))
	}
	// A wait ends when the job goes: deleted (not found), or replaced by a
	// submit of its name (what was read, so the reader asks again, of the
	// new job).
	gone := j.goneCh()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-gone:
			cancel()
		case <-ctx.Done():
		}
	}()
	rows, next, missed := j.outputs.ring(sink).Read(ctx, after, limit, wait)
	select {
	case <-gone:
		if _, err := m.job(id); err != nil {
			return OutputPage{}, err
		}
	default:
	}
	return OutputPage{Sink: sink, Kind: kind, Rows: rows, Next: next, Missed: missed}, nil
}

// DeadLetterKind is the kind shown for a job's dead-letter sinks.
const DeadLetterKind = "dead_letter"

// MarshalJSON keeps a row's value as it would be written as JSON: a value
// that cannot be (a NaN, say) is shown as its Go text instead of failing
// the whole page. Its time is in apitime.Layout.
func (r OutputRow) MarshalJSON() ([]byte, error) {
	type plain OutputRow
	type row struct {
		plain
		Time apitime.Time `json:"time"`
	}
	b, err := json.Marshal(row{plain(r), apitime.Time(r.Time)})
	if err == nil {
		return b, nil
	}
	r.Value = fmt.Sprint(r.Value)
	return json.Marshal(row{plain(r), apitime.Time(r.Time)})
}
