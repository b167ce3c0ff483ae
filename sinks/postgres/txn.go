package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/state"
)

const (
	markerTag = 'm'
	chunkTag  = 'r'
	// chunkRows bounds the rows of one staged chunk.
	chunkRows = 4096
)

type txnState struct {
	sp      *state.Space
	staged  []any
	pending []epochRows
	last    uint64
	// failed stops the sink after a commit error: the job must restart
	// from its checkpoint, which still holds the epoch.
	failed error
}

type epochRows struct {
	epoch  uint64
	chunks uint32
	vals   []any
}

// OpenState switches the sink to staged writes and commits the epochs
// restored in sp; the progress row skips those already in the table.
func (s *Sink) OpenState(ctx context.Context, sp *state.Space) error {
	if s.txn != nil {
		return fmt.Errorf("postgres sink %s: OpenState called twice", s.cfg.Sink)
	}
	t := &txnState{sp: sp}
	s.txn = t
	epochs, err := loadEpochs(sp)
	if err == nil {
		for _, e := range epochs {
			if err = s.commitRows(ctx, e.epoch, e.vals); err != nil {
				break
			}
			if err = forgetEpoch(sp, e); err != nil {
				break
			}
			t.last = e.epoch
		}
	}
	if err != nil {
		t.failed = fmt.Errorf("postgres sink %s: recover staged epochs: %w", s.cfg.Sink, err)
		return t.failed
	}
	return nil
}

// PreCommit stores the rows written since the last PreCommit under epoch.
func (s *Sink) PreCommit(ctx context.Context, epoch uint64) error {
	t := s.txn
	if t == nil {
		return errNoTxn
	}
	if t.failed != nil {
		return t.failed
	}
	if epoch <= t.last {
		return fmt.Errorf("postgres sink %s: PreCommit epoch %d is not after the last one, %d", s.cfg.Sink, epoch, t.last)
	}
	t.last = epoch
	if len(t.staged) == 0 {
		return nil
	}
	e := epochRows{epoch: epoch, vals: t.staged}
	b := t.sp.NewBatch()
	for rest := t.staged; len(rest) > 0; e.chunks++ {
		n := min(len(rest), chunkRows)
		enc, err := json.Marshal(rest[:n])
		if err != nil {
			return fmt.Errorf("postgres sink %s: stage epoch %d: %w", s.cfg.Sink, epoch, err)
		}
		b.Set(chunkKey(epoch, e.chunks), enc)
		rest = rest[n:]
	}
	b.Set(markerKey(epoch), binary.BigEndian.AppendUint32(nil, e.chunks))
	if err := b.Commit(); err != nil {
		return fmt.Errorf("postgres sink %s: stage epoch %d: %w", s.cfg.Sink, epoch, err)
	}
	t.pending = append(t.pending, e)
	t.staged = nil
	return nil
}

// Commit merges every staged epoch <= epoch into the table, each in its
// own transaction with its progress row, and forgets it.
func (s *Sink) Commit(ctx context.Context, epoch uint64) error {
	t := s.txn
	if t == nil {
		return errNoTxn
	}
	if t.failed != nil {
		return t.failed
	}
	for len(t.pending) > 0 && t.pending[0].epoch <= epoch {
		e := t.pending[0]
		err := s.commitRows(ctx, e.epoch, e.vals)
		if err == nil {
			err = forgetEpoch(t.sp, e)
		}
		if err != nil {
			t.failed = fmt.Errorf("postgres sink %s: commit epoch %d (restart the job from its checkpoint): %w", s.cfg.Sink, e.epoch, err)
			return t.failed
		}
		t.pending = t.pending[1:]
	}
	return nil
}

func markerKey(epoch uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{markerTag}, epoch)
}

func chunkKey(epoch uint64, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte{chunkTag}, epoch), chunk)
}

// loadEpochs reads the staged epochs with a marker, oldest first; chunks
// without one come from a PreCommit cut short and are dropped.
func loadEpochs(sp *state.Space) ([]epochRows, error) {
	var out []epochRows
	err := sp.Scan([]byte{markerTag}, func(k, v []byte) error {
		if len(k) != 9 || len(v) != 4 {
			return fmt.Errorf("staged marker %x is damaged", k)
		}
		out = append(out, epochRows{epoch: binary.BigEndian.Uint64(k[1:]), chunks: binary.BigEndian.Uint32(v)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		e := &out[i]
		for c := range e.chunks {
			b, ok, err := sp.Get(chunkKey(e.epoch, c))
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("staged epoch %d lacks chunk %d of %d", e.epoch, c, e.chunks)
			}
			var vals []any
			if err := json.Unmarshal(b, &vals); err != nil {
				return nil, fmt.Errorf("staged epoch %d chunk %d: %w", e.epoch, c, err)
			}
			e.vals = append(e.vals, vals...)
		}
	}
	// Orphan chunks (no marker) of a PreCommit cut short.
	var orphans [][]byte
	err = sp.Scan([]byte{chunkTag}, func(k, _ []byte) error {
		if len(k) == 13 {
			ep := binary.BigEndian.Uint64(k[1:9])
			if !hasEpoch(out, ep) {
				orphans = append(orphans, append([]byte(nil), k...))
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, k := range orphans {
		if err := sp.Delete(k); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func hasEpoch(es []epochRows, ep uint64) bool {
	for _, e := range es {
		if e.epoch == ep {
			return true
		}
	}
	return false
}

func forgetEpoch(sp *state.Space, e epochRows) error {
	b := sp.NewBatch()
	for c := range e.chunks {
		b.Delete(chunkKey(e.epoch, c))
	}
	b.Delete(markerKey(e.epoch))
	return b.Commit()
}

var errNoTxn = errors.New("postgres sink: PreCommit or Commit before OpenState")
