package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/runnel-dev/runnel/operators/window"
)

// A changelog partition holds one task's state as a compacted log of
// key → value records; a nil value deletes the key. Keys:
//
//	'w' uvarint(len(key)) key start(8, big endian) end(8): a window's
//	    state, the window Codec's bytes
//	'm': the task's watermark bookkeeping (Watermarks, JSON)
//
// A task writes the changes of each commit interval in the transaction that
// commits its input offsets, so the committed changelog is the state as of
// the committed offsets.
const (
	keyWindow = 'w'
	keyMeta   = 'm'
)

// metaKey is the changelog key of a task's watermark bookkeeping.
var metaKey = []byte{keyMeta}

// ErrChangelog marks a changelog record that does not decode.
var ErrChangelog = errors.New("cluster: bad changelog record")

// Change is one changelog record.
type Change struct {
	Key   []byte
	Value []byte // nil: delete
}

type entryKey struct {
	key string
	w   window.Window
}

func encodeWindowKey(key string, w window.Window) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(key)+16)
	b = append(b, keyWindow)
	b = binary.AppendUvarint(b, uint64(len(key)))
	b = append(b, key...)
	b = binary.BigEndian.AppendUint64(b, uint64(w.Start))
	return binary.BigEndian.AppendUint64(b, uint64(w.End))
}

func decodeWindowKey(b []byte) (string, window.Window, error) {
	if len(b) == 0 || b[0] != keyWindow {
		return "", window.Window{}, fmt.Errorf("%w: key %q is not a window's", ErrChangelog, b)
	}
	n, used := binary.Uvarint(b[1:])
	rest := b[1+max(used, 0):]
	if used <= 0 || uint64(len(rest)) != n+16 {
		return "", window.Window{}, fmt.Errorf("%w: window key of %d bytes is cut or padded", ErrChangelog, len(b))
	}
	key := string(rest[:n])
	start := int64(binary.BigEndian.Uint64(rest[n:]))
	end := int64(binary.BigEndian.Uint64(rest[n+8:]))
	return key, window.Window{Start: start, End: end}, nil
}

// LogStore is a window operator's state in one task: held in memory, and
// every change also recorded so Changes can write it to the changelog.
// Like every window.Store it is used from one goroutine.
type LogStore struct {
	window.Store
	codec window.Codec
	dirty map[entryKey]struct{}
}

// NewLogStore makes an empty store for states encoded with codec.
func NewLogStore(codec window.Codec) *LogStore {
	return &LogStore{Store: window.NewMemStore(), codec: codec, dirty: map[entryKey]struct{}{}}
}

// Put stores s and records the change.
func (s *LogStore) Put(key string, w window.Window, st *window.State) error {
	s.dirty[entryKey{key, w}] = struct{}{}
	return s.Store.Put(key, w, st)
}

// Delete removes the window and records the change.
func (s *LogStore) Delete(key string, w window.Window) error {
	s.dirty[entryKey{key, w}] = struct{}{}
	return s.Store.Delete(key, w)
}

// Changes returns the changelog records of the windows changed since the
// last call (a window changed many times is written once, with its state
// now) and forgets them.
func (s *LogStore) Changes() ([]Change, error) {
	out := make([]Change, 0, len(s.dirty))
	for e := range s.dirty {
		c := Change{Key: encodeWindowKey(e.key, e.w)}
		st, err := s.Store.Get(e.key, e.w)
		if err != nil {
			return nil, err
		}
		if st != nil {
			if c.Value, err = s.codec.Marshal(st); err != nil {
				return nil, fmt.Errorf("encode window %s [%d, %d): %w", e.key, e.w.Start, e.w.End, err)
			}
		}
		out = append(out, c)
	}
	clear(s.dirty)
	return out, nil
}

// Apply restores one changelog record of a window (a key starting with
// 'w'); it is not recorded as a change.
func (s *LogStore) Apply(c Change) error {
	key, w, err := decodeWindowKey(c.Key)
	if err != nil {
		return err
	}
	if c.Value == nil {
		return s.Store.Delete(key, w)
	}
	st, err := s.codec.Unmarshal(c.Value)
	if err != nil {
		return fmt.Errorf("%w: window %s [%d, %d): %w", ErrChangelog, key, w.Start, w.End, err)
	}
	return s.Store.Put(key, w, st)
}
