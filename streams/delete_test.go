package streams

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// crashOpts are the options of the crash tests of whole operations: no
// background writes (prefill, durable positions, retention), so that the
// k-th write is the same in every run.
func crashOpts() Options {
	return Options{PrefillBytes: -1, SegmentBytes: 400, DurableInterval: 1000 * time.Hour, RetentionCheck: 1000 * time.Hour}
}

// wholeStream is what a stream held before a crashed operation.
type wholeStream struct {
	tag     uint64
	shards  int
	records map[string][]string // shard ID: data, in order
}

func snapshotStream(t *testing.T, s *Store, name string) wholeStream {
	t.Helper()
	in, err := s.DescribeStream(name)
	if err != nil {
		t.Fatalf("describe %s: %v", name, err)
	}
	w := wholeStream{tag: in.SeqTag, shards: len(in.Shards), records: map[string][]string{}}
	for _, sh := range in.Shards {
		for _, r := range readShard(t, s, name, sh.ID, 3) {
			w.records[sh.ID] = append(w.records[sh.ID], string(r.Data))
		}
	}
	return w
}

// sameStream fails unless stream name of s is w: its incarnation, shards
// and records.
func sameStream(t *testing.T, s *Store, name string, w wholeStream, what string) {
	t.Helper()
	got := snapshotStream(t, s, name)
	if got.tag != w.tag || got.shards != w.shards {
		t.Fatalf("%s: stream %s has tag %d and %d shards, want %d and %d", what, name, got.tag, got.shards, w.tag, w.shards)
	}
	for id, recs := range w.records {
		if !slices.Equal(got.records[id], recs) {
			t.Fatalf("%s: stream %s shard %s holds %q, want %q", what, name, id, got.records[id], recs)
		}
	}
}

// checkCleanDirs fails unless streams/ holds exactly the directories of
// the store's streams (no tombstone, no orphan) and opening reported no
// problem.
func checkCleanDirs(t *testing.T, s *Store, what string) {
	t.Helper()
	if p := s.Problems(); len(p) > 0 {
		t.Fatalf("%s: opening reported %s: %s", what, p[0].Kind, p[0].Message)
	}
	dirs, err := s.streamDirs()
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	s.metaMu.Lock()
	for _, st := range s.streamList() {
		want = append(want, st.meta.Dir)
	}
	s.metaMu.Unlock()
	slices.Sort(dirs)
	slices.Sort(want)
	if !slices.Equal(dirs, want) {
		t.Fatalf("%s: streams/ holds %v, want the streams' directories %v", what, dirs, want)
	}
}

// crashEach runs op against a store holding streams "d" (2 shards) and
// "e" (1 shard) with records, crashing before its k-th filesystem write
// for every k, keeping only synced data or also half the unsynced; after
// the crash it opens the store (also crashing that open before each of
// its writes, then opening again), and check judges "d" against what it
// held before. "e" must be untouched, and nothing may be left over.
func crashEach(t *testing.T, op func(s *Store) error, check func(t *testing.T, s *Store, before wholeStream, what string)) {
	for _, unsynced := range []int{0, 50} {
		for k := 1; ; k++ {
			what := fmt.Sprintf("unsynced %d%%, crash before write %d", unsynced, k)
			mem := vfs.NewCrashableMem()
			inj := &crashInjector{mem: mem}
			o := crashOpts()
			s := openMem(t, errorfs.Wrap(mem, inj), o)
			mustCreate(t, s, "d", 2)
			mustCreate(t, s, "e", 1)
			for i := 0; i < 12; i++ {
				putOne(t, s, "d", keyFor(i), payload(fmt.Sprintf("d%d|", i), 60))
				putOne(t, s, "e", keyFor(i), payload(fmt.Sprintf("e%d|", i), 60))
			}
			d, e := snapshotStream(t, s, "d"), snapshotStream(t, s, "e")
			cfg := vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(k), 3))}
			inj.arm(k, cfg)
			if err := op(s); err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			clone, reached := inj.crashReached()
			s.Close()
			if !reached {
				if k < 5 {
					t.Fatalf("the operation made only %d writes", k-1)
				}
				t.Logf("unsynced %d%%: crashed before each of %d writes", unsynced, k-1)
				break
			}
			for j := 1; ; j++ {
				// Open crashing before its j-th write; the next open must
				// finish what both crashes left.
				oinj := &crashInjector{mem: clone}
				oinj.arm(j, vfs.CrashCloneCfg{})
				o := crashOpts()
				o.FS, o.Logger = errorfs.Wrap(clone, oinj), quietLogger()
				s, err := Open(memDir, o)
				if err != nil {
					t.Fatalf("%s, open crashing before write %d: %v", what, j, err)
				}
				again, reached := oinj.crashReached()
				s.Close()
				if !reached {
					again = clone // the open made fewer writes: open the crash itself
				}
				wj := fmt.Sprintf("%s, then open crashing before write %d", what, j)
				s = openMem(t, again, crashOpts())
				if c := s.Corruptions(); len(c) > 0 && unsynced == 0 {
					t.Fatalf("%s: damage reported: %v", wj, c[0].Error())
				}
				checkCleanDirs(t, s, wj)
				sameStream(t, s, "e", e, wj)
				check(t, s, d, wj)
				s.Close()
				if !reached {
					break
				}
			}
		}
	}
}

// TestDeleteCrashAtEveryWrite: a crash at any write of a delete leaves
// the stream whole or gone, no directory behind, and a stream created
// again under the name afterwards is new and empty.
func TestDeleteCrashAtEveryWrite(t *testing.T) {
	checkGoroutines(t)
	crashEach(t, func(s *Store) error { return s.DeleteStream("d") },
		func(t *testing.T, s *Store, before wholeStream, what string) {
			if _, err := s.DescribeStream("d"); err == nil {
				sameStream(t, s, "d", before, what)
				if err := s.DeleteStream("d"); err != nil {
					t.Fatalf("%s: delete again: %v", what, err)
				}
			} else if !errors.Is(err, ErrStreamNotFound) {
				t.Fatalf("%s: describe d: %v", what, err)
			}
			in := mustCreate(t, s, "d", 1)
			if in.SeqTag == before.tag {
				t.Fatalf("%s: the new d has the old sequence tag", what)
			}
			if got := readShard(t, s, "d", ShardID(0), 10); len(got) > 0 {
				t.Fatalf("%s: the new d holds %d records", what, len(got))
			}
			checkCleanDirs(t, s, what+", created again")
		})
}

// TestDeleteAndCreateCrashAtEveryWrite: a crash at any write of a delete
// followed by creating the stream again leaves the old stream whole, no
// stream, or the new one, empty; nothing behind.
func TestDeleteAndCreateCrashAtEveryWrite(t *testing.T) {
	checkGoroutines(t)
	crashEach(t, func(s *Store) error {
		if err := s.DeleteStream("d"); err != nil {
			return err
		}
		_, err := s.CreateStream("d", 3, CreateOptions{})
		return err
	}, func(t *testing.T, s *Store, before wholeStream, what string) {
		in, err := s.DescribeStream("d")
		switch {
		case errors.Is(err, ErrStreamNotFound):
		case err != nil:
			t.Fatalf("%s: describe d: %v", what, err)
		case in.SeqTag == before.tag:
			sameStream(t, s, "d", before, what)
		default:
			if len(in.Shards) != 3 {
				t.Fatalf("%s: the new d has %d shards", what, len(in.Shards))
			}
			for _, sh := range in.Shards {
				if got := readShard(t, s, "d", sh.ID, 10); len(got) > 0 {
					t.Fatalf("%s: the new d holds %d records", what, len(got))
				}
			}
			putOne(t, s, "d", "k", []byte("new"))
		}
	})
}

// TestCreateCrashAtEveryWrite: a crash at any write of a create leaves no
// stream or a whole one that takes records, and nothing behind.
func TestCreateCrashAtEveryWrite(t *testing.T) {
	checkGoroutines(t)
	crashEach(t, func(s *Store) error {
		_, err := s.CreateStream("n", 3, CreateOptions{})
		return err
	}, func(t *testing.T, s *Store, before wholeStream, what string) {
		sameStream(t, s, "d", before, what)
		in, err := s.DescribeStream("n")
		switch {
		case errors.Is(err, ErrStreamNotFound):
			return
		case err != nil:
			t.Fatalf("%s: describe n: %v", what, err)
		case len(in.Shards) != 3:
			t.Fatalf("%s: n has %d shards", what, len(in.Shards))
		}
		r := putOne(t, s, "n", "k", []byte("x"))
		if got := readShard(t, s, "n", r.ShardID, 10); len(got) != 1 || string(got[0].Data) != "x" {
			t.Fatalf("%s: n holds %v after one put", what, got)
		}
	})
}

// TestDeleteFailsWhole: a delete whose directory cannot be renamed fails,
// and the stream stays with its records and takes more.
func TestDeleteFailsWhole(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpRename && strings.Contains(op.Path, "/streams/d-") && !strings.Contains(op.Path, "shardId") {
			return errorfs.ErrInjected
		}
		return nil
	})
	s := openMem(t, errorfs.Wrap(mem, inj), crashOpts())
	defer s.Close()
	mustCreate(t, s, "d", 2)
	for i := 0; i < 5; i++ {
		putOne(t, s, "d", keyFor(i), payload(fmt.Sprintf("d%d|", i), 60))
	}
	before := snapshotStream(t, s, "d")
	if err := s.DeleteStream("d"); !errors.Is(err, errorfs.ErrInjected) {
		t.Fatalf("delete with a failing rename: %v", err)
	}
	sameStream(t, s, "d", before, "after the failed delete")
	r := putOne(t, s, "d", "k", []byte("more"))
	got := readShard(t, s, "d", r.ShardID, 10)
	if len(got) == 0 || string(got[len(got)-1].Data) != "more" {
		t.Fatal("the stream takes no records after a failed delete")
	}
}

// TestTombstoneWithoutMetadata: a data directory whose metadata is gone
// but which holds only the tombstone of a deleted stream opens empty (the
// tombstone removed), as one without stream directories does.
func TestTombstoneWithoutMetadata(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{})
	s.Close()
	for _, f := range []string{"streams.json", "streams.json.prev"} {
		mem.Remove(mem.PathJoin(memDir, f))
	}
	tomb := mem.PathJoin(memDir, "streams", "x-1"+tombstoneSuffix, ShardID(0))
	if err := mem.MkdirAll(tomb, 0o755); err != nil {
		t.Fatal(err)
	}
	rewrite(t, mem, mem.PathJoin(tomb, segmentName(1)), []byte(segmentMagic))
	s = openMem(t, mem, Options{})
	defer s.Close()
	checkCleanDirs(t, s, "a tombstone without metadata")
}

// TestDeleteRaces: of two deletes of one stream racing puts to it, one
// delete succeeds and the other finds no stream (it must not delete a
// stream created under the name meanwhile); puts succeed or find no
// stream; a reopen finds nothing left over.
func TestDeleteRaces(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	for round := 0; round < 20; round++ {
		s := openMem(t, mem, crashOpts())
		mustCreate(t, s, "d", 2)
		putOne(t, s, "d", "k", []byte("x"))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = s.DeleteStream("d")
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := s.Put(context.Background(), "d", []PutRecord{{PartitionKey: keyFor(i), Data: []byte("y")}}); err != nil && !errors.Is(err, ErrStreamNotFound) {
					t.Errorf("put during a delete: %v", err)
				}
			}
		}()
		wg.Wait()
		if (errs[0] == nil) == (errs[1] == nil) || !errors.Is(errors.Join(errs...), ErrStreamNotFound) {
			t.Fatalf("round %d: two deletes: %v, %v; want one success and one not found", round, errs[0], errs[1])
		}
		s.Close()
		s = openMem(t, mem, crashOpts())
		checkCleanDirs(t, s, fmt.Sprintf("round %d", round))
		if _, err := s.DescribeStream("d"); !errors.Is(err, ErrStreamNotFound) {
			t.Fatalf("round %d: d after its delete: %v", round, err)
		}
		s.Close()
	}
}

// TestDeleteWithMetadataWriteFailing: when the metadata cannot be written
// (a full disk) after the tombstone stands, the delete stands: the
// stream is gone, a new one of the name gets another directory, and the
// next start finishes the delete with nothing left over.
func TestDeleteWithMetadataWriteFailing(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	var full atomic.Bool
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if full.Load() && op.Kind == errorfs.OpCreate && strings.Contains(op.Path, "streams.json") {
			return syscall.ENOSPC
		}
		return nil
	})
	s := openMem(t, errorfs.Wrap(mem, inj), crashOpts())
	mustCreate(t, s, "d", 2)
	putOne(t, s, "d", "k", []byte("x"))
	full.Store(true)
	if err := s.DeleteStream("d"); err != nil {
		t.Fatalf("delete with the metadata unwritable: %v", err)
	}
	if _, err := s.DescribeStream("d"); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("d after its delete: %v", err)
	}
	full.Store(false)
	in := mustCreate(t, s, "d", 1)
	s.Close()
	s = openMem(t, mem, crashOpts())
	defer s.Close()
	checkCleanDirs(t, s, "after a delete whose metadata write failed")
	if got, err := s.DescribeStream("d"); err != nil || got.SeqTag != in.SeqTag || len(readShard(t, s, "d", ShardID(0), 10)) != 0 {
		t.Fatalf("the new d after a restart: %+v, %v", got, err)
	}
}
