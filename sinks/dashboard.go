package sinks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// DashboardConfig configures a dashboard sink.
type DashboardConfig struct {
	Title string
	// MaxRows is how many of the latest rows are kept; default 10,000.
	MaxRows int
	// Columns fix the schema (a window's result columns); nil infers it
	// from the first batch.
	Columns []Column
}

// Validate checks the configuration.
func (c DashboardConfig) Validate() error {
	if c.MaxRows < 0 {
		return configErr("dashboard: max rows %d must not be negative", c.MaxRows)
	}
	return validateColumns(c.Columns)
}

// ErrSlowSubscriber ends a live subscription whose reader fell a full
// buffer behind: the job never waits for a browser. The reader can
// subscribe again and re-read the retained rows.
var ErrSlowSubscriber = errors.New("sinks: dashboard subscriber too slow; resubscribe")

// Dashboard keeps the most recent result rows as Arrow record batches, one
// batch per Write (a window firing), for the live UI and the results API.
// It stays readable after the job closed it.
//
// In a checkpointed job it is Transactional: rows stay visible at once,
// and each checkpoint stores the retained rows in the job's state, so a
// restored job's dashboard holds exactly the rows of its checkpoint (see
// txn_dashboard.go).
//
// Batches handed out (Batches, Subscription.C) are immutable and shared;
// a reader that keeps one must Retain it, and release it when done.
type Dashboard struct {
	cfg DashboardConfig
	mem memory.Allocator

	mu struct {
		sync.Mutex
		cols    []Column
		schema  *arrow.Schema
		batches []arrow.RecordBatch
		rows    int
		subs    map[*Subscription]struct{}
		closed  bool
		// written counts rows ever written and numbers them: a batch's
		// rows are first[i], first[i]+1, ...
		written int64
		first   []uint64 // parallel to batches
		// txn is set by OpenState; nil means the rows are kept in memory
		// only.
		txn *dashboardTxn
	}
}

// NewDashboard validates cfg and returns an empty dashboard.
func NewDashboard(cfg DashboardConfig) (*Dashboard, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.MaxRows == 0 {
		cfg.MaxRows = 10_000
	}
	d := &Dashboard{cfg: cfg, mem: memory.DefaultAllocator}
	d.mu.subs = map[*Subscription]struct{}{}
	if cfg.Columns != nil {
		d.mu.cols = cfg.Columns
		d.mu.schema = arrowSchema(cfg.Columns)
	}
	return d, nil
}

// Title is the configured title.
func (d *Dashboard) Title() string { return d.cfg.Title }

// Write turns rows into one record batch, keeps it, drops the oldest rows
// beyond MaxRows and delivers the batch to live subscribers.
func (d *Dashboard) Write(ctx context.Context, rows []Row) error {
	if len(rows) == 0 {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.schema == nil {
		d.mu.cols = InferColumns(rows)
		d.mu.schema = arrowSchema(d.mu.cols)
	}
	rec := toRecordBatch(d.mem, d.mu.schema, d.mu.cols, rows)
	d.mu.batches = append(d.mu.batches, rec)
	d.mu.first = append(d.mu.first, uint64(d.mu.written))
	d.mu.rows += len(rows)
	d.mu.written += int64(len(rows))
	d.trimLocked()
	for s := range d.mu.subs {
		rec.Retain()
		select {
		case s.c <- rec:
		default:
			rec.Release()
			d.dropLocked(s, ErrSlowSubscriber)
		}
	}
	return nil
}

// trimLocked drops whole old batches, then slices the oldest, so exactly
// the last MaxRows rows stay.
func (d *Dashboard) trimLocked() {
	for d.mu.rows > d.cfg.MaxRows {
		old := d.mu.batches[0]
		extra := d.mu.rows - d.cfg.MaxRows
		n := int(old.NumRows())
		if extra >= n {
			old.Release()
			d.mu.batches = d.mu.batches[1:]
			d.mu.first = d.mu.first[1:]
			d.mu.rows -= n
			continue
		}
		d.mu.batches[0] = old.NewSlice(int64(extra), int64(n))
		d.mu.first[0] += uint64(extra)
		old.Release()
		d.mu.rows -= extra
	}
}

// Close ends live subscriptions; the retained rows stay readable.
func (d *Dashboard) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mu.closed = true
	for s := range d.mu.subs {
		d.dropLocked(s, nil)
	}
	return nil
}

// Schema returns the Arrow schema, or the bare window schema before the
// first rows of an inferred one.
func (d *Dashboard) Schema() *arrow.Schema {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.schemaLocked()
}

func (d *Dashboard) schemaLocked() *arrow.Schema {
	if d.mu.schema == nil {
		return arrowSchema(WindowColumns())
	}
	return d.mu.schema
}

// Batches returns the retained batches, oldest first, each retained once
// for the caller, and the schema; call release when done with them.
func (d *Dashboard) Batches() (schema *arrow.Schema, batches []arrow.RecordBatch, release func()) {
	d.mu.Lock()
	defer d.mu.Unlock()
	batches = append([]arrow.RecordBatch(nil), d.mu.batches...)
	for _, b := range batches {
		b.Retain()
	}
	return d.schemaLocked(), batches, func() {
		for _, b := range batches {
			b.Release()
		}
	}
}

// Rows returns how many rows are retained and how many were written in
// total.
func (d *Dashboard) Rows() (retained int, written int64) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.rows, d.mu.written
}

// WriteIPC writes the retained rows as an Arrow IPC stream
// (application/vnd.apache.arrow.stream): the schema, then one message per
// batch, oldest first.
func (d *Dashboard) WriteIPC(w io.Writer) error {
	schema, batches, release := d.Batches()
	defer release()
	iw := ipc.NewWriter(w, ipc.WithSchema(schema), ipc.WithAllocator(d.mem))
	for _, b := range batches {
		if err := iw.Write(b); err != nil {
			return fmt.Errorf("dashboard: write IPC: %w", err)
		}
	}
	if err := iw.Close(); err != nil {
		return fmt.Errorf("dashboard: write IPC: %w", err)
	}
	return nil
}

// JSONRows returns the retained rows in JSON form, oldest first (see
// RowsOf).
func (d *Dashboard) JSONRows() []map[string]any {
	_, batches, release := d.Batches()
	defer release()
	var out []map[string]any
	for _, b := range batches {
		out = append(out, RowsOf(b)...)
	}
	return out
}

// WriteJSON writes the retained rows as a JSON array of objects, columns in
// schema order.
func (d *Dashboard) WriteJSON(w io.Writer) error {
	schema, batches, release := d.Batches()
	defer release()
	cols := make([]Column, schema.NumFields())
	for i, f := range schema.Fields() {
		cols[i] = Column{Name: f.Name}
	}
	var buf jsonArray
	for _, b := range batches {
		for _, r := range RowsOf(b) {
			if err := buf.add(r, cols); err != nil {
				return err
			}
		}
	}
	_, err := w.Write(buf.bytes())
	return err
}

// Subscribe returns a live subscription receiving each new batch as it is
// written. buffer is how many batches may wait for the reader (minimum 1);
// a reader further behind is dropped with ErrSlowSubscriber.
func (d *Dashboard) Subscribe(buffer int) *Subscription {
	s := &Subscription{d: d, c: make(chan arrow.RecordBatch, max(buffer, 1))}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.closed {
		close(s.c)
		return s
	}
	d.mu.subs[s] = struct{}{}
	return s
}

func (d *Dashboard) dropLocked(s *Subscription, err error) {
	if _, ok := d.mu.subs[s]; !ok {
		return
	}
	delete(d.mu.subs, s)
	s.err = err
	close(s.c)
}

// Subscription delivers new batches of a Dashboard.
type Subscription struct {
	d   *Dashboard
	c   chan arrow.RecordBatch
	err error
}

// C delivers batches; the receiver owns one reference to each and must
// Release it. C is closed when the dashboard closes, the reader was too
// slow (Err) or Close was called.
func (s *Subscription) C() <-chan arrow.RecordBatch { return s.c }

// Err says why C was closed: nil for a closed dashboard or subscription,
// ErrSlowSubscriber for a reader that fell behind. Read it after C closed.
func (s *Subscription) Err() error {
	s.d.mu.Lock()
	defer s.d.mu.Unlock()
	return s.err
}

// Close ends the subscription and releases batches still queued.
func (s *Subscription) Close() {
	s.d.mu.Lock()
	s.d.dropLocked(s, nil)
	s.d.mu.Unlock()
	for b := range s.c {
		b.Release()
	}
}

// jsonArray accumulates rows into a JSON array.
type jsonArray struct {
	buf bytes.Buffer
	n   int
}

func (a *jsonArray) add(row map[string]any, cols []Column) error {
	if a.n == 0 {
		a.buf.WriteByte('[')
	} else {
		a.buf.WriteByte(',')
	}
	a.n++
	return appendJSONRow(&a.buf, row, cols)
}

func (a *jsonArray) bytes() []byte {
	if a.n == 0 {
		return []byte("[]")
	}
	a.buf.WriteByte(']')
	return a.buf.Bytes()
}
