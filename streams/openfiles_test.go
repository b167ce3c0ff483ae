package streams

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// outOfFiles fails every open and create with EMFILE while On is set, as
// a process at its open-file limit sees them.
type outOfFiles struct{ On atomic.Bool }

func (o *outOfFiles) String() string { return "no file descriptors left" }

func (o *outOfFiles) MaybeError(op errorfs.Op) error {
	if o.On.Load() && (op.Kind == errorfs.OpOpen || op.Kind == errorfs.OpCreate || op.Kind == errorfs.OpOpenDir) {
		return syscall.EMFILE
	}
	return nil
}

// TestOutOfFilesIsRetryable runs a store whose segment-file cache holds
// fewer files than its shards write, so puts reopen segments, and makes
// every open fail with EMFILE for a while: puts that need a file then fail
// with a retryable ErrUnavailable, and once descriptors are back every
// shard takes puts again without a restart. Every acknowledged record is
// there, also after reopening.
func TestOutOfFilesIsRetryable(t *testing.T) {
	for _, every := range []time.Duration{0, time.Millisecond} {
		t.Run(fmt.Sprintf("sync-interval-%v", every), func(t *testing.T) { testOutOfFiles(t, every) })
	}
}

func testOutOfFiles(t *testing.T, syncEvery time.Duration) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	inj := &outOfFiles{}
	s := openMem(t, errorfs.Wrap(mem, inj), Options{MaxOpenFiles: 2, SegmentBytes: 400, SyncInterval: syncEvery})
	const shards = 4
	info := mustCreate(t, s, "f", shards)
	acked := map[string]bool{}
	refused := 0
	put := func(i int) error {
		d := fmt.Sprintf("r%d", i)
		key := info.Shards[i%shards].Range.Start.String()
		_, err := s.Put(context.Background(), "f", []PutRecord{{PartitionKey: "k", ExplicitHashKey: key, Data: []byte(d)}})
		if err == nil {
			acked[d] = true
		}
		return err
	}
	i := 0
	for ; i < 40; i++ {
		if err := put(i); err != nil {
			t.Fatal(err)
		}
	}
	inj.On.Store(true)
	for ; i < 80; i++ {
		err := put(i)
		time.Sleep(syncEvery) // let interval syncs meet EMFILE too
		if err == nil {
			continue // the shard's segment was still open
		}
		refused++
		if !errors.Is(err, ErrUnavailable) || !Retriable(err) {
			t.Fatalf("put with no file descriptors left: %v, want a retryable ErrUnavailable", err)
		}
	}
	for sh := range shards {
		if _, err := s.Read("f", ShardID(sh), 0, 1000, 0); err != nil && (!errors.Is(err, ErrUnavailable) || !Retriable(err)) {
			t.Fatalf("read with no file descriptors left: %v, want a retryable ErrUnavailable", err)
		}
	}
	if refused == 0 {
		t.Fatal("no put needed to open a file: the test does not exercise EMFILE")
	}
	inj.On.Store(false)
	for ; i < 120; i++ {
		if err := put(i); err != nil {
			t.Fatalf("put once descriptors are back: %v", err)
		}
	}
	verify := func(s *Store) {
		t.Helper()
		got := map[string]bool{}
		for sh := range shards {
			for _, r := range readShard(t, s, "f", ShardID(sh), 5) {
				got[string(r.Data)] = true
			}
		}
		for d := range acked {
			if !got[d] {
				t.Fatalf("acknowledged record %s missing", d)
			}
		}
		if len(got) != len(acked) {
			t.Fatalf("read %d records, %d acknowledged: refused records came back", len(got), len(acked))
		}
	}
	verify(s)
	s.Close()
	s = openMem(t, mem, Options{})
	defer s.Close()
	verify(s)
	if len(s.Corruptions()) != 0 || len(s.Problems()) != 0 {
		t.Fatalf("running out of file descriptors left damage: %v %v", s.Corruptions(), s.Problems())
	}
}

// TestOutOfFilesErrorSaysSo: the retryable error of a put refused for want
// of descriptors says so (OutOfFiles), and a full disk's does not.
func TestOutOfFilesErrorSaysSo(t *testing.T) {
	sh := &shard{stream: "s", id: ShardID(0)}
	if err := sh.noFiles(fmt.Errorf("open: %w", syscall.EMFILE)); !OutOfFiles(err) || !Retriable(err) {
		t.Fatalf("%v: OutOfFiles %v, Retriable %v; want both", err, OutOfFiles(err), Retriable(err))
	}
	if err := sh.unavailable(syscall.ENOSPC); OutOfFiles(err) {
		t.Fatalf("a full disk's error reads as out of files: %v", err)
	}
}
