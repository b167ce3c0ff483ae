package window

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/runnel-dev/runnel/state"
)

// Defaults of an operator with durable state, for Config fields left 0.
const (
	// DefaultStateCacheEntries bounds the cache (Config.StateCacheEntries).
	DefaultStateCacheEntries = 1 << 18
	// DefaultStateDirtyEntries bounds the changes SnapshotState writes
	// (Config.StateDirtyEntries).
	DefaultStateDirtyEntries = 1 << 14
)

// cachedStore is the Store of an operator with durable state: a write-back
// cache of whole keys in front of a state.Space laid out like
// pebbleStore's ('w' and 'e' families).
//
// The unit of caching is a key with all its windows. For a cached key the
// cache is the truth (Get, Put, Delete and Windows touch only memory; what
// Pebble holds for it may be older); a key not cached has its windows in
// Pebble, or none. So per record the store costs a few map operations, like
// memStore. Pebble is written in four cases only, each time in one batch:
// when the cache holds more than max entries (windows plus one per key),
// keys are evicted with their changes; when more than maxDirty windows
// (or deletions) are not yet written, all changes are written ahead of the
// checkpoint, so the flush at the barrier stays short; a Delete of a key
// not cached; and at flush (SnapshotState), which writes every changed
// window and removes every deleted one.
//
// Like pebbleStore, a failing Pebble read or write, or state the codec
// cannot decode, is a *StoreError saying what was being done.
type cachedStore struct {
	ps       *pebbleStore // key layout, reads and decoding
	max      int
	maxDirty int
	ndirty   int    // dirty entries plus deletions not yet written
	kbuf     []byte // scratch for Pebble keys (batches copy them)

	keys  map[string]*keyCache
	last  *keyCache // the key used last (a record's Get and Put go to one key)
	idx   endIndex  // the windows of cached keys
	size  int       // cached windows plus cached keys
	dirty []*keyCache

	n int // windows, cached or not
	// outside counts the windows in Pebble of keys not cached: while it
	// is 0, no read goes to Pebble.
	outside int
}

// keyCache is one key's windows.
type keyCache struct {
	key  string
	wins map[Window]*cacheEntry
	// deleted are windows Pebble holds that were deleted since the key was
	// last flushed.
	deleted []Window
	dirty   bool // in cachedStore.dirty: has changes Pebble lacks
	ref     bool // used since the eviction sweep last passed it
}

type cacheEntry struct {
	st        *State // nil until raw is decoded
	raw       []byte
	dirty     bool // st may differ from what Pebble holds
	persisted bool // Pebble holds the window (its 'w' and 'e' keys)
}

// openCachedStore opens the store over space, which holds windows (as
// recorded with its last flush); windows < 0 means unknown, and the space
// is scanned to count them (state written by a pebbleStore). max and
// maxDirty are the Config's (defaults filled in).
func openCachedStore(space *state.Space, codec Codec, max, maxDirty, windows int) (*cachedStore, error) {
	c := &cachedStore{ps: &pebbleStore{space: space, codec: codec}, max: max, maxDirty: maxDirty, keys: map[string]*keyCache{}}
	if windows < 0 {
		windows = 0
		err := space.Scan([]byte{familyWindow}, func(_, _ []byte) error {
			windows++
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("count windows: %w", err)
		}
	}
	c.n, c.outside = windows, windows
	return c, nil
}

// keyOf returns key's cache, loading it from Pebble if it is not cached.
// Every operation starts here, before it changes anything: the place to
// write changes ahead of the checkpoint.
func (c *cachedStore) keyOf(key string) (*keyCache, error) {
	if c.ndirty > c.maxDirty {
		if err := c.writeBehind(); err != nil {
			return nil, err
		}
	}
	if kc := c.last; kc != nil && kc.key == key {
		return kc, nil
	}
	kc := c.keys[key]
	if kc == nil {
		var err error
		if kc, err = c.load(key); err != nil {
			return nil, err
		}
	}
	kc.ref = true
	c.last = kc
	return kc, nil
}

// load reads key's windows from Pebble into the cache (their states stay
// encoded until used).
func (c *cachedStore) load(key string) (*keyCache, error) {
	kc := &keyCache{key: key, wins: map[Window]*cacheEntry{}}
	if c.outside > 0 {
		prefix := appendKey([]byte{familyWindow}, key)
		err := c.ps.space.Scan(prefix, func(k, v []byte) error {
			rest := k[len(prefix):]
			if len(rest) != 16 {
				return fmt.Errorf("window key %q has %d time bytes", k, len(rest))
			}
			w := Window{Start: readTime(rest), End: readTime(rest[8:])}
			kc.wins[w] = &cacheEntry{raw: slices.Clone(v), persisted: true}
			return nil
		})
		if err != nil {
			return nil, c.ps.fail("load "+key, err)
		}
		c.outside -= len(kc.wins)
	}
	c.keys[key] = kc
	for w := range kc.wins {
		c.idx.add(key, w)
	}
	c.size += 1 + len(kc.wins)
	return kc, c.evict(kc)
}

func (c *cachedStore) state(e *cacheEntry) (*State, error) {
	if e.st == nil {
		st, err := c.ps.decode(e.raw)
		if err != nil {
			return nil, err
		}
		e.st, e.raw = st, nil
	}
	return e.st, nil
}

func (c *cachedStore) touch(kc *keyCache, e *cacheEntry) {
	if !e.dirty {
		e.dirty = true
		c.ndirty++
	}
	if !kc.dirty {
		kc.dirty = true
		c.dirty = append(c.dirty, kc)
	}
}

// Get marks the window changed: the operator may update the state in place
// before it Puts it, or (if a custom aggregate fails) without Putting it.
func (c *cachedStore) Get(key string, w Window) (*State, error) {
	kc, err := c.keyOf(key)
	if err != nil {
		return nil, err
	}
	e := kc.wins[w]
	if e == nil {
		return nil, nil
	}
	c.touch(kc, e)
	return c.state(e)
}

func (c *cachedStore) Put(key string, w Window, s *State) error {
	kc, err := c.keyOf(key)
	if err != nil {
		return err
	}
	e := kc.wins[w]
	if e != nil {
		e.st, e.raw = s, nil
		c.touch(kc, e)
		return nil
	}
	e = &cacheEntry{st: s}
	kc.wins[w] = e
	c.idx.add(key, w)
	c.n++
	c.size++
	c.touch(kc, e)
	return c.evict(kc)
}

// Delete of a window of a key not cached goes straight to Pebble: purging
// windows after a restore need not load their keys.
func (c *cachedStore) Delete(key string, w Window) error {
	if c.ndirty > c.maxDirty {
		if err := c.writeBehind(); err != nil {
			return err
		}
	}
	kc := c.last
	if kc == nil || kc.key != key {
		if kc = c.keys[key]; kc == nil {
			return c.deleteUncached(key, w)
		}
	}
	e := kc.wins[w]
	if e == nil {
		return nil
	}
	delete(kc.wins, w)
	c.idx.remove(key, w)
	c.n--
	c.size--
	if e.dirty {
		c.ndirty--
	}
	if e.persisted {
		kc.deleted = append(kc.deleted, w)
		c.ndirty++
		if !kc.dirty {
			kc.dirty = true
			c.dirty = append(c.dirty, kc)
		}
	}
	return nil
}

func (c *cachedStore) deleteUncached(key string, w Window) error {
	if c.outside == 0 {
		return nil
	}
	wk := windowKey(key, w)
	if _, ok, err := c.ps.get(wk); !ok || err != nil {
		return err
	}
	b := c.ps.space.NewBatch()
	b.Delete(wk)
	b.Delete(endKey(key, w))
	if err := b.Commit(); err != nil {
		return c.ps.fail("delete", err)
	}
	c.n--
	c.outside--
	return nil
}

func (c *cachedStore) Windows(key string) ([]Window, error) {
	kc, err := c.keyOf(key)
	if err != nil {
		return nil, err
	}
	out := make([]Window, 0, len(kc.wins))
	for w := range kc.wins {
		out = append(out, w)
	}
	return out, nil
}

// Range merges the cached keys' windows with those of keys only Pebble
// holds (read without caching them: firing reads a window once).
func (c *cachedStore) Range(lo, hi int64) ([]Entry, error) {
	if lo >= hi {
		return nil, nil
	}
	out := c.idx.between(lo, hi)
	var err error
	for i := range out {
		if out[i].State, err = c.state(c.keys[out[i].Key].wins[out[i].Window]); err != nil {
			return nil, err
		}
	}
	if c.outside == 0 {
		return out, nil
	}
	cached := len(out)
	uncached, err := c.ps.rangeKeys(lo, hi)
	if err != nil {
		return nil, err
	}
	for _, e := range uncached {
		if _, ok := c.keys[e.Key]; ok {
			continue
		}
		if e.State, err = c.ps.state(e.Key, e.Window); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if len(out) > cached && cached > 0 {
		slices.SortFunc(out, func(a, b Entry) int {
			return cmp.Or(cmp.Compare(a.Window.End, b.Window.End), cmp.Compare(a.Key, b.Key), cmp.Compare(a.Window.Start, b.Window.Start))
		})
	}
	return out, nil
}

func (c *cachedStore) Len() int { return c.n }

// flushKey adds kc's changes to b and marks them written.
func (c *cachedStore) flushKey(kc *keyCache, b *state.Batch) error {
	// Deletions first: a window deleted and made again is then set.
	for _, w := range kc.deleted {
		c.kbuf = appendWindowKey(c.kbuf[:0], kc.key, w)
		b.Delete(c.kbuf)
		c.kbuf = appendEndKey(c.kbuf[:0], kc.key, w)
		b.Delete(c.kbuf)
	}
	c.ndirty -= len(kc.deleted)
	kc.deleted = nil
	for w, e := range kc.wins {
		if !e.dirty {
			continue
		}
		v, err := c.ps.codec.Marshal(e.st)
		if err != nil {
			return fmt.Errorf("encode state of %q %v: %w", kc.key, w, err)
		}
		c.kbuf = appendWindowKey(c.kbuf[:0], kc.key, w)
		b.Set(c.kbuf, v)
		if !e.persisted {
			c.kbuf = appendEndKey(c.kbuf[:0], kc.key, w)
			b.Set(c.kbuf, nil)
			e.persisted = true
		}
		e.dirty = false
		c.ndirty--
	}
	kc.dirty = false
	return nil
}

// flush adds every change since the last flush to b.
func (c *cachedStore) flush(b *state.Batch) error {
	for _, kc := range c.dirty {
		// An evicted key was flushed then, and is no longer dirty.
		if !kc.dirty {
			continue
		}
		if err := c.flushKey(kc, b); err != nil {
			return err
		}
	}
	clear(c.dirty)
	c.dirty = c.dirty[:0]
	return nil
}

// writeBehind writes every change in one batch, between checkpoints.
func (c *cachedStore) writeBehind() error {
	b := c.ps.space.NewBatch()
	if err := c.flush(b); err != nil {
		return c.ps.fail("write changes", err)
	}
	if err := b.Commit(); err != nil {
		return c.ps.fail("write changes", err)
	}
	return nil
}

// evict brings the cache back to 7/8 of max once it holds more than max,
// keeping keep (the key in use). A key used since the sweep last saw it
// gets a second chance, as in CLOCK; the sweep starts at Go's random map
// position. The evicted keys' changes go to Pebble in one batch.
func (c *cachedStore) evict(keep *keyCache) error {
	if c.size <= c.max {
		return nil
	}
	target := c.max - c.max/8
	b := c.ps.space.NewBatch()
	for pass := 0; pass < 2 && c.size > target; pass++ {
		for key, kc := range c.keys {
			if c.size <= target {
				break
			}
			if kc == keep {
				continue
			}
			if kc.ref && pass == 0 {
				kc.ref = false
				continue
			}
			if kc.dirty {
				if err := c.flushKey(kc, b); err != nil {
					return c.ps.fail("evict", err)
				}
			}
			c.outside += len(kc.wins)
			for w := range kc.wins {
				c.idx.remove(key, w)
			}
			c.size -= 1 + len(kc.wins)
			delete(c.keys, key)
			if c.last == kc {
				c.last = nil
			}
		}
	}
	if err := b.Commit(); err != nil {
		return c.ps.fail("evict", err)
	}
	return nil
}
