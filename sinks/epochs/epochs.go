// Package epochs stages a transactional sink's rows per checkpoint epoch
// in the sink's state space, for sinks whose target commits an epoch
// atomically together with a record of the epoch (a progress row, a
// transactional offset): PreCommit stages, the checkpoint snapshots the
// space, Commit writes the epoch to the target and forgets it, and a
// restored space yields the epochs whose commit may have been cut short.
//
// Each epoch carries its target, as the sink names it (a topic, a table):
// a job restored with a changed sink configuration (a deploy from a
// savepoint) commits a restored epoch where it was staged for, not where
// the sink now writes.
//
// Layout of the space:
//
//	'm' epoch        marker: number of chunks (4 bytes), then the target
//	'r' epoch chunk  a JSON array of up to ChunkRows rows
//
// epoch is 8 bytes and chunk 4, big-endian. Chunks without a marker come
// from a PreCommit cut short and are deleted on Load.
package epochs

import (
	"encoding/binary"
	"encoding/json"
	"fmt"

	"github.com/runnel-dev/runnel/state"
)

const (
	markerTag = 'm'
	chunkTag  = 'r'
	// ChunkRows bounds the rows of one staged chunk.
	ChunkRows = 4096
)

// Row is one staged row: its key and its value (JSON-encodable).
type Row struct {
	Key   string `json:"k,omitempty"`
	Value any    `json:"v"`
}

// Epoch is the rows staged under one epoch.
type Epoch struct {
	Epoch uint64
	// Target is what the rows were staged for, as the sink named it
	// when it staged them; "" for an epoch staged before markers held
	// it (the sink's present target).
	Target string
	Rows   []Row
	chunks uint32
}

// Stage stores rows staged for target under epoch in one batch, marker
// last.
func Stage(sp *state.Space, epoch uint64, target string, rows []Row) (Epoch, error) {
	e := Epoch{Epoch: epoch, Target: target, Rows: rows}
	b := sp.NewBatch()
	for rest := rows; len(rest) > 0; e.chunks++ {
		n := min(len(rest), ChunkRows)
		enc, err := json.Marshal(rest[:n])
		if err != nil {
			return e, fmt.Errorf("stage epoch %d: %w", epoch, err)
		}
		b.Set(chunkKey(epoch, e.chunks), enc)
		rest = rest[n:]
	}
	b.Set(markerKey(epoch), append(binary.BigEndian.AppendUint32(nil, e.chunks), target...))
	if err := b.Commit(); err != nil {
		return e, fmt.Errorf("stage epoch %d: %w", epoch, err)
	}
	return e, nil
}

// Forget deletes e from the space.
func Forget(sp *state.Space, e Epoch) error {
	b := sp.NewBatch()
	for c := range e.chunks {
		b.Delete(chunkKey(e.Epoch, c))
	}
	b.Delete(markerKey(e.Epoch))
	return b.Commit()
}

// Load returns the staged epochs, oldest first, and deletes chunks that
// have no marker.
func Load(sp *state.Space) ([]Epoch, error) {
	var out []Epoch
	err := sp.Scan([]byte{markerTag}, func(k, v []byte) error {
		if len(k) != 9 || len(v) < 4 {
			return fmt.Errorf("staged marker %x is damaged", k)
		}
		out = append(out, Epoch{Epoch: binary.BigEndian.Uint64(k[1:]), Target: string(v[4:]), chunks: binary.BigEndian.Uint32(v)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	marked := map[uint64]bool{}
	for i := range out {
		e := &out[i]
		marked[e.Epoch] = true
		for c := range e.chunks {
			b, ok, err := sp.Get(chunkKey(e.Epoch, c))
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, fmt.Errorf("staged epoch %d lacks chunk %d of %d", e.Epoch, c, e.chunks)
			}
			var rows []Row
			if err := json.Unmarshal(b, &rows); err != nil {
				return nil, fmt.Errorf("staged epoch %d chunk %d: %w", e.Epoch, c, err)
			}
			e.Rows = append(e.Rows, rows...)
		}
	}
	var orphans [][]byte
	err = sp.Scan([]byte{chunkTag}, func(k, _ []byte) error {
		if len(k) == 13 && !marked[binary.BigEndian.Uint64(k[1:9])] {
			orphans = append(orphans, append([]byte(nil), k...))
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

func markerKey(epoch uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{markerTag}, epoch)
}

func chunkKey(epoch uint64, chunk uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64([]byte{chunkTag}, epoch), chunk)
}
