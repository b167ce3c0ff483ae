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
// user, from one goroutine; implementations need no locking. A store
// backed by Pebble implements the same contract (issue 5) with the Codec
// the operator hands it.
type Store interface {
	// Get returns the state of key's window w, or nil. It may be a copy:
	// the operator Puts every state it changed.
	Get(key string, w Window) *State
	// Put stores s as key's window w.
	Put(key string, w Window, s *State)
	// Delete removes key's window w.
	Delete(key string, w Window)
	// Windows returns key's windows (sessions are merged through it).
	Windows(key string) []Window
	// Range returns the windows with lo < End <= hi ordered by End, then
	// key, then Start.
	Range(lo, hi int64) []Entry
	// Len returns the number of (key, window) entries.
	Len() int
}

// memStore is the in-memory Store.
type memStore struct {
	wins  map[string]map[Window]*State
	ends  []int64 // distinct ends, sorted; may hold ends with no windows left (holes)
	byEnd map[int64]map[keyStart]struct{}
	n     int
}

type keyStart struct {
	key   string
	start int64
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() Store {
	return &memStore{wins: map[string]map[Window]*State{}, byEnd: map[int64]map[keyStart]struct{}{}}
}

func (m *memStore) Get(key string, w Window) *State {
	return m.wins[key][w]
}

func (m *memStore) Put(key string, w Window, s *State) {
	ws := m.wins[key]
	if ws == nil {
		ws = map[Window]*State{}
		m.wins[key] = ws
	}
	if _, ok := ws[w]; !ok {
		m.n++
		set := m.byEnd[w.End]
		if set == nil {
			set = map[keyStart]struct{}{}
			m.byEnd[w.End] = set
			m.addEnd(w.End)
		}
		set[keyStart{key, w.Start}] = struct{}{}
	}
	ws[w] = s
}

// addEnd inserts a distinct end; ends mostly arrive in increasing order.
func (m *memStore) addEnd(e int64) {
	if n := len(m.ends); n == 0 || m.ends[n-1] < e {
		m.ends = append(m.ends, e)
		return
	}
	if i, found := slices.BinarySearch(m.ends, e); !found {
		m.ends = slices.Insert(m.ends, i, e)
	}
}

func (m *memStore) Delete(key string, w Window) {
	ws := m.wins[key]
	if _, ok := ws[w]; !ok {
		return
	}
	m.n--
	delete(ws, w)
	if len(ws) == 0 {
		delete(m.wins, key)
	}
	set := m.byEnd[w.End]
	delete(set, keyStart{key, w.Start})
	if len(set) == 0 {
		// The end stays in ends as a hole: Range drops leading holes, so
		// purging in end order costs O(1) per end.
		delete(m.byEnd, w.End)
	}
}

func (m *memStore) Windows(key string) []Window {
	ws := m.wins[key]
	out := make([]Window, 0, len(ws))
	for w := range ws {
		out = append(out, w)
	}
	return out
}

func (m *memStore) Range(lo, hi int64) []Entry {
	for len(m.ends) > 0 && m.byEnd[m.ends[0]] == nil {
		m.ends = m.ends[1:]
	}
	if len(m.ends) == 0 {
		m.ends = nil // let the backing array go
	}
	var out []Entry
	i, _ := slices.BinarySearch(m.ends, lo)
	for ; i < len(m.ends) && m.ends[i] <= hi; i++ {
		end := m.ends[i]
		if end <= lo {
			continue
		}
		first := len(out)
		for ks := range m.byEnd[end] {
			w := Window{ks.start, end}
			out = append(out, Entry{Key: ks.key, Window: w, State: m.wins[ks.key][w]})
		}
		slices.SortFunc(out[first:], func(a, b Entry) int {
			return cmp.Or(cmp.Compare(a.Key, b.Key), cmp.Compare(a.Window.Start, b.Window.Start))
		})
	}
	return out
}

func (m *memStore) Len() int { return m.n }
