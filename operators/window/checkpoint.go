package window

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/state"
)

var _ operators.Stateful = (*Operator)(nil)

// metaKey holds the operator's own state in its space, next to the store's
// 'w' and 'e' families: see encodeMeta.
var metaKey = []byte{'m'}

const metaVersion = 1

// opMeta is what SnapshotState records besides the windows.
type opMeta struct {
	wm      int64
	windows int
}

// encodeMeta: a version byte, the watermark (8 bytes big-endian), then the
// number of windows as a uvarint.
func encodeMeta(m opMeta) []byte {
	b := []byte{metaVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(m.wm))
	return binary.AppendUvarint(b, uint64(m.windows))
}

var errBadMeta = errors.New("window: damaged operator state record")

func decodeMeta(b []byte) (opMeta, error) {
	if len(b) < 9 || b[0] != metaVersion {
		return opMeta{}, errBadMeta
	}
	m := opMeta{wm: int64(binary.BigEndian.Uint64(b[1:]))}
	b = b[9:]
	windows, n := binary.Uvarint(b)
	if n <= 0 || n != len(b) || windows > 1<<62 {
		return opMeta{}, errBadMeta
	}
	m.windows = int(windows)
	return m, nil
}

// OpenState implements operators.Stateful: from now on the operator keeps
// its windows in sp behind a write-back cache of Config.StateCacheEntries
// (writing changes ahead of the checkpoint once more than
// Config.StateDirtyEntries are pending), and resumes from what sp holds — the windows and the watermark recorded
// by the last SnapshotState of the checkpoint the job restored — so a
// window that fired before that checkpoint does not fire again. The
// counters (Stats) are not stored and restart at 0. It must be called
// before the first record.
func (op *Operator) OpenState(sp *state.Space) error {
	if op.store.Len() > 0 {
		return fmt.Errorf("window %q: open state: the operator already holds %d windows", op.cfg.ID, op.store.Len())
	}
	raw, found, err := sp.Get(metaKey)
	if err != nil {
		return fmt.Errorf("window %q: open state: %w", op.cfg.ID, err)
	}
	windows := -1
	if found {
		m, err := decodeMeta(raw)
		if err != nil {
			return fmt.Errorf("window %q: open state: %w", op.cfg.ID, err)
		}
		op.wm, windows = m.wm, m.windows
	}
	cs, err := openCachedStore(sp, stateCodec{op.aggs}, op.cfg.StateCacheEntries, op.cfg.StateDirtyEntries, windows)
	if err != nil {
		return fmt.Errorf("window %q: open state: %w", op.cfg.ID, err)
	}
	op.store, op.cache = cs, cs
	return nil
}

// SnapshotState implements operators.Stateful: it writes the windows
// changed since the last snapshot (and removes the deleted ones), the
// watermark and the number of windows, in one batch. After an error the
// checkpoint cannot complete and the operator's state is undefined: the
// job restores from its last checkpoint.
func (op *Operator) SnapshotState() error {
	if op.cache == nil {
		return fmt.Errorf("window %q: snapshot state: OpenState was not called", op.cfg.ID)
	}
	b := op.cache.ps.space.NewBatch()
	if err := op.cache.flush(b); err != nil {
		return fmt.Errorf("window %q: snapshot state: %w", op.cfg.ID, err)
	}
	b.Set(metaKey, encodeMeta(opMeta{wm: op.wm, windows: op.cache.n}))
	if err := b.Commit(); err != nil {
		return fmt.Errorf("window %q: snapshot state: %w", op.cfg.ID, err)
	}
	return nil
}
