package sinks

// Checkpointed dashboard rows.
//
// Guarantee: after a job restores from a checkpoint, OpenState leaves the
// dashboard holding exactly the rows it retained at that checkpoint's
// barrier (the last MaxRows of them, in order), and Rows reports the
// written count of that moment; the job's replay then adds each later row
// once. Rows stay visible as soon as they are written — a crash takes back
// from the live view the rows after the last checkpoint, and the replay
// shows them again.
//
// PreCommit stores the rows written since the previous PreCommit that are
// still retained and deletes the stored batches trimmed away since; rows
// written after the barrier but before the snapshot are therefore not in
// the checkpoint, whatever the runtime's timing. Commit has nothing to do.
//
// Stored columns must equal the configured ones, with one exception: a
// column now a Struct may have been stored as a JSON (or string) column of
// its JSON text, as the detect operator's explanation was. OpenState then
// converts the stored rows to the struct and rewrites the space in the new
// schema, so a checkpoint taken before the change restores.
//
// Layout of the space:
//
//	'h'          version, number of the oldest retained row, written count, columns (JSON)
//	'b' first    one batch as an Arrow IPC stream; first (8 bytes, big-endian) numbers its first row

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"

	"github.com/runnel-dev/runnel/state"
)

var _ Transactional = (*Dashboard)(nil)

// ErrRestored ends live subscriptions of a dashboard whose rows OpenState
// replaced with a checkpoint's: the reader should subscribe again and
// re-read the retained rows.
var ErrRestored = errors.New("sinks: dashboard restored from a checkpoint; resubscribe")

const (
	dashHeadKey  = 'h'
	dashBatchTag = 'b'
)

// dashboardTxn is the persistence state of a Dashboard after OpenState.
type dashboardTxn struct {
	sp *state.Space
	// persisted numbers the first row not yet handled by a PreCommit.
	persisted uint64
	// stored are the batches in the space, oldest first.
	stored []storedBatch
}

type storedBatch struct {
	first, end uint64 // rows [first, end)
}

type dashHead struct {
	head, written uint64
	cols          []Column
}

// OpenState replaces the dashboard's rows with those stored in sp (none
// for a new job) and from then on stores them at each PreCommit.
func (d *Dashboard) OpenState(ctx context.Context, sp *state.Space) error {
	if sp == nil {
		return fmt.Errorf("dashboard %s: OpenState without a state space", d.cfg.Title)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.txn != nil {
		return fmt.Errorf("dashboard %s: OpenState called twice", d.cfg.Title)
	}
	h, batches, firsts, stored, err := d.load(sp)
	if err != nil {
		return fmt.Errorf("dashboard %s: open state: %w", d.cfg.Title, err)
	}
	if len(d.mu.batches) > 0 {
		for s := range d.mu.subs {
			d.dropLocked(s, ErrRestored)
		}
	}
	for _, b := range d.mu.batches {
		b.Release()
	}
	if d.cfg.Columns == nil {
		d.mu.cols, d.mu.schema = nil, nil
		if h.cols != nil {
			d.mu.cols, d.mu.schema = h.cols, arrowSchema(h.cols)
		}
	}
	d.mu.batches, d.mu.first = batches, firsts
	d.mu.rows = 0
	for _, b := range batches {
		d.mu.rows += int(b.NumRows())
	}
	d.mu.written = int64(h.written)
	d.mu.txn = &dashboardTxn{sp: sp, persisted: h.written, stored: stored}
	d.trimLocked()
	return nil
}

// load reads the stored rows; the batches are cut to start at the head.
func (d *Dashboard) load(sp *state.Space) (h dashHead, batches []arrow.RecordBatch, firsts []uint64, stored []storedBatch, err error) {
	release := func() {
		for _, b := range batches {
			b.Release()
		}
	}
	v, ok, err := sp.Get([]byte{dashHeadKey})
	if err != nil || !ok {
		return h, nil, nil, nil, err
	}
	if h, err = decodeDashHead(v); err != nil {
		return h, nil, nil, nil, err
	}
	upgrade := false
	if d.cfg.Columns != nil && h.cols != nil && !ColumnsEqual(d.cfg.Columns, h.cols) {
		if !upgradable(h.cols, d.cfg.Columns) {
			return h, nil, nil, nil, fmt.Errorf("stored columns %v differ from the configured %v", h.cols, d.cfg.Columns)
		}
		upgrade = true
	}
	cols := h.cols
	if d.cfg.Columns != nil {
		cols = d.cfg.Columns
	}
	var schema, storedSchema *arrow.Schema
	if cols != nil {
		schema = arrowSchema(cols)
		storedSchema = schema
	}
	if upgrade {
		storedSchema = arrowSchema(h.cols)
	}
	err = sp.Scan([]byte{dashBatchTag}, func(k, v []byte) error {
		if len(k) != 9 {
			return fmt.Errorf("%w: batch key %x", errDashCorrupt, k)
		}
		first := binary.BigEndian.Uint64(k[1:])
		rec, err := decodeIPCBatch(v)
		if err != nil {
			return err
		}
		if storedSchema == nil || !rec.Schema().Equal(storedSchema) {
			rec.Release()
			return fmt.Errorf("%w: batch %d has schema %v, want %v", errDashCorrupt, first, rec.Schema(), storedSchema)
		}
		if upgrade {
			up, err := upgradeBatch(d.mem, rec, schema, h.cols, cols, first)
			rec.Release()
			if err != nil {
				return err
			}
			rec = up
		}
		n := uint64(rec.NumRows())
		stored = append(stored, storedBatch{first: first, end: first + n})
		if first+n <= h.head {
			rec.Release()
			return nil
		}
		if first < h.head {
			cut := rec.NewSlice(int64(h.head-first), int64(n))
			rec.Release()
			rec, first = cut, h.head
		}
		batches = append(batches, rec)
		firsts = append(firsts, first)
		return nil
	})
	if err != nil {
		release()
		return h, nil, nil, nil, err
	}
	if upgrade {
		h.cols = cols
		if stored, err = rewriteUpgraded(sp, h, stored, batches, firsts); err != nil {
			release()
			return h, nil, nil, nil, err
		}
	}
	return h, batches, firsts, stored, nil
}

// upgradable reports whether rows stored with columns old can be read as
// columns now: the same names and types, except that a struct column may
// have been stored as a JSON or string column holding its JSON text (the
// detect operator's explanation was such a column).
func upgradable(old, now []Column) bool {
	return slices.EqualFunc(old, now, func(o, n Column) bool {
		if o.Name != n.Name {
			return false
		}
		if n.Type == Struct && (o.Type == JSON || o.Type == String) {
			return true
		}
		return o.Type == n.Type && ColumnsEqual(o.Fields, n.Fields)
	})
}

// upgradeBatch converts a batch stored with columns old to columns now
// (see upgradable); first numbers its first row. A stored text that is not
// a JSON object fits no struct: that is an error rather than a null.
func upgradeBatch(mem memory.Allocator, rec arrow.RecordBatch, schema *arrow.Schema, old, now []Column, first uint64) (arrow.RecordBatch, error) {
	rows := RowsOf(rec)
	in := make([]Row, len(rows))
	for i, r := range rows {
		for j, c := range now {
			if c.Type != Struct || old[j].Type == Struct || r[c.Name] == nil {
				continue
			}
			if _, ok := structValue(r[c.Name]); !ok {
				return nil, fmt.Errorf("%w: row %d column %s: stored %s value %.80q is not a JSON object, so it cannot become a struct",
					errDashCorrupt, first+uint64(i), c.Name, old[j].Type, r[c.Name])
			}
		}
		in[i] = Row{Value: r}
	}
	return toRecordBatch(mem, schema, now, in), nil
}

// rewriteUpgraded replaces the stored batches with the upgraded ones and
// the head with one naming the new columns, so the space holds one schema
// again; it returns what is stored now.
func rewriteUpgraded(sp *state.Space, h dashHead, old []storedBatch, batches []arrow.RecordBatch, firsts []uint64) ([]storedBatch, error) {
	b := sp.NewBatch()
	for _, s := range old {
		b.Delete(batchKey(s.first))
	}
	var stored []storedBatch
	var buf bytes.Buffer
	for i, rec := range batches {
		buf.Reset()
		if err := encodeIPCBatch(&buf, memory.DefaultAllocator, rec); err != nil {
			return nil, fmt.Errorf("upgrade stored rows: %w", err)
		}
		b.Set(batchKey(firsts[i]), buf.Bytes())
		stored = append(stored, storedBatch{first: firsts[i], end: firsts[i] + uint64(rec.NumRows())})
	}
	enc, err := encodeDashHead(h)
	if err != nil {
		return nil, fmt.Errorf("upgrade stored rows: %w", err)
	}
	b.Set([]byte{dashHeadKey}, enc)
	if err := b.Commit(); err != nil {
		return nil, fmt.Errorf("upgrade stored rows: %w", err)
	}
	return stored, nil
}

// PreCommit stores the rows retained now: new batches are added and
// batches trimmed away since the last PreCommit deleted.
func (d *Dashboard) PreCommit(ctx context.Context, epoch uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := d.mu.txn
	if t == nil {
		return fmt.Errorf("dashboard %s: PreCommit before OpenState", d.cfg.Title)
	}
	written := uint64(d.mu.written)
	head := written
	if len(d.mu.first) > 0 {
		head = d.mu.first[0]
	}
	b := t.sp.NewBatch()
	var stored []storedBatch
	for _, s := range t.stored {
		if s.end <= head {
			b.Delete(batchKey(s.first))
			continue
		}
		stored = append(stored, s)
	}
	var buf bytes.Buffer
	for i, rec := range d.mu.batches {
		first := d.mu.first[i]
		if first < t.persisted {
			continue
		}
		buf.Reset()
		if err := encodeIPCBatch(&buf, d.mem, rec); err != nil {
			return fmt.Errorf("dashboard %s: pre-commit %d: %w", d.cfg.Title, epoch, err)
		}
		b.Set(batchKey(first), buf.Bytes())
		stored = append(stored, storedBatch{first: first, end: first + uint64(rec.NumRows())})
	}
	h := dashHead{head: head, written: written}
	if d.mu.schema != nil {
		h.cols = d.mu.cols
	}
	enc, err := encodeDashHead(h)
	if err != nil {
		return fmt.Errorf("dashboard %s: pre-commit %d: %w", d.cfg.Title, epoch, err)
	}
	b.Set([]byte{dashHeadKey}, enc)
	if err := b.Commit(); err != nil {
		return fmt.Errorf("dashboard %s: pre-commit %d: %w", d.cfg.Title, epoch, err)
	}
	t.persisted, t.stored = written, stored
	return nil
}

// Commit does nothing: rows are visible from the moment they are written.
func (d *Dashboard) Commit(ctx context.Context, epoch uint64) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.mu.txn == nil {
		return fmt.Errorf("dashboard %s: Commit before OpenState", d.cfg.Title)
	}
	return nil
}

var errDashCorrupt = errors.New("sinks: stored dashboard rows damaged")

func batchKey(first uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{dashBatchTag}, first)
}

func encodeIPCBatch(buf *bytes.Buffer, mem memory.Allocator, rec arrow.RecordBatch) error {
	w := ipc.NewWriter(buf, ipc.WithSchema(rec.Schema()), ipc.WithAllocator(mem))
	if err := w.Write(rec); err != nil {
		w.Close()
		return fmt.Errorf("encode batch: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("encode batch: %w", err)
	}
	return nil
}

// decodeIPCBatch reads the one batch of an IPC stream; the caller owns it.
func decodeIPCBatch(v []byte) (arrow.RecordBatch, error) {
	r, err := ipc.NewReader(bytes.NewReader(bytes.Clone(v)))
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errDashCorrupt, err)
	}
	defer r.Release()
	if !r.Next() {
		return nil, fmt.Errorf("%w: batch without rows: %v", errDashCorrupt, r.Err())
	}
	rec := r.RecordBatch()
	rec.Retain()
	return rec, nil
}

func encodeDashHead(h dashHead) ([]byte, error) {
	b := []byte{txnVersion}
	b = binary.AppendUvarint(b, h.head)
	b = binary.AppendUvarint(b, h.written)
	if h.cols == nil {
		return b, nil
	}
	cols, err := json.Marshal(h.cols)
	if err != nil {
		return nil, err
	}
	return append(b, cols...), nil
}

func decodeDashHead(b []byte) (dashHead, error) {
	if len(b) == 0 || b[0] != txnVersion {
		return dashHead{}, fmt.Errorf("%w: head version", errDashCorrupt)
	}
	d := decoder{b: b[1:]}
	h := dashHead{head: d.uvarint(1 << 63), written: d.uvarint(1 << 63)}
	if d.err != nil || h.head > h.written {
		return dashHead{}, fmt.Errorf("%w: head", errDashCorrupt)
	}
	if len(d.b) > 0 {
		if err := json.Unmarshal(d.b, &h.cols); err != nil {
			return dashHead{}, fmt.Errorf("%w: columns: %v", errDashCorrupt, err)
		}
		if err := validateColumns(h.cols); err != nil || len(h.cols) == 0 {
			return dashHead{}, fmt.Errorf("%w: columns %v", errDashCorrupt, h.cols)
		}
	}
	return h, nil
}
