package streams

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/runnel-dev/runnel/internal/testutil"
)

const memDir = "/data"

// clock is an injectable clock tests move by hand.
type clock struct{ t time.Time }

func newClock() *clock               { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }
func (c *clock) now() time.Time      { return c.t }
func (c *clock) add(d time.Duration) { c.t = c.t.Add(d) }

// openMem opens a store in memDir of fs with a quiet logger.
func openMem(t testing.TB, fs vfs.FS, o Options) *Store {
	t.Helper()
	o.FS = fs
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	s, err := Open(memDir, o)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return s
}

// seqTag is the sequence tag of stream name.
func seqTag(t testing.TB, s *Store, name string) uint64 {
	t.Helper()
	in, err := s.DescribeStream(name)
	if err != nil {
		t.Fatalf("describe %s: %v", name, err)
	}
	return in.SeqTag
}

func mustCreate(t testing.TB, s *Store, name string, n int) StreamInfo {
	t.Helper()
	in, err := s.CreateStream(name, n, CreateOptions{})
	if err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	return in
}

// readShard reads a whole shard from TRIM_HORIZON, page by page, with
// small pages so that reads start in the middle of segments.
func readShard(t testing.TB, s *Store, stream, shard string, page int) []Record {
	t.Helper()
	var out []Record
	pos := uint64(0)
	for i := 0; ; i++ {
		r, err := s.Read(stream, shard, pos, page, 0)
		if err != nil {
			t.Fatalf("read %s/%s at %d: %v", stream, shard, pos, err)
		}
		for _, rec := range r.Records {
			rec.Data = append([]byte(nil), rec.Data...)
			out = append(out, rec)
		}
		if len(r.Records) == 0 {
			return out
		}
		if r.Next <= pos {
			t.Fatalf("read %s/%s: next %d does not advance past %d", stream, shard, r.Next, pos)
		}
		pos = r.Next
	}
}

// fileData returns a file's bytes.
func fileData(t testing.TB, fs vfs.FS, path string) []byte {
	t.Helper()
	b, err := readFile(fs, path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return b
}

// rewrite replaces a file's contents (and syncs it).
func rewrite(t testing.TB, fs vfs.FS, path string, b []byte) {
	t.Helper()
	f, err := fs.Create(path, vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(append([]byte(nil), b...)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// segmentFiles lists the segment files of a shard, oldest first.
func segmentFiles(t testing.TB, fs vfs.FS, s *Store, stream string, index int) []string {
	t.Helper()
	st, err := s.get("test", stream)
	if err != nil {
		t.Fatal(err)
	}
	dir := fs.PathJoin(memDir, "streams", st.meta.Dir, ShardID(index))
	names, err := fs.List(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range names {
		if strings.HasSuffix(n, ".seg") {
			out = append(out, fs.PathJoin(dir, n))
		}
	}
	sort.Strings(out)
	return out
}

// checkGoroutines fails when goroutines started by the store outlive it.
func checkGoroutines(t *testing.T) { testutil.CheckGoroutines(t) }

func isCorruption(err error) bool {
	var ce *CorruptionError
	return errors.As(err, &ce) && errors.Is(err, ErrCorrupt)
}

func payload(tag string, n int) []byte {
	b := []byte(tag)
	for len(b) < n {
		b = append(b, byte('a'+len(b)%26))
	}
	return b
}

func putOne(t testing.TB, s *Store, stream, key string, data []byte) PutResult {
	t.Helper()
	res, err := s.Put(context.Background(), stream, []PutRecord{{PartitionKey: key, Data: data}})
	if err != nil {
		t.Fatalf("put %s: %v", key, err)
	}
	return res[0]
}

func keyFor(i int) string { return fmt.Sprintf("key-%d", i) }
