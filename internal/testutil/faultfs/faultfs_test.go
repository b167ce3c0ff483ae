package faultfs

import (
	"errors"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

func TestSegmentsFailOncePerShard(t *testing.T) {
	var s Segments
	op := func(kind errorfs.OpKind, path string) error { return s.MaybeError(errorfs.Op{Kind: kind, Path: path}) }
	if err := op(errorfs.OpFileWriteAt, "/d/s-1/shardId-000000000001/0.seg"); err != nil {
		t.Fatalf("unarmed: %v", err)
	}
	s.Arm(errorfs.OpFileWriteAt, "shardId-000000000001", syscall.ENOSPC)
	s.Arm(errorfs.OpFileSyncData, "shardId-000000000002", errorfs.ErrInjected)
	for _, o := range []struct {
		kind errorfs.OpKind
		path string
	}{
		{errorfs.OpFileSyncData, "/d/s-1/shardId-000000000001/0.seg"}, // another kind
		{errorfs.OpFileWriteAt, "/d/s-1/shardId-000000000000/0.seg"},  // another shard
		{errorfs.OpFileWriteAt, "/d/s-1/shardId-000000000001/meta"},   // not a segment
	} {
		if err := op(o.kind, o.path); err != nil {
			t.Fatalf("%v on %s: %v, want none", o.kind, o.path, err)
		}
	}
	if !s.Armed("shardId-000000000001") {
		t.Fatal("the fault went off on another operation")
	}
	if err := op(errorfs.OpFileWriteAt, "/d/s-1/shardId-000000000001/0.seg"); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("armed write: %v, want ENOSPC", err)
	}
	if s.Armed("shardId-000000000001") || op(errorfs.OpFileWriteAt, "/d/s-1/shardId-000000000001/0.seg") != nil {
		t.Fatal("the fault went off twice")
	}
	s.Disarm()
	if s.Armed("shardId-000000000002") || op(errorfs.OpFileSyncData, "/d/s-1/shardId-000000000002/0.seg") != nil {
		t.Fatal("a disarmed fault went off")
	}
}

func TestDiskFullRefusesWritesWhileFull(t *testing.T) {
	var d DiskFull
	w := errorfs.Op{Kind: errorfs.OpFileWriteAt, Path: "x"}
	if d.MaybeError(w) != nil {
		t.Fatal("refused with room")
	}
	d.Full.Store(true)
	if !errors.Is(d.MaybeError(w), syscall.ENOSPC) || d.MaybeError(errorfs.Op{Kind: errorfs.OpFileRead, Path: "x"}) != nil {
		t.Fatal("a full disk must refuse writes with ENOSPC and let reads through")
	}
}

func TestWriteAtFSCutsMatchingFiles(t *testing.T) {
	fs := &WriteAtFS{FS: vfs.NewMem(), Match: IsSegment, WriteAt: func(f vfs.File, p []byte, off int64) (int, error) {
		n, _ := f.WriteAt(p[:1], off)
		return n, syscall.ENOSPC
	}}
	for _, c := range []struct {
		name string
		n    int
	}{{"a.seg", 1}, {"a.meta", 3}} {
		f, err := fs.Create(c.name, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		f, err = fs.OpenReadWrite(c.name, vfs.WriteCategoryUnspecified)
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := f.WriteAt([]byte("abc"), 0); n != c.n {
			t.Errorf("%s: wrote %d bytes, want %d", c.name, n, c.n)
		}
		f.Close()
	}
}
