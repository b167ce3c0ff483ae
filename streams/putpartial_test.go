package streams

import (
	"context"
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
	"github.com/runnel-dev/runnel/internal/testutil/faultfs"
)

// Hash keys that route to shard 0 and to shard 1 of a two-shard stream.
const (
	lowHashKey  = "1"
	highHashKey = "340282366920938463463374607431768211455"
)

// partlyStored reports whether err is a put that stored some records.
func partlyStored(err error) bool {
	var pe *PartialPutError
	return errors.As(err, &pe)
}

// splitPut is a put of n records alternating between shard 0 and shard 1.
func splitPut(tag string, n int) []PutRecord {
	recs := make([]PutRecord, n)
	for i := range recs {
		recs[i] = PutRecord{PartitionKey: "k", ExplicitHashKey: lowHashKey, Data: []byte(fmt.Sprintf("%s-%d", tag, i))}
		if i%2 == 1 {
			recs[i].ExplicitHashKey = highHashKey
		}
	}
	return recs
}

// checkPartial checks a put's PartialPutError: the records routed to shard
// 1 failed with want, those of shard 0 were stored. It returns the failed
// records.
func checkPartial(t *testing.T, recs []PutRecord, res []PutResult, err error, want error) []PutRecord {
	t.Helper()
	var pe *PartialPutError
	if !errors.As(err, &pe) {
		t.Fatalf("put: %v, want a PartialPutError", err)
	}
	if !errors.Is(err, want) || pe.Failed != len(recs)/2 || len(pe.Results) != len(recs) || &pe.Results[0] != &res[0] {
		t.Fatalf("partial put: %v (failed %d of %d), want %d failed with %v", err, pe.Failed, len(pe.Results), len(recs)/2, want)
	}
	var failed []PutRecord
	for i, r := range res {
		switch {
		case i%2 == 0 && (r.Err != nil || r.ShardID != ShardID(0) || r.Seq == 0):
			t.Fatalf("record %d (shard 0) not reported stored: %+v", i, r)
		case i%2 == 1 && (!errors.Is(r.Err, want) || r.ShardID != ShardID(1) || r.Seq != 0 || errors.Is(r.Err, ErrMaybeStored)):
			t.Fatalf("record %d (shard 1) not reported failed with %v: %+v", i, want, r)
		case i%2 == 1:
			failed = append(failed, recs[i])
		}
	}
	return failed
}

// checkOnce reads both shards and checks that every record of recs is
// there exactly once, with the sequence numbers of the results that
// reported it stored.
func checkOnce(t *testing.T, s *Store, name string, recs []PutRecord, seqs map[string]uint64) {
	t.Helper()
	count := map[string]int{}
	for _, sh := range []string{ShardID(0), ShardID(1)} {
		for _, r := range readShard(t, s, name, sh, 7) {
			count[string(r.Data)]++
			if want, ok := seqs[string(r.Data)]; ok && want != r.Seq {
				t.Fatalf("record %s has counter %d, the put reported %d", r.Data, r.Seq, want)
			}
		}
	}
	for _, r := range recs {
		if count[string(r.Data)] != 1 {
			t.Fatalf("record %s is stored %d times, want once (all: %v)", r.Data, count[string(r.Data)], count)
		}
	}
	if len(count) != len(recs) {
		t.Fatalf("the stream holds %d distinct records, want %d", len(count), len(recs))
	}
}

// TestPartialPutWriteFails makes one shard's write or sync fail while the
// other shard's group commits: the put reports each record, the failed
// records are not found after a restart (the failed write's bytes were
// cut off), and sending only them again stores every record exactly once.
func TestPartialPutWriteFails(t *testing.T) {
	checkGoroutines(t)
	for name, kind := range map[string]errorfs.OpKind{"write": errorfs.OpFileWriteAt, "sync": errorfs.OpFileSyncData} {
		// Without prefill nothing else cuts the failed bytes off: a
		// stopping writer cuts a prefilled segment back to its records.
		for _, prefill := range []int64{-1, 0} {
			t.Run(fmt.Sprintf("%s/prefill=%d", name, prefill), func(t *testing.T) {
				testPartialPutWriteFails(t, kind, Options{PrefillBytes: prefill})
			})
		}
	}
}

func testPartialPutWriteFails(t *testing.T, kind errorfs.OpKind, o Options) {
	mem := vfs.NewMem()
	fault := &faultfs.Segments{}
	fs := errorfs.Wrap(mem, fault)
	s := openMem(t, fs, o)
	mustCreate(t, s, "p", 2)
	first := splitPut("first", 6)
	if _, err := s.Put(context.Background(), "p", first); err != nil {
		t.Fatal(err)
	}
	recs := splitPut("second", 10)
	fault.Arm(kind, ShardID(1), errorfs.ErrInjected)
	res, err := s.Put(context.Background(), "p", recs)
	failed := checkPartial(t, recs, res, err, errorfs.ErrInjected)
	seqs := map[string]uint64{}
	for i, r := range res {
		if r.Err == nil {
			seqs[string(recs[i].Data)] = r.Seq
		}
	}
	// The failed shard takes no writes until a restart.
	if _, err := s.Put(context.Background(), "p", failed); err == nil {
		t.Fatal("a put to the failed shard succeeded before a restart")
	}
	s.Close()
	s = openMem(t, fs, o)
	defer s.Close()
	stored := append(first, recs[0], recs[2], recs[4], recs[6], recs[8])
	checkOnce(t, s, "p", stored, seqs)
	if _, err := s.Put(context.Background(), "p", failed); err != nil {
		t.Fatalf("retry of the failed records: %v", err)
	}
	checkOnce(t, s, "p", append(first, recs...), seqs)
}

// TestPartialPutDiskFull makes one shard's write meet a full disk while
// the other shard's group commits: the failed records are retryable
// (ErrUnavailable) and, sent again once there is room, stored once,
// without a restart.
func TestPartialPutDiskFull(t *testing.T) {
	checkGoroutines(t)
	fault := &faultfs.Segments{}
	s := openMem(t, errorfs.Wrap(vfs.NewMem(), fault), Options{DiskRetry: time.Nanosecond})
	defer s.Close()
	mustCreate(t, s, "p", 2)
	recs := splitPut("r", 8)
	fault.Arm(errorfs.OpFileWriteAt, ShardID(1), syscall.ENOSPC)
	res, err := s.Put(context.Background(), "p", recs)
	failed := checkPartial(t, recs, res, err, ErrUnavailable)
	if !Retriable(err) || !Retriable(res[1].Err) {
		t.Fatalf("a put refused for a full disk is not retriable: %v", err)
	}
	seqs := map[string]uint64{}
	for i, r := range res {
		if r.Err == nil {
			seqs[string(recs[i].Data)] = r.Seq
		}
	}
	time.Sleep(time.Millisecond) // past DiskRetry: the shard lets a write through
	if _, err := s.Put(context.Background(), "p", failed); err != nil {
		t.Fatalf("retry of the failed records: %v", err)
	}
	checkOnce(t, s, "p", recs, seqs)
}

// TestPartialPutFailedShard puts to a shard that failed earlier and to a
// healthy one: the healthy shard's records are stored and reported so; a
// put only to the failed shard keeps the plain error.
func TestPartialPutFailedShard(t *testing.T) {
	checkGoroutines(t)
	fault := &faultfs.Segments{}
	s := openMem(t, errorfs.Wrap(vfs.NewMem(), fault), Options{})
	defer s.Close()
	mustCreate(t, s, "p", 2)
	fault.Arm(errorfs.OpFileSyncData, ShardID(1), errorfs.ErrInjected)
	res, err := s.Put(context.Background(), "p", []PutRecord{{PartitionKey: "k", ExplicitHashKey: highHashKey, Data: []byte("x")}})
	var pe *PartialPutError
	if res != nil || !errors.Is(err, errorfs.ErrInjected) || errors.As(err, &pe) {
		t.Fatalf("put of one record to a failing shard: %v, %v; want the injected error alone", res, err)
	}
	recs := splitPut("r", 6)
	res, err = s.Put(context.Background(), "p", recs)
	checkPartial(t, recs, res, err, errorfs.ErrInjected)
	if !strings.Contains(err.Error(), "3 of the 6 records") || !strings.Contains(res[1].Err.Error(), "failed earlier") {
		t.Fatalf("partial put's errors: %v / %v", err, res[1].Err)
	}
}

// shortWriteFS makes the next group write to shard 1's segments (once
// armed is set) write half of its bytes, then fail for want of space (a
// disk that fills up during a write): the frames that fit are in the
// file, unacknowledged.
func shortWriteFS(fs vfs.FS, armed *atomic.Bool) vfs.FS {
	return &faultfs.WriteAtFS{FS: fs,
		Match: func(name string) bool { return faultfs.IsShardSegment(name, ShardID(1)) },
		WriteAt: func(f vfs.File, p []byte, off int64) (int, error) {
			if len(p) <= 1 || allZero(p) || !armed.CompareAndSwap(true, false) {
				return f.WriteAt(p, off)
			}
			n, err := f.WriteAt(p[:len(p)/2], off)
			if err == nil {
				err = syscall.ENOSPC
			}
			return n, err
		}}
}

// TestPartialPutShortWrite: a group write to shard 1 that stops halfway
// for a full disk leaves whole frames of its records in the file; they
// are reported not stored, so they must not be found after a restart
// (before the next write would overwrite them), and a retry of only them
// stores every record once.
func TestPartialPutShortWrite(t *testing.T) {
	checkGoroutines(t)
	var armed atomic.Bool
	fs := shortWriteFS(vfs.NewMem(), &armed)
	o := Options{DiskRetry: time.Hour, PrefillBytes: -1}
	s := openMem(t, fs, o)
	mustCreate(t, s, "p", 2)
	recs := splitPut("r", 20)
	armed.Store(true)
	res, err := s.Put(context.Background(), "p", recs)
	failed := checkPartial(t, recs, res, err, ErrUnavailable)
	seqs := map[string]uint64{}
	var stored []PutRecord
	for i, r := range res {
		if r.Err == nil {
			seqs[string(recs[i].Data)] = r.Seq
			stored = append(stored, recs[i])
		}
	}
	s.Close()
	s = openMem(t, fs, o)
	defer s.Close()
	checkOnce(t, s, "p", stored, seqs)
	if _, err := s.Put(context.Background(), "p", failed); err != nil {
		t.Fatalf("retry of the failed records: %v", err)
	}
	checkOnce(t, s, "p", recs, seqs)
}

// TestPartialPutRandomized puts random records to a stream of 2 to 6
// shards while the write of a random set of them fails (an I/O error in
// the write or the sync, or a full disk): the put is answered whole when
// every touched shard stored its records or none did, else record by
// record, exactly by where the records routed; after a restart the
// stream holds exactly the records reported stored, and a retry of the
// others leaves each record stored once.
func TestPartialPutRandomized(t *testing.T) {
	rng := testutil.Rand(t, 0)
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	kinds := []faultfs.Fault{{Kind: errorfs.OpFileWriteAt, Err: errorfs.ErrInjected}, {Kind: errorfs.OpFileSyncData, Err: errorfs.ErrInjected}, {Kind: errorfs.OpFileWriteAt, Err: syscall.ENOSPC}}
	for round := 0; round < rounds; round++ {
		n := 2 + rng.IntN(5)
		o := Options{PrefillBytes: []int64{-1, 0}[rng.IntN(2)], DiskRetry: time.Hour}
		fs := &faultfs.Segments{}
		efs := errorfs.Wrap(vfs.NewMem(), fs)
		s := openMem(t, efs, o)
		mustCreate(t, s, "p", n)
		ranges := EvenRanges(n)
		shardOf := func(r PutRecord) int {
			hk := HashPartitionKey(r.PartitionKey)
			for i, rg := range ranges {
				if rg.End.Cmp(hk) >= 0 {
					return i
				}
			}
			t.Fatalf("no shard holds %s", hk)
			return -1
		}
		newRecs := func(tag string, k int) []PutRecord {
			recs := make([]PutRecord, k)
			for i := range recs {
				recs[i] = PutRecord{PartitionKey: fmt.Sprintf("key-%d", rng.IntN(50)), Data: []byte(fmt.Sprintf("%d-%s-%d", round, tag, i))}
			}
			return recs
		}
		seqs := map[string]uint64{}
		all := newRecs("warm", rng.IntN(10))
		if len(all) > 0 {
			res, err := s.Put(context.Background(), "p", all)
			if err != nil {
				t.Fatalf("round %d: warm-up put: %v", round, err)
			}
			for i, r := range res {
				seqs[string(all[i].Data)] = r.Seq
			}
		}
		failing := map[int]faultfs.Fault{}
		for i := 0; i < n; i++ {
			if rng.IntN(3) == 0 {
				failing[i] = kinds[rng.IntN(len(kinds))]
			}
		}
		for i, f := range failing {
			fs.Arm(f.Kind, ShardID(i), f.Err)
		}
		recs := newRecs("put", 1+rng.IntN(40))
		res, err := s.Put(context.Background(), "p", recs)
		wantFailed, touched, failedTouched := 0, map[int]bool{}, map[int]bool{}
		for _, r := range recs {
			sh := shardOf(r)
			touched[sh] = true
			if _, ok := failing[sh]; ok {
				wantFailed++
				failedTouched[sh] = true
			}
		}
		desc := fmt.Sprintf("round %d: %d shards, failing %v, %d records over %d shards (%d on failing ones)", round, n, failing, len(recs), len(touched), wantFailed)
		var retry []PutRecord
		switch {
		case wantFailed == 0:
			if err != nil {
				t.Fatalf("%s: put: %v, want every record stored", desc, err)
			}
		case wantFailed == len(recs):
			if err == nil || partlyStored(err) || res != nil {
				t.Fatalf("%s: put: %v, want the error alone", desc, err)
			}
			retry = recs
		default:
			var pe *PartialPutError
			if !errors.As(err, &pe) || pe.Failed != wantFailed || len(res) != len(recs) {
				t.Fatalf("%s: put: %v, want a PartialPutError with %d failed", desc, err, wantFailed)
			}
			for i, r := range res {
				_, fails := failing[shardOf(recs[i])]
				if r.ShardIndex != shardOf(recs[i]) || fails != (r.Err != nil) || (r.Err == nil) != (r.Seq != 0) {
					t.Fatalf("%s: record %d (shard %d) answered %+v", desc, i, shardOf(recs[i]), r)
				}
				if errors.Is(r.Err, ErrMaybeStored) {
					t.Fatalf("%s: record %d: %v", desc, i, r.Err)
				}
				if r.Err != nil {
					retry = append(retry, recs[i])
				}
			}
		}
		if err == nil || partlyStored(err) {
			for i, r := range res {
				if r.Err == nil {
					seqs[string(recs[i].Data)] = r.Seq
					all = append(all, recs[i])
				}
			}
		}
		fs.Disarm() // the faults of shards the put did not touch
		s.Close()
		s = openMem(t, efs, o)
		checkOnceN(t, s, "p", n, all, seqs)
		if len(retry) > 0 {
			if _, err := s.Put(context.Background(), "p", retry); err != nil {
				t.Fatalf("%s: retry of the failed records: %v", desc, err)
			}
		}
		checkOnceN(t, s, "p", n, append(all, retry...), seqs)
		s.Close()
		t.Log(desc)
	}
}

// checkOnceN is checkOnce for a stream of n shards.
func checkOnceN(t *testing.T, s *Store, name string, n int, recs []PutRecord, seqs map[string]uint64) {
	t.Helper()
	count := map[string]int{}
	for i := 0; i < n; i++ {
		for _, r := range readShard(t, s, name, ShardID(i), 50) {
			count[string(r.Data)]++
			if want, ok := seqs[string(r.Data)]; ok && want != r.Seq {
				t.Fatalf("record %s has counter %d, the put reported %d", r.Data, r.Seq, want)
			}
		}
	}
	for _, r := range recs {
		if count[string(r.Data)] != 1 {
			t.Fatalf("record %s is stored %d times, want once", r.Data, count[string(r.Data)])
		}
	}
	if len(count) != len(recs) {
		t.Fatalf("the stream holds %d distinct records, want %d", len(count), len(recs))
	}
}
