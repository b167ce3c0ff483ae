package cluster

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/state"
)

// A detect operator's state in a task is one model per key. Its changelog
// records are keyed
//
//	'd' + the model's key in the operator's state space
//
// with the model's bytes as value (the operator's own encoding, the one a
// server's checkpoints hold). The operator keeps its models in memory and,
// as operators.Stateful, writes those it scored to a key space at each
// SnapshotState: a worker gives it a space in an in-memory store (one per
// worker, a space per task), calls SnapshotState before each flush and
// copies the models of the keys scored since the last flush from the space
// to the changelog. A task restoring writes the changelog's records into
// a cleared space and then opens the operator on it.
const keyDetect = 'd'

// detectModelPrefix is the first byte of a model's key in the detect
// operator's state space (then the record key): the one layout of the
// operator this file depends on. A change of it shows as models missing
// from the changelog, which TestDetectLogRoundTrip catches.
const detectModelPrefix = 'k'

// detectLog is the state of a task's detect operator.
type detectLog struct {
	op    operators.Stateful
	sp    *state.Space
	dirty map[string]struct{} // keys of records processed since the last flush
}

// newDetectLog gives op an empty space in the worker's scratch store; the
// task's restore fills it (apply), then open hands it to the operator.
func (w *Worker) newDetectLog(op operators.Operator, t *task) (*detectLog, error) {
	st, ok := op.(operators.Stateful)
	if !ok {
		return nil, fmt.Errorf("cluster: operator %s keeps no state a worker can restore", t.stage.Keyed)
	}
	if w.scratch == nil {
		db, err := state.Open("scratch", state.Options{FS: vfs.NewMem(), Logger: w.cfg.Log})
		if err != nil {
			return nil, fmt.Errorf("cluster: detect state store: %w", err)
		}
		w.scratch = db
	}
	sp, err := w.scratch.Namespace(t.stage.Keyed, t.name)
	if err != nil {
		return nil, err
	}
	if err := clearLocal(sp); err != nil {
		return nil, err
	}
	return &detectLog{op: st, sp: sp, dirty: map[string]struct{}{}}, nil
}

// apply restores one changelog record (a key starting with 'd').
func (d *detectLog) apply(c Change) error {
	k := c.Key[1:]
	if len(k) == 0 || k[0] != detectModelPrefix {
		return fmt.Errorf("%w: detect key %q", ErrChangelog, c.Key)
	}
	if c.Value == nil {
		return d.sp.Delete(k)
	}
	return d.sp.Set(k, c.Value)
}

// open hands the restored space to the operator.
func (d *detectLog) open() error { return d.op.OpenState(d.sp) }

// touched notes the keys of records the operator processed.
func (d *detectLog) touched(recs []operators.Record) {
	for _, r := range recs {
		d.dirty[r.Key] = struct{}{}
	}
}

// changes returns the changelog records of the models scored since the
// last call (records without the scored fields make no model: none).
func (d *detectLog) changes() ([]Change, error) {
	if len(d.dirty) == 0 {
		return nil, nil
	}
	if err := d.op.SnapshotState(); err != nil {
		return nil, err
	}
	out := make([]Change, 0, len(d.dirty))
	for key := range d.dirty {
		k := append([]byte{detectModelPrefix}, key...)
		v, ok, err := d.sp.Get(k)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, Change{Key: append([]byte{keyDetect}, k...), Value: v})
		}
	}
	clear(d.dirty)
	return out, nil
}

// close frees the task's space.
func (d *detectLog) close() {
	clearLocal(d.sp)
}

// isDetect reports whether operator id is a detect operator.
func (w *Worker) isDetect(id string) bool {
	for _, op := range w.cfg.Spec.Operators {
		if op.ID == id {
			return op.Detect != nil
		}
	}
	return false
}

func (w *Worker) closeScratch() {
	if w.scratch != nil {
		w.scratch.Close()
		w.scratch = nil
	}
}
