package window

import (
	"cmp"
	"slices"

	"github.com/runnel-dev/runnel/operators/aggregate"
)

// Window is the half-open event-time interval [Start, End) in epoch ms.
type Window struct {
	Start, End int64
}

// State is what a window keeps per key: one accumulator per aggregate.
// It serialises with aggregate.Instance.Marshal.
type State struct {
	Accs []aggregate.Accumulator
}

// Entry is one (key, window) and its state.
type Entry struct {
	Key    string
	Window Window
	State  *State
}

// Store holds window state per (key, window). The operator is its only
// user, from one goroutine; implementations need no locking. The stores
// over Pebble (NewPebbleStore, and the cached one of OpenState) implement
// the same contract with the Codec the operator hands them.
//
// An error from a store is a fault the operator cannot handle (Pebble
// failed, or state it holds cannot be decoded): the operator returns it
// from Process or OnWatermark, and the job restores from its checkpoint.
// The stores over Pebble return a *StoreError saying what was being done.
type Store interface {
	// Get returns the state of key's window w, or nil. It may be a copy:
	// the operator Puts every state it changed.
	Get(key string, w Window) (*State, error)
	// Put stores s as key's window w.
	Put(key string, w Window, s *State) error
	// Delete removes key's window w.
	Delete(key string, w Window) error
	// Windows returns key's windows (sessions are merged through it).
	Windows(key string) ([]Window, error)
	// Range returns the windows with lo < End <= hi ordered by End, then
	// key, then Start.
	Range(lo, hi int64) ([]Entry, error)
	// Len returns the number of (key, window) entries.
	Len() int
}

// memStore is the in-memory Store.
type memStore struct {
	wins map[string]map[Window]*State
	idx  endIndex
	n    int
}

type keyStart struct {
	key   string
	start int64
}

// endIndex orders (key, window) pairs by window end for Range.
type endIndex struct {
	ends  []int64 // distinct ends, sorted; may hold ends with no windows left (holes)
	byEnd map[int64]map[keyStart]struct{}
}

func (x *endIndex) add(key string, w Window) {
	if x.byEnd == nil {
		x.byEnd = map[int64]map[keyStart]struct{}{}
	}
	set := x.byEnd[w.End]
	if set == nil {
		set = map[keyStart]struct{}{}
		x.byEnd[w.End] = set
		x.addEnd(w.End)
	}
	set[keyStart{key, w.Start}] = struct{}{}
}

// addEnd inserts a distinct end; ends mostly arrive in increasing order.
func (x *endIndex) addEnd(e int64) {
	if n := len(x.ends); n == 0 || x.ends[n-1] < e {
		x.ends = append(x.ends, e)
		return
	}
	if i, found := slices.BinarySearch(x.ends, e); !found {
		x.ends = slices.Insert(x.ends, i, e)
	}
}

func (x *endIndex) remove(key string, w Window) {
	set := x.byEnd[w.End]
	delete(set, keyStart{key, w.Start})
	if len(set) == 0 {
		// The end stays in ends as a hole: Range drops leading holes, so
		// purging in end order costs O(1) per end.
		delete(x.byEnd, w.End)
	}
}

// between returns the entries with lo < End <= hi, ordered by End, key
// and Start, without their states.
func (x *endIndex) between(lo, hi int64) []Entry {
	for len(x.ends) > 0 && x.byEnd[x.ends[0]] == nil {
		x.ends = x.ends[1:]
	}
	if len(x.ends) == 0 {
		x.ends = nil // let the backing array go
	}
	var out []Entry
	i, _ := slices.BinarySearch(x.ends, lo)
	for ; i < len(x.ends) && x.ends[i] <= hi; i++ {
		end := x.ends[i]
		if end <= lo {
			continue
		}
		first := len(out)
		for ks := range x.byEnd[end] {
			out = append(out, Entry{Key: ks.key, Window: Window{ks.start, end}})
		}
		slices.SortFunc(out[first:], func(a, b Entry) int {
			return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Window.Start, b.Window.Start))
		})
	}
	return out
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() Store {
	return &memStore{wins: map[string]map[Window]*State{}}
}

func (m *memStore) Get(key string, w Window) (*State, error) {
	return m.wins[key][w], nil
}

func (m *memStore) Put(key string, w Window, s *State) error {
	ws := m.wins[key]
	if ws == nil {
		ws = map[Window]*State{}
		m.wins[key] = ws
	}
	if _, ok := ws[w]; !ok {
		m.n++
		m.idx.add(key, w)
	}
	ws[w] = s
	return nil
}

func (m *memStore) Delete(key string, w Window) error {
	ws := m.wins[key]
	if _, ok := ws[w]; !ok {
		return nil
	}
	m.n--
	delete(ws, w)
	if len(ws) == 0 {
		delete(m.wins, key)
	}
	m.idx.remove(key, w)
	return nil
}

func (m *memStore) Windows(key string) ([]Window, error) {
	ws := m.wins[key]
	out := make([]Window, 0, len(ws))
	for w := range ws {
		out = append(out, w)
	}
	return out, nil
}

func (m *memStore) Range(lo, hi int64) ([]Entry, error) {
	out := m.idx.between(lo, hi)
	for i := range out {
		out[i].State = m.wins[out[i].Key][out[i].Window]
	}
	return out, nil
}

func (m *memStore) Len() int { return m.n }
