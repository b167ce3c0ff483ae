package streams

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
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

// logTo is a logger writing text lines into buf, so that a test can check
// what was logged at which level.
func logTo(buf *testutil.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// noWarnings fails when the log holds a WARN or ERROR line.
func noWarnings(t *testing.T, logs, when string) {
	t.Helper()
	if strings.Contains(logs, "level=WARN") || strings.Contains(logs, "level=ERROR") {
		t.Fatalf("%s: warnings or errors logged:\n%s", when, logs)
	}
}

// fileLen is the length of a file.
func fileLen(t testing.TB, fs vfs.FS, path string) int64 {
	t.Helper()
	st, err := fs.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// scanFile scans a segment file as recovery does.
func scanFile(t testing.TB, fs vfs.FS, path string) (*segment, scanResult, []byte) {
	t.Helper()
	var first uint64
	if _, err := fmt.Sscanf(path[strings.LastIndex(path, "/")+1:], "%d.seg", &first); err != nil {
		t.Fatal(err)
	}
	data := fileData(t, fs, path)
	seg := &segment{first: first}
	return seg, seg.scan(data), data
}

// checkFilesAsBefore checks a stopped store's segment files (a shard's,
// oldest first): each ends with its last record (no zeros after it), and
// the index sidecars of sealed segments match them. (The last segment's
// sidecar may be stale: a crash between sealing and creating the next
// segment leaves it active, and recovery ignores it.) With running, the
// last segment is the active one of a running store and is skipped.
func checkFilesAsBefore(t *testing.T, fs vfs.FS, segs []string, running bool) {
	t.Helper()
	if running {
		segs = segs[:len(segs)-1]
	}
	for i, p := range segs {
		seg, res, data := scanFile(t, fs, p)
		if res.torn || res.validEnd != int64(len(data)) || len(seg.corrupt) > 0 {
			t.Fatalf("%s: %d bytes, records end at %d (torn %v, %s): not cut back to its records", p, len(data), res.validEnd, res.torn, res.reason)
		}
		if b, err := readFile(fs, strings.TrimSuffix(p, ".seg")+".idx"); err == nil && (running || i < len(segs)-1) {
			var s segment
			if !s.decodeIndex(b, int64(len(data))) {
				t.Fatalf("%s: the index sidecar does not match the segment", p)
			}
		}
	}
}

// TestPrefillKeepsFilesAsBefore: while a shard is written its active
// segment is longer than its records (zeros ahead of them, counted in the
// shard's disk bytes); sealed segments and, once the store is closed, the
// active one end with their last record, and the index sidecars match.
func TestPrefillKeepsFilesAsBefore(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{SegmentBytes: 4000, PrefillBytes: 700})
	mustCreate(t, s, "p", 1)
	for i := range 100 {
		putOne(t, s, "p", keyFor(i), payload(fmt.Sprint(i), 30+i%50))
	}
	segs := segmentFiles(t, mem, s, "p", 0)
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %d", len(segs))
	}
	active := segs[len(segs)-1]
	_, res, data := scanFile(t, mem, active)
	if !res.zeros || res.validEnd >= int64(len(data)) {
		t.Fatalf("the active segment is not filled ahead: %d bytes, records end at %d", len(data), res.validEnd)
	}
	var files int64
	for _, p := range segs {
		files += fileLen(t, mem, p)
	}
	if in, _ := s.DescribeStream("p"); in.Shards[0].DiskBytes != files {
		t.Fatalf("disk bytes %d, the segment files hold %d", in.Shards[0].DiskBytes, files)
	}
	if s.writes.prefilled.Load() == 0 {
		t.Fatal("no zeros were written ahead")
	}
	checkFilesAsBefore(t, mem, segs, true)
	s.Close()
	checkFilesAsBefore(t, mem, segs, false)
}

// TestPrefillOnDisk runs the real filesystem (files cut back by ftruncate):
// a copy of the data directory taken while the store runs — what a killed
// process leaves — opens without a warning, with every record and the
// right last counter, and takes new records after it; the original, once
// closed, has its files as without prefill.
func TestPrefillOnDisk(t *testing.T) {
	checkGoroutines(t)
	dir := t.TempDir()
	s, err := Open(dir, Options{Logger: quietLogger(), SegmentBytes: 64 << 10, PrefillBytes: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	mustCreate(t, s, "d", 1)
	var want []string
	var last uint64
	for i := range 600 {
		d := payload(fmt.Sprintf("r%d|", i), 100+i%200)
		last = putOne(t, s, "d", keyFor(i), d).Seq
		want = append(want, string(d))
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "streams", "d-*", ShardID(0), "*.seg"))
	if len(segs) < 3 {
		t.Fatalf("want several segments, got %v", segs)
	}
	st, _ := os.Stat(segs[len(segs)-1])
	_, res, _ := scanFile(t, vfs.Default, segs[len(segs)-1])
	if !res.zeros || st.Size() <= res.validEnd {
		t.Fatalf("the active segment is not filled ahead: %d bytes, records end at %d", st.Size(), res.validEnd)
	}
	checkFilesAsBefore(t, vfs.Default, segs, true)

	killed := t.TempDir()
	if err := os.CopyFS(killed, os.DirFS(dir)); err != nil {
		t.Fatal(err)
	}
	var logs testutil.Buffer
	c, err := Open(killed, Options{Logger: logTo(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if in, _ := c.DescribeStream("d"); in.Shards[0].LastSeq != last {
		t.Fatalf("reopened copy: last counter %d, want %d", in.Shards[0].LastSeq, last)
	}
	if r := putOne(t, c, "d", "k", []byte("after")).Seq; r != last+1 {
		t.Fatalf("the next record got %d, want %d", r, last+1)
	}
	got := readShard(t, c, "d", ShardID(0), 50)
	if len(got) != len(want)+1 || string(got[len(want)].Data) != "after" {
		t.Fatalf("reopened copy holds %d records, want %d", len(got), len(want)+1)
	}
	for i, w := range want {
		if string(got[i].Data) != w {
			t.Fatalf("record %d: %q, want %q", i, got[i].Data, w)
		}
	}
	c.Close()
	noWarnings(t, logs.String(), "opening a copy of a running store")

	s.Close()
	checkFilesAsBefore(t, vfs.Default, segs, false)
}

// TestZeroTailIsTheEnd: a crash leaves the active segment filled ahead of
// its records. It reopens without a warning or a corruption, with the
// right last counter, and new records go right after the old ones (they
// overwrite the zeros).
func TestZeroTailIsTheEnd(t *testing.T) {
	checkGoroutines(t)
	crashed, path, last, res, _ := crashedWithZeroTail(t, "z", 50)
	end := res.validEnd

	var logs testutil.Buffer
	s := openMem(t, crashed, Options{Logger: logTo(&logs)})
	in, _ := s.DescribeStream("z")
	if in.Shards[0].LastSeq != last || len(s.Corruptions()) != 0 || len(s.Problems()) != 0 {
		t.Fatalf("after the crash: last %d (want %d), corruptions %v, problems %v", in.Shards[0].LastSeq, last, s.Corruptions(), s.Problems())
	}
	if r := putOne(t, s, "z", "k", []byte("next")).Seq; r != last+1 {
		t.Fatalf("the next record got counter %d, want %d", r, last+1)
	}
	got := readShard(t, s, "z", ShardID(0), 7)
	if len(got) != int(last)+1 || string(got[last].Data) != "next" {
		t.Fatalf("read %d records after the crash, want %d", len(got), last+1)
	}
	if rec, _, err := decodeFrame(fileData(t, crashed, path)[end:]); err != nil || rec.Seq != last+1 {
		t.Fatalf("the new record is not right after the old ones (at %d): %v", end, err)
	}
	s.Close()
	noWarnings(t, logs.String(), "reopening a segment with a zero tail")
	checkFilesAsBefore(t, crashed, []string{path}, false)
}

// crashedWithZeroTail puts n records into a new one-shard stream and
// returns a crash clone taken while the store ran, the shard's segment,
// the last record's counter, and the segment's scan, which must find the
// zeros prefill wrote after the records.
func crashedWithZeroTail(t *testing.T, stream string, n int) (*vfs.MemFS, string, uint64, scanResult, []byte) {
	t.Helper()
	mem := vfs.NewCrashableMem()
	s := openMem(t, mem, Options{})
	mustCreate(t, s, stream, 1)
	var last uint64
	for i := range n {
		last = putOne(t, s, stream, keyFor(i), payload(fmt.Sprint(i), 60)).Seq
	}
	path := segmentFiles(t, mem, s, stream, 0)[0]
	crashed := mem.CrashClone(vfs.CrashCloneCfg{})
	s.Close()
	_, res, data := scanFile(t, crashed, path)
	if !res.zeros || int64(len(data)) <= res.validEnd {
		t.Fatalf("the crashed segment holds %d bytes after its records, want a zero tail", int64(len(data))-res.validEnd)
	}
	return crashed, path, last, res, data
}

// TestNonZeroAfterZeroTail: bytes after a zero tail are not prefill's. A
// valid frame there is damage (a CorruptionError and an ERROR, as any bad
// bytes followed by a valid frame); other bytes are a torn tail, cut off
// as without prefill. Either way every record before is kept.
func TestNonZeroAfterZeroTail(t *testing.T) {
	checkGoroutines(t)
	base, path, last, res, data := crashedWithZeroTail(t, "n", 20)
	for _, tc := range []struct {
		name   string
		bytes  []byte
		damage bool
	}{
		{"a frame", appendFrame(nil, last+3, 1, "x", []byte("stray")), true},
		{"junk", []byte{0xab, 0xcd, 0xef, 1, 2, 3, 4, 5, 6, 7, 8, 9}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fs := base.CrashClone(vfs.CrashCloneCfg{})
			d := append([]byte(nil), data...)
			copy(d[res.validEnd+500:], tc.bytes)
			rewrite(t, fs, path, d)
			var logs testutil.Buffer
			s := openMem(t, fs, Options{Logger: logTo(&logs)})
			defer s.Close()
			got := readShard(t, s, "n", ShardID(0), 0)
			if len(got) < int(last) || got[last-1].Seq != last {
				t.Fatalf("records before the damage lost: read %d, want at least %d", len(got), last)
			}
			if tc.damage {
				if len(s.Corruptions()) == 0 || !strings.Contains(logs.String(), "level=ERROR") {
					t.Fatalf("a frame after zeros was not reported as damage; logs:\n%s", logs.String())
				}
				return
			}
			if len(got) != int(last) || len(s.Corruptions()) != 0 {
				t.Fatalf("junk after zeros: read %d records (want %d), corruptions %v", len(got), last, s.Corruptions())
			}
			if !strings.Contains(logs.String(), "truncating torn tail") {
				t.Fatalf("junk after zeros was not cut off as a torn tail; logs:\n%s", logs.String())
			}
			if n := fileLen(t, fs, path); n != res.validEnd {
				t.Fatalf("the segment is %d bytes after cutting a torn tail, want %d", n, res.validEnd)
			}
		})
	}
}

// TestCrashDuringPrefill crashes before every filesystem write of a single
// producer's puts into segments that are filled ahead in small steps,
// sealed (cut back) and rolled, and of the final Close (cut back again);
// in the "mixed" runs the shard switches between prefilling and appending
// as its groups' average size crosses the limit:
// every record acknowledged before the crash is there, nothing else
// appears, counters go on above them, a crash that keeps only synced data
// reports no damage, and after the recovered store is closed again its
// files end with their records.
func TestCrashDuringPrefill(t *testing.T) {
	checkGoroutines(t)
	stride := 1
	if testing.Short() {
		stride = 5
	}
	for _, tc := range []struct {
		name     string
		unsynced int
		groupMax int64
	}{{"unsynced=0%", 0, 0}, {"unsynced=50%", 50, 0}, {"mixed/unsynced=0%", 0, 80}, {"mixed/unsynced=50%", 50, 80}} {
		unsynced := tc.unsynced
		t.Run(tc.name, func(t *testing.T) {
			for k := 1; ; k += stride {
				mem := vfs.NewCrashableMem()
				cp := &crashPoint{mem: mem, k: k, cfg: vfs.CrashCloneCfg{UnsyncedDataPercent: unsynced, RNG: rand.New(rand.NewPCG(uint64(k), 11))}}
				attempts, acks := prefillWorkload(t, errorfs.Wrap(mem, cp), cp, tc.groupMax)
				if cp.clone == nil {
					if k < 100 {
						t.Fatalf("workload made only %d writes", cp.n)
					}
					return
				}
				verifyRecovered(t, cp.clone, attempts, acks, unsynced > 0)
				if unsynced == 0 && len(acks) > 0 {
					s := openMem(t, cp.clone, Options{})
					segs := segmentFiles(t, cp.clone, s, "c", 0)
					s.Close()
					checkFilesAsBefore(t, cp.clone, segs, false)
				}
				if t.Failed() {
					t.Fatalf("crash before write %d", k)
				}
			}
		})
	}
}

// prefillWorkload puts records one at a time into a one-shard stream whose
// segments are filled 150 bytes ahead and roll at 900 bytes, then closes
// the store. groupMax, when set, is the group size above which the shard
// appends instead of prefilling.
func prefillWorkload(t *testing.T, fs vfs.FS, cp *crashPoint, groupMax int64) (map[string]attempt, []acked) {
	s := openMem(t, fs, Options{SegmentBytes: 900, PrefillBytes: 150})
	if groupMax > 0 {
		s.prefillGroup = groupMax
	}
	if _, err := s.CreateStream("c", 1, CreateOptions{}); err != nil {
		s.Close()
		return nil, nil
	}
	attempts := map[string]attempt{}
	var acks []acked
	for i := range 40 {
		acks = putAttempt(s, cp, keyFor(i), payload(fmt.Sprintf("r%d|", i), 10+(i*29)%90), attempts, acks)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return attempts, acks
}

// capFS fails writes to segment files past limit with ENOSPC, after
// writing what fits, as a filesystem with that much space left does.
func capFS(fs vfs.FS, limit *atomic.Int64) vfs.FS {
	return &faultfs.WriteAtFS{FS: fs, Match: faultfs.IsSegment,
		WriteAt: func(f vfs.File, p []byte, off int64) (int, error) {
			limit := limit.Load()
			if off+int64(len(p)) <= limit {
				return f.WriteAt(p, off)
			}
			n := 0
			if off < limit {
				n, _ = f.WriteAt(p[:limit-off], off)
			}
			return n, syscall.ENOSPC
		}}
}

// TestDiskFullDuringPrefill: when the zeros ahead of the records do not fit
// on the disk, the puts whose records fit are still acknowledged; once the
// records themselves do not fit, puts are refused retryably as without
// prefill, and they are taken again when space is back. After reopening,
// every acknowledged record is there and nothing else, with no damage.
func TestDiskFullDuringPrefill(t *testing.T) {
	checkGoroutines(t)
	mem := vfs.NewMem()
	var limit atomic.Int64
	limit.Store(3000)
	cfs := capFS(mem, &limit)
	var logs testutil.Buffer
	s := openMem(t, cfs, Options{DiskRetry: time.Millisecond, Logger: logTo(&logs)})
	mustCreate(t, s, "f", 1)
	var acked []string
	put := func(i int) error {
		d := string(payload(fmt.Sprintf("r%d|", i), 60))
		_, err := s.Put(context.Background(), "f", []PutRecord{{PartitionKey: "k", Data: []byte(d)}})
		if err == nil {
			acked = append(acked, d)
		}
		return err
	}
	i := 0
	for ; ; i++ {
		err := put(i)
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrUnavailable) || !Retriable(err) {
			t.Fatalf("put %d on a full disk: %v, want a retryable ErrUnavailable", i, err)
		}
		break
	}
	fits := (3000 - len(segmentMagic)) / frameSize("k", []byte(acked[0]))
	if len(acked) != fits {
		t.Fatalf("%d puts acknowledged before the disk was full, want %d (every one that fits)", len(acked), fits)
	}
	if !strings.Contains(logs.String(), "no longer filled ahead") {
		t.Fatalf("the failed prefill was not logged:\n%s", logs.String())
	}
	limit.Store(1 << 30)
	if !testutil.Within(10*time.Second, func() bool { i++; return put(i) == nil }) {
		t.Fatal("puts still refused after space came back")
	}
	for range 20 {
		i++
		if err := put(i); err != nil {
			t.Fatalf("put after space came back: %v", err)
		}
	}
	s.Close()
	s = openMem(t, mem, Options{})
	defer s.Close()
	got := readShard(t, s, "f", ShardID(0), 0)
	var gotData []string
	for _, r := range got {
		gotData = append(gotData, string(r.Data))
	}
	if d := testutil.Diff(acked, gotData); d != "" {
		t.Fatalf("records after reopening differ from those acknowledged:\n%s", d)
	}
	if len(s.Corruptions()) != 0 || len(s.Problems()) != 0 {
		t.Fatalf("a full disk left damage: %v %v", s.Corruptions(), s.Problems())
	}
}
