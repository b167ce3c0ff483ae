package streams

import (
	"context"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// limitedFS has a process's open-file limit: an open past limit handles
// fails with EMFILE until one is closed.
type limitedFS struct {
	vfs.FS
	limit int
	mu    sync.Mutex
	open  int
}

func (fs *limitedFS) take(name string) error {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if fs.open >= fs.limit {
		return &os.PathError{Op: "open", Path: name, Err: syscall.EMFILE}
	}
	fs.open++
	return nil
}

func (fs *limitedFS) wrap(f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		fs.mu.Lock()
		fs.open--
		fs.mu.Unlock()
		return nil, err
	}
	return &limitedFile{File: f, fs: fs}, nil
}

func (fs *limitedFS) Open(name string, opts ...vfs.OpenOption) (vfs.File, error) {
	if err := fs.take(name); err != nil {
		return nil, err
	}
	return fs.wrap(fs.FS.Open(name, opts...))
}

func (fs *limitedFS) OpenReadWrite(name string, c vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	if err := fs.take(name); err != nil {
		return nil, err
	}
	return fs.wrap(fs.FS.OpenReadWrite(name, c, opts...))
}

type limitedFile struct {
	vfs.File
	fs     *limitedFS
	once   sync.Once
	closed bool
}

func (f *limitedFile) Close() error {
	f.once.Do(func() {
		f.fs.mu.Lock()
		f.fs.open--
		f.closed = true
		f.fs.mu.Unlock()
	})
	return f.File.Close()
}

// TestFileCacheGivesBackIdleOnNoFiles: the cache holds idle handles up to
// its capacity, which may be more than the process has descriptors for
// at a time (connections take them too); an open that finds none left
// closes idle handles of the cache and succeeds, instead of failing while
// the cache sits on descriptors it does not use. With every handle in use
// it fails with EMFILE, and no handle in use is closed.
func TestFileCacheGivesBackIdleOnNoFiles(t *testing.T) {
	mem := vfs.NewMem()
	const files = 6
	for i := range files {
		f, err := mem.Create(fmt.Sprintf("f%d", i), vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	fs := &limitedFS{FS: mem, limit: 4}
	c := newFileCache(fs, 100)
	for i := range 4 {
		cf, err := c.acquire(fmt.Sprintf("f%d", i), false)
		if err != nil {
			t.Fatal(err)
		}
		c.release(cf)
	}
	cf, err := c.acquire("f4", true)
	if err != nil {
		t.Fatalf("open with every descriptor held by idle handles of the cache: %v", err)
	}
	if st := c.stats(); st.Open > 4 || st.Evicted == 0 {
		t.Fatalf("cache after an open that found no descriptors: %+v, want idle handles closed", st)
	}
	// Every descriptor in use: the open fails, and no handle in use is
	// closed under its user.
	var pinned []*cachedFile
	for i := range 4 {
		p, err := c.acquire(fmt.Sprintf("f%d", i), false)
		if err != nil {
			break
		}
		pinned = append(pinned, p)
	}
	if _, err := c.acquire("f5", false); !isOutOfFiles(err) {
		t.Fatalf("open with every descriptor in use: %v, want EMFILE", err)
	}
	for _, p := range append(pinned, cf) {
		fs.mu.Lock()
		closed := p.f.(*limitedFile).closed
		fs.mu.Unlock()
		if closed {
			t.Fatalf("handle %s in use was closed", p.key.path)
		}
	}
	c.release(cf)
	for _, p := range pinned {
		c.release(p)
	}
	if fs.open != c.stats().Open {
		t.Fatalf("%d descriptors open, the cache counts %d", fs.open, c.stats().Open)
	}
}

func (fs *limitedFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if err := fs.take(name); err != nil {
		return nil, err
	}
	return fs.wrap(fs.FS.Create(name, c))
}

// TestStoreGivesBackIdleOnNoFiles: a put and a read that need descriptors
// when every one is held by idle handles of the file cache (read handles
// of the shard's segments) get some of them back and succeed.
func TestStoreGivesBackIdleOnNoFiles(t *testing.T) {
	checkGoroutines(t)
	fs := &limitedFS{FS: vfs.NewMem(), limit: 1 << 20}
	s := openMem(t, fs, Options{MaxOpenFiles: 100, SegmentBytes: 200, PrefillBytes: -1})
	defer s.Close()
	mustCreate(t, s, "n", 1)
	data := make([]byte, 150) // each put fills a segment: the next rolls
	for range 4 {
		if _, err := s.Put(context.Background(), "n", []PutRecord{{PartitionKey: "k", Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	if recs := readShard(t, s, "n", ShardID(0), 10); len(recs) != 4 {
		t.Fatalf("read %d records, want 4", len(recs))
	}
	fs.mu.Lock()
	// Every descriptor in use, most by idle read handles, and one fewer
	// than now.
	fs.limit = fs.open - 1
	fs.mu.Unlock()
	if _, err := s.Put(context.Background(), "n", []PutRecord{{PartitionKey: "k", Data: data}}); err != nil {
		t.Fatalf("a put with every descriptor held by idle handles: %v", err)
	}
	if recs := readShard(t, s, "n", ShardID(0), 10); len(recs) != 5 {
		t.Fatalf("read %d records, want 5", len(recs))
	}
}
