package streams

import (
	"container/list"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// fileCache bounds the segment files a Store keeps open. A server with many
// shards has many segments, and an open handle per segment (and one more
// per shard for writing) runs out of file descriptors long before it runs
// out of disk; idle segments are therefore closed, least recently used
// first, and opened again when next read or written.
//
// A handle is pinned while a caller uses it (acquire to release) and is
// never closed under it: the cache may hold more than its capacity for as
// long as every handle is pinned.
type fileCache struct {
	fs  vfs.FS
	cap int
	mu  struct {
		sync.Mutex
		lru     list.List // of *cachedFile, most recently released first
		files   map[fileKey]*cachedFile
		open    int   // handles open now
		opens   int64 // handles opened since the store opened
		evicted int64 // handles closed to stay under the capacity
	}
}

type fileKey struct {
	path  string
	write bool
}

type cachedFile struct {
	key  fileKey
	f    vfs.File
	refs int
	elem *list.Element // in lru while refs == 0
	// dropped: the file was removed or replaced; close it once unpinned
	// and never hand it out again.
	dropped bool
}

// DefaultMaxOpenFiles is the default capacity of the segment file cache.
const DefaultMaxOpenFiles = 1024

func newFileCache(fs vfs.FS, capacity int) *fileCache {
	if capacity <= 0 {
		capacity = DefaultMaxOpenFiles
	}
	c := &fileCache{fs: fs, cap: max(capacity, 2)}
	c.mu.files = map[fileKey]*cachedFile{}
	return c
}

// acquire returns a pinned handle on path (read-only, or read-write when
// write is set), opening it if it is not cached. The caller releases it.
func (c *fileCache) acquire(path string, write bool) (*cachedFile, error) {
	k := fileKey{path, write}
	c.mu.Lock()
	cf := c.pinLocked(k)
	c.mu.Unlock()
	if cf != nil {
		return cf, nil
	}
	// Open outside the lock: it is a system call, and two callers racing
	// for the same file both opening it is harmless (one handle is closed).
	f, err := c.open(path, write)
	if err != nil && isOutOfFiles(err) && c.shed(shedOnNoFiles) > 0 {
		// The process has no descriptors left: idle handles of the cache
		// give theirs back, and the open is tried again once.
		f, err = c.open(path, write)
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if pinned := c.pinLocked(k); pinned != nil {
		c.mu.Unlock()
		f.Close()
		return pinned, nil
	}
	cf = &cachedFile{key: k, f: f, refs: 1}
	c.mu.files[k] = cf
	c.mu.open++
	c.mu.opens++
	victims := c.evictLocked()
	c.mu.Unlock()
	closeAll(victims)
	return cf, nil
}

// pinLocked pins the cached handle of k, taking it off the LRU list, or
// returns nil when k is not cached.
func (c *fileCache) pinLocked(k fileKey) *cachedFile {
	cf := c.mu.files[k]
	if cf == nil {
		return nil
	}
	if cf.elem != nil {
		c.mu.lru.Remove(cf.elem)
		cf.elem = nil
	}
	cf.refs++
	return cf
}

// release unpins a handle from acquire.
func (c *fileCache) release(cf *cachedFile) {
	c.mu.Lock()
	cf.refs--
	if cf.refs > 0 {
		c.mu.Unlock()
		return
	}
	if cf.dropped {
		c.mu.open--
		c.mu.Unlock()
		cf.f.Close()
		return
	}
	cf.elem = c.mu.lru.PushFront(cf)
	victims := c.evictLocked()
	c.mu.Unlock()
	closeAll(victims)
}

func (c *fileCache) open(path string, write bool) (vfs.File, error) {
	if write {
		return c.fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	}
	return c.fs.Open(path)
}

// evictLocked unlinks unpinned handles, oldest first, until the cache is
// within its capacity, and returns them for closing outside the lock.
func (c *fileCache) evictLocked() []vfs.File {
	var out []vfs.File
	for c.mu.open > c.cap {
		f := c.unlinkOldestLocked()
		if f == nil {
			break
		}
		out = append(out, f)
	}
	return out
}

// shedOnNoFiles is how many idle handles an open that found no file
// descriptors left closes before it tries again.
const shedOnNoFiles = 8

// shed closes up to n unpinned handles, oldest first, and returns how
// many it closed.
func (c *fileCache) shed(n int) int {
	var out []vfs.File
	c.mu.Lock()
	for len(out) < n {
		f := c.unlinkOldestLocked()
		if f == nil {
			break
		}
		out = append(out, f)
	}
	c.mu.Unlock()
	closeAll(out)
	return len(out)
}

// unlinkOldestLocked unlinks the least recently used unpinned handle and
// returns its file for closing outside the lock, or nil when every handle
// is pinned.
func (c *fileCache) unlinkOldestLocked() vfs.File {
	e := c.mu.lru.Back()
	if e == nil {
		return nil
	}
	cf := e.Value.(*cachedFile)
	c.mu.lru.Remove(e)
	cf.elem = nil
	delete(c.mu.files, cf.key)
	c.mu.open--
	c.mu.evicted++
	return cf.f
}

// drop forgets path's handles (both modes): they are closed now, or when
// their last user releases them. Called before a file is removed or
// replaced, so that nobody reads the old file through a cached handle.
func (c *fileCache) drop(path string) {
	var victims []vfs.File
	c.mu.Lock()
	for _, w := range []bool{false, true} {
		k := fileKey{path, w}
		cf := c.mu.files[k]
		if cf == nil {
			continue
		}
		delete(c.mu.files, k)
		if cf.refs > 0 {
			cf.dropped = true
			continue
		}
		c.mu.lru.Remove(cf.elem)
		cf.elem = nil
		c.mu.open--
		victims = append(victims, cf.f)
	}
	c.mu.Unlock()
	closeAll(victims)
}

// FileCacheStats are the segment file cache's figures.
type FileCacheStats struct {
	Open, Capacity int
	Opens, Evicted int64
}

func (c *fileCache) stats() FileCacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return FileCacheStats{Open: c.mu.open, Capacity: c.cap, Opens: c.mu.opens, Evicted: c.mu.evicted}
}

func closeAll(fs []vfs.File) {
	for _, f := range fs {
		f.Close()
	}
}
