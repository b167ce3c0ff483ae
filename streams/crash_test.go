package streams

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// crashPoint takes a crash clone of a crashable MemFS just before the k-th
// mutating filesystem operation, and tells producers whether an ack they
// received came before it.
type crashPoint struct {
	mem     *vfs.MemFS
	k       int
	cfg     vfs.CrashCloneCfg
	mu      sync.Mutex
	n       int
	clone   *vfs.MemFS
	crashed bool
}

func (c *crashPoint) MaybeError(op errorfs.Op) error {
	if op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	if c.n == c.k && !c.crashed {
		c.clone = c.mem.CrashClone(c.cfg)
		c.crashed = true
	}
	return nil
}

func (c *crashPoint) String() string { return fmt.Sprintf("crash before write op %d", c.k) }

func (c *crashPoint) before() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.crashed
}

type attempt struct {
	key  string
	data []byte
}

type acked struct {
	shard string
	seq   uint64
	data  []byte
}

// putAttempt puts one record into stream c, notes it in attempts and, when the
// put succeeded before cp's crash point, appends it to acks.
func putAttempt(s *Store, cp *crashPoint, key string, d []byte, attempts map[string]attempt, acks []acked) []acked {
	attempts[string(d)] = attempt{key, d}
	res, err := s.Put(context.Background(), "c", []PutRecord{{PartitionKey: key, Data: d}})
	if err == nil && cp.before() {
		acks = append(acks, acked{res[0].ShardID, res[0].Seq, d})
	}
	return acks
}

// crashWorkload runs producers against a stream whose segments roll every
// few records, splits a shard halfway, and returns what was attempted (by
// data) and what was acknowledged before the crash point.
func crashWorkload(t *testing.T, fs vfs.FS, cp *crashPoint) (map[string]attempt, []acked) {
	s := openMem(t, fs, Options{SegmentBytes: 600})
	if _, err := s.CreateStream("c", 2, CreateOptions{}); err != nil {
		// The crash point may be inside CreateStream: nothing acked.
		s.Close()
		return nil, nil
	}
	var mu sync.Mutex
	attempts := map[string]attempt{}
	var acks []acked
	var wg sync.WaitGroup
	for p := 0; p < 4; p++ {
		wg.Add(1)
		go func(p int) {
			defer wg.Done()
			for b := 0; b < 12; b++ {
				recs := make([]PutRecord, 1+b%3)
				for i := range recs {
					d := payload(fmt.Sprintf("p%d-b%d-r%d|", p, b, i), 20+(p*7+b*13+i*5)%90)
					recs[i] = PutRecord{PartitionKey: keyFor(p*100 + b*10 + i), Data: d}
					mu.Lock()
					attempts[string(d)] = attempt{recs[i].PartitionKey, d}
					mu.Unlock()
				}
				res, err := s.Put(context.Background(), "c", recs)
				if err != nil {
					continue
				}
				if cp.before() {
					mu.Lock()
					for i, r := range res {
						acks = append(acks, acked{r.ShardID, r.Seq, recs[i].Data})
					}
					mu.Unlock()
				}
			}
		}(p)
	}
	wg.Wait()
	if err := s.SplitShard("c", ShardID(0), EvenRanges(4)[1].Start.String()); err != nil {
		t.Fatalf("split: %v", err)
	}
	for b := 0; b < 4; b++ {
		acks = putAttempt(s, cp, keyFor(b), payload(fmt.Sprintf("after-split-%d|", b), 40), attempts, acks)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return attempts, acks
}

// verifyRecovered opens the crashed filesystem and checks the log against
// what was attempted and acknowledged.
func verifyRecovered(t *testing.T, fs vfs.FS, attempts map[string]attempt, acks []acked, allowCorruption bool) {
	t.Helper()
	s, err := Open(memDir, Options{FS: fs, Logger: quietLogger()})
	if err != nil {
		if allowCorruption && isCorruption(err) {
			return
		}
		t.Fatalf("reopen after crash: %v", err)
	}
	defer s.Close()
	in, err := s.DescribeStream("c")
	if err != nil {
		if len(acks) == 0 {
			return // the crash came before the stream was durable
		}
		t.Fatalf("describe after crash with %d acks: %v", len(acks), err)
	}
	got := map[string]map[uint64][]byte{}
	for _, sh := range in.Shards {
		recs := readShard(t, s, "c", sh.ID, 3)
		got[sh.ID] = map[uint64][]byte{}
		var prev uint64
		for _, r := range recs {
			if r.Seq <= prev {
				t.Fatalf("%s: sequence %d after %d", sh.ID, r.Seq, prev)
			}
			prev = r.Seq
			a, ok := attempts[string(r.Data)]
			if !ok || a.key != r.PartitionKey {
				t.Fatalf("%s seq %d: record %q (key %q) was never written", sh.ID, r.Seq, r.Data, r.PartitionKey)
			}
			got[sh.ID][r.Seq] = r.Data
		}
		if sh.Open {
			// Counters are never reused: a new record sorts after every
			// record the shard holds.
			res, err := s.Put(context.Background(), "c", []PutRecord{{PartitionKey: "x", ExplicitHashKey: sh.Range.Start.String(), Data: []byte("new")}})
			if err != nil {
				t.Fatalf("put after crash: %v", err)
			}
			if res[0].Seq <= prev {
				t.Fatalf("%s: new record got counter %d, not above %d", sh.ID, res[0].Seq, prev)
			}
		}
	}
	if !allowCorruption {
		if c := s.Corruptions(); len(c) > 0 {
			t.Fatalf("a clean crash reported corruption: %v", c[0].Error())
		}
	}
	for _, a := range acks {
		d, ok := got[a.shard][a.seq]
		if !ok {
			t.Fatalf("acknowledged record %s seq %d (%q) lost", a.shard, a.seq, a.data)
		}
		if !bytes.Equal(d, a.data) {
			t.Fatalf("acknowledged record %s seq %d: got %q want %q", a.shard, a.seq, d, a.data)
		}
	}
}

// TestCrashAtEveryWrite crashes (takes a crash clone) before every k-th
// mutating filesystem operation of a workload with concurrent producers,
// segment rolls and a split; the clone keeps only synced data, or also a
// random part of the unsynced data. After reopening, every record
// acknowledged before the crash is there with its bytes, in order, nothing
// else appears, and counters are not reused.
func TestCrashAtEveryWrite(t *testing.T) {
	checkGoroutines(t)
	stride := 1
	if testing.Short() {
		stride = 7
	}
	for _, unsynced := range []int{0, 50} {
		t.Run(fmt.Sprintf("unsynced=%d%%", unsynced), func(t *testing.T) {
			for k := 1; ; k += stride {
				mem := vfs.NewCrashableMem()
				cp := &crashPoint{mem: mem, k: k, cfg: vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(k), 7))}}
				attempts, acks := crashWorkload(t, errorfs.Wrap(mem, cp), cp)
				if cp.clone == nil {
					if k < 50 {
						t.Fatalf("workload made only %d writes", cp.n)
					}
					return // k is past the last write
				}
				verifyRecovered(t, cp.clone, attempts, acks, unsynced > 0)
				if t.Failed() {
					t.Fatalf("crash before write %d", k)
				}
			}
		})
	}
}

// buildLog writes n records of varying sizes into one shard with small
// segments and closes the store; it returns the filesystem and records.
func buildLog(t *testing.T, n int) (*vfs.MemFS, []Record) {
	mem := vfs.NewCrashableMem()
	s := openMem(t, mem, Options{SegmentBytes: 512})
	mustCreate(t, s, "c", 1)
	var want []Record
	for i := 0; i < n; i++ {
		d := payload(fmt.Sprintf("rec-%d|", i), 10+(i*37)%70)
		r := putOne(t, s, "c", keyFor(i), d)
		want = append(want, Record{Seq: r.Seq, PartitionKey: keyFor(i), Data: d})
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return mem, want
}

// cloneMem copies a closed store's filesystem (everything in it is synced).
func cloneMem(t *testing.T, src *vfs.MemFS) *vfs.MemFS {
	return src.CrashClone(vfs.CrashCloneCfg{})
}

// checkDamaged reopens a damaged log: it must open (or fail with a
// CorruptionError), return only records that were written, in order, with
// their bytes, and return all of them up to the damage; records beyond a
// gap require a reported corruption.
func checkDamaged(t *testing.T, fs vfs.FS, want []Record, what string) (opened bool, got []Record) {
	t.Helper()
	s, err := Open(memDir, Options{FS: fs, Logger: quietLogger()})
	if err != nil {
		if isCorruption(err) {
			return false, nil
		}
		t.Fatalf("%s: open: %v (not a CorruptionError)", what, err)
	}
	defer s.Close()
	got = readShard(t, s, "c", ShardID(0), 4)
	j := 0
	gap := false
	for _, r := range got {
		for j < len(want) && want[j].Seq < r.Seq {
			j++
			gap = true
		}
		if j == len(want) || want[j].Seq != r.Seq || want[j].PartitionKey != r.PartitionKey || !bytes.Equal(want[j].Data, r.Data) {
			t.Fatalf("%s: returned record seq %d %q that differs from what was written", what, r.Seq, r.Data)
		}
		j++
	}
	if gap && len(s.Corruptions()) == 0 {
		t.Fatalf("%s: records are missing from the middle but no corruption was reported", what)
	}
	return true, got
}

// segRange is the counter range a segment file may hold: from its name up
// to just before the next segment's.
func segRange(t *testing.T, segs []string, i int) (uint64, uint64) {
	first := func(p string) uint64 {
		var n uint64
		if _, err := fmt.Sscanf(p[strings.LastIndex(p, "/")+1:], "%d.seg", &n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	if i+1 < len(segs) {
		return first(segs[i]), first(segs[i+1]) - 1
	}
	return first(segs[i]), ^uint64(0)
}

// damageEach applies damage to each segment file (and the first index
// sidecar) and checks the reopened log: only records of the damaged file
// may be missing; a damaged active segment leaves an exact prefix.
func damageEach(t *testing.T, damage func(data []byte, i int) ([]byte, string), every func(n int) int) {
	base, want := buildLog(t, 40)
	s := openMem(t, base, Options{})
	segs := segmentFiles(t, base, s, "c", 0)
	s.Close()
	if len(segs) < 4 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	idx := strings.TrimSuffix(segs[0], ".seg") + ".idx"
	for si, path := range append(segs, idx) {
		lo, hi := uint64(1), uint64(0) // the index holds no records
		if si < len(segs) {
			lo, hi = segRange(t, segs, si)
		}
		data := fileData(t, base, path)
		for i := 0; i < len(data); i += every(len(data)) {
			fs := cloneMem(t, base)
			d, how := damage(append([]byte(nil), data...), i)
			rewrite(t, fs, path, d)
			what := fmt.Sprintf("%s: %s", path, how)
			opened, got := checkDamaged(t, fs, want, what)
			if !opened {
				continue
			}
			have := map[uint64]bool{}
			for _, r := range got {
				have[r.Seq] = true
			}
			for _, w := range want {
				if (w.Seq < lo || w.Seq > hi) && !have[w.Seq] {
					t.Fatalf("%s: record %d outside the damaged file is missing", what, w.Seq)
				}
			}
		}
	}
}

// TestTruncateEveryByte cuts each segment file at every length: the log
// reopens with every record outside the cut file, a valid prefix of the
// cut one, and a reported corruption when a sealed segment lost records.
func TestTruncateEveryByte(t *testing.T) {
	checkGoroutines(t)
	damageEach(t, func(d []byte, i int) ([]byte, string) {
		return d[:i], fmt.Sprintf("cut at %d of %d", i, len(d))
	}, func(n int) int {
		if testing.Short() {
			return 5
		}
		return 1
	})
}

// TestFlipEveryBit flips one bit in every byte of each segment file and of
// an index sidecar: never a wrong record, never a panic, nothing outside
// the damaged file lost, and a damaged index is rebuilt.
func TestFlipEveryBit(t *testing.T) {
	checkGoroutines(t)
	damageEach(t, func(d []byte, i int) ([]byte, string) {
		d[i] ^= 1 << (i % 8)
		return d, fmt.Sprintf("bit %d of byte %d flipped", i%8, i)
	}, func(n int) int {
		if testing.Short() {
			return 3
		}
		return 1
	})
}

// TestInjectedWriteErrors fails the n-th write or sync of a segment: the put
// fails, the shard refuses further writes, and after a restart every
// acknowledged record is there and the shard takes writes again.
func TestInjectedWriteErrors(t *testing.T) {
	checkGoroutines(t)
	for _, kind := range []errorfs.OpKind{errorfs.OpFileWriteAt, errorfs.OpFileSyncData, errorfs.OpCreate} {
		for n := 1; n <= 6; n++ {
			t.Run(fmt.Sprintf("%v#%d", kind, n), func(t *testing.T) {
				mem := vfs.NewCrashableMem()
				var mu sync.Mutex
				count, armed := 0, false
				inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
					mu.Lock()
					defer mu.Unlock()
					if !armed || op.Kind != kind || !strings.HasSuffix(op.Path, ".seg") {
						return nil
					}
					count++
					if count == n {
						return errorfs.ErrInjected
					}
					return nil
				})
				s := openMem(t, errorfs.Wrap(mem, inj), Options{SegmentBytes: 300})
				mustCreate(t, s, "c", 1)
				mu.Lock()
				armed = true
				mu.Unlock()
				var acks []acked
				failed := false
				for i := 0; i < 30; i++ {
					d := payload(fmt.Sprintf("r%d|", i), 50)
					res, err := s.Put(context.Background(), "c", []PutRecord{{PartitionKey: "k", Data: d}})
					if err != nil {
						if !errors.Is(err, errorfs.ErrInjected) {
							t.Fatalf("put %d failed with %v, want the injected error", i, err)
						}
						failed = true
						continue
					}
					if failed {
						t.Fatalf("put %d succeeded after the shard failed", i)
					}
					acks = append(acks, acked{res[0].ShardID, res[0].Seq, d})
				}
				if !failed {
					t.Fatalf("no put failed (%d matching ops)", count)
				}
				s.Close()
				attempts := map[string]attempt{}
				for i := 0; i < 30; i++ {
					d := payload(fmt.Sprintf("r%d|", i), 50)
					attempts[string(d)] = attempt{"k", d}
				}
				// Both the process restarting and the machine crashing
				// keep every acknowledged record.
				verifyRecovered(t, mem.CrashClone(vfs.CrashCloneCfg{}), attempts, acks, false)
				verifyRecovered(t, mem, attempts, acks, false)
			})
		}
	}
}

// TestIntervalSync documents the trade of Options.SyncInterval: puts are
// acknowledged before their fsync, so a machine crash before the next
// interval sync loses them, while a clean Close keeps them.
func TestIntervalSync(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewCrashableMem()
	s := openMem(t, mem, Options{SyncInterval: time.Hour})
	mustCreate(t, s, "i", 1)
	for i := 0; i < 10; i++ {
		putOne(t, s, "i", "k", []byte(fmt.Sprint(i)))
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	s.Close()
	s = openMem(t, crashed, Options{})
	if got := readShard(t, s, "i", ShardID(0), 0); len(got) != 0 {
		t.Fatalf("a crash before the interval sync kept %d records; the test assumes it loses them", len(got))
	}
	s.Close()
	s = openMem(t, mem, Options{})
	defer s.Close()
	if got := readShard(t, s, "i", ShardID(0), 0); len(got) != 10 {
		t.Fatalf("clean close kept %d of 10 records", len(got))
	}
}

// TestOpenFailsCleanly: when recovering one stream fails, Open returns
// the error (naming what failed), starts no goroutine and releases the
// directory.
func TestOpenFailsCleanly(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{})
	mustCreate(t, s, "a", 2)
	mustCreate(t, s, "b", 2)
	putOne(t, s, "b", "k", []byte("v"))
	s.Close()
	inj := errorfs.InjectorFunc(func(op errorfs.Op) error {
		if op.Kind == errorfs.OpList && strings.Contains(op.Path, "/b-") {
			return errorfs.ErrInjected
		}
		return nil
	})
	if _, err := Open(memDir, Options{FS: errorfs.Wrap(mem, inj), Logger: quietLogger()}); !errors.Is(err, errorfs.ErrInjected) || !strings.Contains(err.Error(), "shardId-") {
		t.Fatalf("open with a failing shard directory: %v", err)
	}
	s = openMem(t, mem, Options{})
	defer s.Close()
	if got := readShard(t, s, "b", ShardID(0), 0); len(got)+len(readShard(t, s, "b", ShardID(1), 0)) != 1 {
		t.Fatal("record lost")
	}
}

// TestDeleteSurvivesCrash: once DeleteStream returned, a crash keeping
// only synced data does not bring the stream's directory back, to be
// reported at the next start as an orphan that may have held a live
// stream (and to keep its disk space).
func TestDeleteSurvivesCrash(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewCrashableMem()
	s := openMem(t, mem, Options{})
	mustCreate(t, s, "d", 2)
	for i := 0; i < 10; i++ {
		putOne(t, s, "d", keyFor(i), payload("r|", 30))
	}
	if err := s.DeleteStream("d"); err != nil {
		t.Fatal(err)
	}
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	s.Close()
	s = openMem(t, crashed, Options{})
	defer s.Close()
	if _, err := s.DescribeStream("d"); !errors.Is(err, ErrStreamNotFound) {
		t.Fatalf("deleted stream after a crash: %v", err)
	}
	if p := s.Problems(); len(p) > 0 {
		t.Fatalf("a crash after a delete left a problem: %s: %s", p[0].Kind, p[0].Message)
	}
	if dirs, err := s.streamDirs(); err != nil || len(dirs) > 0 {
		t.Fatalf("stream directories after the crash: %v %v", dirs, err)
	}
}
