// Package faultfs holds the filesystem faults of the stream store's tests
// and of the tests of the packages over it: a full disk, one operation on
// a shard's segment files that fails, writes to segment files cut short.
// Each is a pebble errorfs.Injector or a vfs.FS over another. Only tests
// import it.
package faultfs

import (
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// FillsDisk reports whether op is one that a full disk refuses: a write
// to a file, or the creation of one.
func FillsDisk(op errorfs.Op) bool {
	return op.Kind == errorfs.OpFileWriteAt || op.Kind == errorfs.OpFileWrite || op.Kind == errorfs.OpCreate
}

// DiskFull fails the operations a full disk refuses (FillsDisk) with
// ENOSPC while Full is set.
type DiskFull struct {
	Full atomic.Bool
}

func (d *DiskFull) String() string { return "a full disk" }

// MaybeError implements errorfs.Injector.
func (d *DiskFull) MaybeError(op errorfs.Op) error {
	if d.Full.Load() && FillsDisk(op) {
		return syscall.ENOSPC
	}
	return nil
}

// Segments fails the next operation of a kind on the segment files of
// each shard it is armed for, once per shard. The zero value is armed for
// none.
type Segments struct {
	mu sync.Mutex
	m  map[string]Fault // shard ID -> its fault
}

// Fault is an operation that fails and the error it fails with.
type Fault struct {
	Kind errorfs.OpKind
	Err  error
}

// Arm makes the next operation of kind on the segments of shard (a shard
// ID) fail with err, in place of the shard's fault armed before.
func (s *Segments) Arm(kind errorfs.OpKind, shard string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]Fault{}
	}
	s.m[shard] = Fault{kind, err}
}

// Armed reports whether shard's fault is armed still: no operation of its
// kind reached the shard's segments since Arm.
func (s *Segments) Armed(shard string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.m[shard]
	return ok
}

// Disarm forgets every fault still armed.
func (s *Segments) Disarm() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.m)
}

func (s *Segments) String() string { return "fail one op of some shards' segments" }

// MaybeError implements errorfs.Injector.
func (s *Segments) MaybeError(op errorfs.Op) error {
	if !IsSegment(op.Path) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, f := range s.m {
		if op.Kind == f.Kind && strings.Contains(op.Path, "/"+id+"/") {
			delete(s.m, id)
			return f.Err
		}
	}
	return nil
}

// IsSegment reports whether path names a segment file of the stream
// store.
func IsSegment(path string) bool { return strings.HasSuffix(path, ".seg") }

// IsShardSegment reports whether path names a segment file of the shard
// with ID shard.
func IsShardSegment(path, shard string) bool {
	return IsSegment(path) && strings.Contains(path, "/"+shard+"/")
}

// WriteAtFS is FS whose files opened for writing with a name that Match
// accepts have their WriteAt calls made by WriteAt (given the file, which
// writes for real): a filesystem that cuts writes short, as a full disk
// does.
type WriteAtFS struct {
	vfs.FS
	Match   func(name string) bool
	WriteAt func(f vfs.File, p []byte, off int64) (int, error)
}

// OpenReadWrite implements vfs.FS.
func (fs *WriteAtFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, cat, opts...)
	if err != nil || !fs.Match(name) {
		return f, err
	}
	return &writeAtFile{File: f, fs: fs}, nil
}

type writeAtFile struct {
	vfs.File
	fs *WriteAtFS
}

func (f *writeAtFile) WriteAt(p []byte, off int64) (int, error) { return f.fs.WriteAt(f.File, p, off) }
