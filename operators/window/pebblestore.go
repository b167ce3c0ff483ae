package window

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/runnel-dev/runnel/state"
)

// pebbleStore is a Store over a state.Space: state larger than memory, made
// durable by the DB's checkpoints. Two key families:
//
//	'w' key start end -> state bytes   (Get, Put, Delete, Windows)
//	'e' end key start -> empty         (Range: ordered by End, key, Start)
//
// key is escaped (0x00 -> 0x00 0xff) and ends in 0x00 0x01, so it is
// prefix-free and sorts as the plain string; times are big-endian with the
// sign bit flipped, so they sort as int64.
//
// A failing read or write of the underlying Pebble, or state the Codec
// cannot decode, is a *StoreError saying what was being done, which the
// Operator returns from Process or OnWatermark. Such a failure is an I/O
// or corruption fault the operator cannot handle, and the job restores
// from its checkpoint.
type pebbleStore struct {
	space *state.Space
	codec Codec
	n     int
}

const (
	familyWindow = 'w'
	familyEnd    = 'e'
)

// NewPebbleStore returns a Store keeping window state in space (one
// operator task's namespace), encoded with codec. It counts the entries
// already in space, so a store over restored state starts with them.
func NewPebbleStore(space *state.Space, codec Codec) (Store, error) {
	s := &pebbleStore{space: space, codec: codec}
	err := space.Scan([]byte{familyWindow}, func(_, _ []byte) error {
		s.n++
		return nil
	})
	if err != nil {
		return nil, s.fail("count entries", err)
	}
	return s, nil
}

func appendTime(b []byte, t int64) []byte {
	return binary.BigEndian.AppendUint64(b, uint64(t)^(1<<63))
}

func readTime(b []byte) int64 {
	return int64(binary.BigEndian.Uint64(b) ^ (1 << 63))
}

func appendKey(b []byte, key string) []byte {
	for i := 0; i < len(key); i++ {
		if key[i] == 0 {
			b = append(b, 0, 0xff)
			continue
		}
		b = append(b, key[i])
	}
	return append(b, 0, 1)
}

// readKey decodes a key written by appendKey and returns the rest.
func readKey(b []byte) (string, []byte, error) {
	var out []byte
	for i := 0; i+1 < len(b); i++ {
		if b[i] != 0 {
			out = append(out, b[i])
			continue
		}
		switch b[i+1] {
		case 0xff:
			out = append(out, 0)
			i++
		case 1:
			return string(out), b[i+2:], nil
		default:
			return "", nil, fmt.Errorf("window: pebble store: bad key escape %#x", b[i+1])
		}
	}
	return "", nil, fmt.Errorf("window: pebble store: unterminated key %q", b)
}

func windowKey(key string, w Window) []byte {
	return appendWindowKey(make([]byte, 0, 1+len(key)+2+16), key, w)
}

func appendWindowKey(b []byte, key string, w Window) []byte {
	b = appendKey(append(b, familyWindow), key)
	return appendTime(appendTime(b, w.Start), w.End)
}

func endKey(key string, w Window) []byte {
	return appendEndKey(make([]byte, 0, 1+len(key)+2+16), key, w)
}

func appendEndKey(b []byte, key string, w Window) []byte {
	b = appendTime(append(b, familyEnd), w.End)
	return appendTime(appendKey(b, key), w.Start)
}

// fail returns the *StoreError of what failing with err.
func (s *pebbleStore) fail(what string, err error) error {
	return &StoreError{fmt.Errorf("window: pebble store: %s: %w", what, err)}
}

// StoreError is a failure of a store over Pebble: Pebble failed, or the
// state it holds cannot be decoded. Operator.Process and OnWatermark
// return it, wrapped with the window's name.
type StoreError struct{ Err error }

func (e *StoreError) Error() string { return e.Err.Error() }
func (e *StoreError) Unwrap() error { return e.Err }

func (s *pebbleStore) get(k []byte) ([]byte, bool, error) {
	v, ok, err := s.space.Get(k)
	if err != nil {
		return nil, false, s.fail("get", err)
	}
	return v, ok, nil
}

func (s *pebbleStore) decode(b []byte) (*State, error) {
	st, err := s.codec.Unmarshal(b)
	if err != nil {
		return nil, s.fail("decode state", err)
	}
	return st, nil
}

func (s *pebbleStore) Get(key string, w Window) (*State, error) {
	v, ok, err := s.get(windowKey(key, w))
	if !ok || err != nil {
		return nil, err
	}
	return s.decode(v)
}

func (s *pebbleStore) Put(key string, w Window, st *State) error {
	v, err := s.codec.Marshal(st)
	if err != nil {
		return s.fail("encode state", err)
	}
	wk := windowKey(key, w)
	_, existed, err := s.get(wk)
	if err != nil {
		return err
	}
	b := s.space.NewBatch()
	b.Set(wk, v)
	if !existed {
		b.Set(endKey(key, w), nil)
	}
	if err := b.Commit(); err != nil {
		return s.fail("put", err)
	}
	if !existed {
		s.n++
	}
	return nil
}

func (s *pebbleStore) Delete(key string, w Window) error {
	wk := windowKey(key, w)
	if _, ok, err := s.get(wk); !ok || err != nil {
		return err
	}
	b := s.space.NewBatch()
	b.Delete(wk)
	b.Delete(endKey(key, w))
	if err := b.Commit(); err != nil {
		return s.fail("delete", err)
	}
	s.n--
	return nil
}

func (s *pebbleStore) Windows(key string) ([]Window, error) {
	prefix := appendKey([]byte{familyWindow}, key)
	var out []Window
	err := s.space.Scan(prefix, func(k, _ []byte) error {
		rest := k[len(prefix):]
		if len(rest) != 16 {
			return fmt.Errorf("window key %q has %d time bytes", k, len(rest))
		}
		out = append(out, Window{Start: readTime(rest), End: readTime(rest[8:])})
		return nil
	})
	if err != nil {
		return nil, s.fail("windows of "+key, err)
	}
	return out, nil
}

func (s *pebbleStore) Range(lo, hi int64) ([]Entry, error) {
	out, err := s.rangeKeys(lo, hi)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].State, err = s.state(out[i].Key, out[i].Window); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// state reads and decodes the state of a window the end index holds.
func (s *pebbleStore) state(key string, w Window) (*State, error) {
	v, ok, err := s.get(windowKey(key, w))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, s.fail("range", fmt.Errorf("index entry %q %v has no state", key, w))
	}
	return s.decode(v)
}

// rangeKeys returns the windows with lo < End <= hi in Range's order,
// without their states.
func (s *pebbleStore) rangeKeys(lo, hi int64) ([]Entry, error) {
	if lo >= hi {
		return nil, nil
	}
	lower := []byte{familyEnd}
	if lo != math.MaxInt64 {
		lower = appendTime(lower, lo+1)
	}
	upper := []byte{familyEnd + 1}
	if hi != math.MaxInt64 {
		upper = appendTime([]byte{familyEnd}, hi+1)
	}
	var out []Entry
	err := s.space.ScanRange(lower, upper, func(k, _ []byte) error {
		if len(k) < 1+8+2+8 {
			return fmt.Errorf("end key %q too short", k)
		}
		end := readTime(k[1:])
		key, rest, err := readKey(k[9:])
		if err != nil {
			return err
		}
		if len(rest) != 8 {
			return fmt.Errorf("end key %q has %d start bytes", k, len(rest))
		}
		out = append(out, Entry{Key: key, Window: Window{Start: readTime(rest), End: end}})
		return nil
	})
	if err != nil {
		return nil, s.fail("range", err)
	}
	return out, nil
}

func (s *pebbleStore) Len() int { return s.n }
