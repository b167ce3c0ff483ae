package state

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// returns runs f and reports whether it returned within a minute: a call
// that waits for the disk to have room again never does.
func returns(f func() error) (error, bool) {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err, true
	case <-time.After(time.Minute):
		return nil, false
	}
}

// A disk without room for Pebble's tables (its log still has room, as a
// recycled log file does): Flush and Checkpoint fail at once with
// ErrDiskFull instead of waiting for room (Pebble retries the flush
// without end), the last checkpoint stays the latest, and once space is
// back the next checkpoint holds every write, also those made while the
// disk was full.
func TestCheckpointOnFullDisk(t *testing.T) {
	var full atomic.Bool
	var attempts atomic.Int64
	fs := errorfs.Wrap(vfs.NewMem(), errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && strings.HasSuffix(op.Path, ".sst") && (op.Kind == errorfs.OpCreate || op.Kind == errorfs.OpFileWrite) {
			if op.Kind == errorfs.OpCreate {
				attempts.Add(1)
			}
			return syscall.ENOSPC
		}
		return nil
	}))
	db := mustOpen(t, fs, Options{})
	stuck := false // a call left waiting holds the DB: Close would wait too
	defer func() {
		if !stuck {
			db.Close()
		}
	}()
	sp := mustSpace(t, db, "w", "0")
	put := func(from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			if err := sp.Set(fmt.Appendf(nil, "k%04d", i), fmt.Appendf(nil, "v%d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	put(0, 100)
	if _, err := db.Checkpoint(1, []byte("one")); err != nil {
		t.Fatal(err)
	}

	full.Store(true)
	put(100, 200)
	err, ok := returns(db.Flush)
	if stuck = !ok; stuck {
		t.Fatal("Flush waits for the disk to have room instead of failing")
	}
	if !errors.Is(err, ErrDiskFull) || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Flush on a full disk: %v, want ErrDiskFull and ENOSPC", err)
	}
	err, ok = returns(func() error { _, err := db.Checkpoint(2, []byte("two")); return err })
	if stuck = !ok; stuck {
		t.Fatal("Checkpoint waits for the disk to have room instead of failing")
	}
	if !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Checkpoint on a full disk: %v, want ErrDiskFull", err)
	}
	if cs := db.Checkpoints(); len(cs) != 1 || cs[0].Epoch != 1 {
		t.Fatalf("checkpoints after a failed one: %+v, want epoch 1 only", cs)
	}
	put(200, 300) // writes go on while the disk is full
	t.Logf("%d attempts to create a table while the disk was full", attempts.Load())

	full.Store(false)
	// Pebble retries its flush by itself; a checkpoint succeeds once it has.
	var epoch uint64 = 2
	testutil.Eventually(t, time.Minute, func() bool {
		epoch++
		_, err := db.Checkpoint(epoch, []byte("three"))
		if err != nil && !errors.Is(err, ErrDiskFull) {
			t.Fatalf("checkpoint once space is back: %v", err)
		}
		return err == nil
	}, "no checkpoint succeeds once space is back")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db, _, meta, err := Restore("job", Latest, Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if string(meta) != "three" {
		t.Fatalf("restored meta %q, want three", meta)
	}
	got := dump(t, mustSpace(t, db, "w", "0"))
	if len(got) != 300 {
		t.Fatalf("restored %d keys, want 300", len(got))
	}
	for i := range 300 {
		if v := got[fmt.Sprintf("k%04d", i)]; v != fmt.Sprintf("v%d", i) {
			t.Fatalf("k%04d = %q after restore", i, v)
		}
	}
}
