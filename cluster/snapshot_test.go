package cluster

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators/window"
	"github.com/runnel-dev/runnel/state"
)

// A snapshot holds a task's local state and its offset, and a damaged
// one is refused rather than restored.
func TestSnapshotRoundTrip(t *testing.T) {
	db, err := state.Open(filepath.Join(t.TempDir(), "local"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sp, err := db.Namespace("per-page", "t/0")
	if err != nil {
		t.Fatal(err)
	}
	rng := testutil.Rand(t, 1)
	want := map[string]string{}
	var changes []Change
	for range 200 {
		k := encodeWindowKey(string(rune('a'+rng.IntN(26))), window.Window{Start: rng.Int64N(50) * 1000, End: rng.Int64N(50)*1000 + 1000})
		v := []byte{byte(rng.IntN(256)), byte(rng.IntN(256))}
		if rng.IntN(5) == 0 {
			v = nil
			delete(want, string(k))
		} else {
			want[string(k)] = string(v)
		}
		changes = append(changes, Change{Key: k, Value: v})
	}
	id := kadm.TopicID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if err := writeLocal(sp, changes, 1234, id, true); err != nil {
		t.Fatal(err)
	}
	if got, err := localTopicID(sp); err != nil || got != id {
		t.Errorf("local topic ID %v (err %v), want %v", got, err, id)
	}
	b, n, err := encodeSnapshot(1234, id, sp)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(want) {
		t.Errorf("snapshot of %d records, want %d", n, len(want))
	}
	h, got, err := decodeSnapshot(b)
	if err != nil {
		t.Fatal(err)
	}
	if h.upTo != 1234 || h.id != id {
		t.Errorf("offset %d topic ID %v, want 1234 %v", h.upTo, h.id, id)
	}
	gotm := map[string]string{}
	for _, c := range got {
		gotm[string(c.Key)] = string(c.Value)
	}
	lines := func(m map[string]string) []string {
		var out []string
		for k, v := range m {
			out = append(out, fmt.Sprintf("%x=%x", k, v))
		}
		slices.Sort(out)
		return out
	}
	if d := testutil.Diff(lines(want), lines(gotm)); d != "" {
		t.Errorf("snapshot differs from the local state:\n%s", d)
	}
	for i := range b {
		bad := append([]byte(nil), b...)
		bad[i] ^= 0x10
		if _, _, err := decodeSnapshot(bad); !errors.Is(err, errSnapshot) {
			t.Fatalf("byte %d flipped: decoded (err %v)", i, err)
		}
	}
	if _, _, err := decodeSnapshot(b[:len(b)-5]); !errors.Is(err, errSnapshot) {
		t.Errorf("cut snapshot decoded (err %v)", err)
	}

	// A snapshot written before snapshots recorded the topic ID: the same
	// records, no ID.
	v1 := append([]byte(snapMagicV1), b[len(snapMagic):len(snapMagic)+8]...)
	v1 = append(v1, b[len(snapMagic)+8+len(id):len(b)-4]...)
	v1 = binary.BigEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli))
	h, got, err = decodeSnapshot(v1)
	if err != nil {
		t.Fatal(err)
	}
	if h.upTo != 1234 || h.id != (kadm.TopicID{}) || len(got) != len(want) {
		t.Errorf("RNLSNAP1 snapshot: offset %d topic ID %v, %d records; want 1234, none, %d", h.upTo, h.id, len(got), len(want))
	}
}

// Only a copy of the changelog topic the task restores from, below its
// end, is a prefix of it.
func TestNotPrefix(t *testing.T) {
	a, b, none := kadm.TopicID{1}, kadm.TopicID{2}, kadm.TopicID{}
	for _, c := range []struct {
		id, now  kadm.TopicID
		upTo     int64
		end      int64
		isPrefix bool
		lost     bool // the changelog lost records the copy holds
	}{
		{a, a, 9, 10, true, false},
		{a, a, 10, 10, false, true}, // the changelog does not reach it
		{a, b, 9, 10, false, false}, // another topic of the same name
		{a, b, 9, 1000, false, false},
		{a, b, 10, 10, false, false},
		{none, a, 9, 10, false, false},   // written before IDs were recorded
		{a, none, 9, 10, false, false},   // a broker without topic IDs now
		{none, none, 9, 10, true, false}, // no IDs either side: the offset alone
		{none, none, 10, 10, false, false},
	} {
		if why := notPrefix(c.id, c.now, c.upTo, c.end); (why == "") != c.isPrefix {
			t.Errorf("copy of %v up to %d, changelog %v ending at %d: %q, want prefix %v", c.id, c.upTo, c.now, c.end, why, c.isPrefix)
		}
		if lost := lostRecords(c.id, c.now, c.upTo, c.end); lost != c.lost {
			t.Errorf("copy of %v up to %d, changelog %v ending at %d: lost records %v, want %v", c.id, c.upTo, c.now, c.end, lost, c.lost)
		}
	}
}

func TestParseSnapshotURL(t *testing.T) {
	st, err := ParseSnapshotURL("s3://snaps/runnel/prod?endpoint=http://127.0.0.1:7070&region=eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	want := SnapshotStore{Bucket: "snaps", Prefix: "runnel/prod", Endpoint: "http://127.0.0.1:7070", Region: "eu-west-1", PathStyle: true}
	if *st != want {
		t.Errorf("got %+v, want %+v", *st, want)
	}
	for _, bad := range []string{"snaps/x", "s3:///x", "s3://b?endpont=x", "s3://b?path_style=maybe", "http://b/x"} {
		if _, err := ParseSnapshotURL(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// A snapshot object from the store is untrusted bytes: decoding never
// panics, and what decodes re-encodes to a snapshot of the same offset and
// topic ID (duplicate keys collapse).
func FuzzDecodeSnapshot(f *testing.F) {
	db, err := state.Open(filepath.Join(f.TempDir(), "local"), state.Options{})
	if err != nil {
		f.Fatal(err)
	}
	defer db.Close()
	sp, err := db.Namespace("per-page", "t/0")
	if err != nil {
		f.Fatal(err)
	}
	changes := []Change{{Key: encodeWindowKey("a", window.Window{End: 1000}), Value: []byte{1, 2}},
		{Key: []byte{'m'}, Value: []byte(`{}`)}}
	if err := writeLocal(sp, changes, 7, kadm.TopicID{9}, false); err != nil {
		f.Fatal(err)
	}
	b, _, err := encodeSnapshot(7, kadm.TopicID{9}, sp)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	v1 := append([]byte(snapMagicV1), b[len(snapMagic):len(snapMagic)+8]...)
	v1 = append(v1, b[len(snapMagic)+8+16:len(b)-4]...)
	f.Add(binary.BigEndian.AppendUint32(v1, crc32.Checksum(v1, castagnoli)))
	f.Add([]byte(snapMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, got, err := decodeSnapshot(b)
		if err != nil || string(b[:len(snapMagic)]) != snapMagic {
			return
		}
		// Re-encode what decoded, through a space of its own.
		sp, err := db.Namespace("fuzz", "t/0")
		if err != nil {
			t.Fatal(err)
		}
		if err := clearLocal(sp); err != nil {
			t.Fatal(err)
		}
		if err := writeLocal(sp, got, h.upTo, h.id, false); err != nil {
			t.Fatal(err)
		}
		again, _, err := encodeSnapshot(h.upTo, h.id, sp)
		if err != nil {
			t.Fatal(err)
		}
		if h2, got2, err := decodeSnapshot(again); err != nil || h2 != h || len(got2) > len(got) {
			t.Fatalf("re-encoded snapshot: %+v, %d records, %v; want %+v, at most %d records", h2, len(got2), err, h, len(got))
		}
	})
}

// A snapshot round uploads a task's local state when its offset or its
// changelog topic ID differs from its last snapshot's: a task that
// restored from a changelog topic created again may come to the offset
// its last snapshot (of the old topic, which restores ignore) had. A
// task at offset 0 has a snapshot too.
func TestSnapshotRoundTakesANewTopicAtTheSameOffset(t *testing.T) {
	if testing.Short() {
		t.Skip("runs versitygw")
	}
	s3p := testsrv.StartS3(t, "snaps")
	for _, kv := range s3p.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	db, err := state.Open(filepath.Join(t.TempDir(), "local"), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sp, err := db.Namespace("per-k", "r/0")
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{cfg: Config{Log: slog.New(slog.DiscardHandler)}}
	w.failures.changed = make(chan struct{}, 1)
	if w.snap, err = newSnapshots(context.Background(), &SnapshotStore{Bucket: "snaps", Endpoint: s3p.Endpoint, PathStyle: true}, "job", 1); err != nil {
		t.Fatal(err)
	}
	tk := &task{id: tp{"r", 0}, name: "r/0", stage: &Stage{Index: 1, Keyed: "per-k"}, space: sp}
	w.tasks = map[tp]*task{tk.id: tk}
	win := window.Window{End: 1000}
	oldID, newID := kadm.TopicID{1}, kadm.TopicID{2}
	for _, c := range []struct {
		upTo int64
		id   kadm.TopicID
		key  string
	}{
		{0, oldID, "first"},
		{5, oldID, "old"},
		{5, newID, "new"}, // the same offset of the topic created again
	} {
		if err := clearLocal(sp); err != nil {
			t.Fatal(err)
		}
		if err := writeLocal(sp, []Change{{Key: encodeWindowKey(c.key, win), Value: []byte{1}}}, c.upTo, c.id, true); err != nil {
			t.Fatal(err)
		}
		w.snapshotAfterCommit()
		w.snap.wg.Wait()
		if f := w.Failures(); len(f) > 0 {
			t.Fatalf("failures: %+v", f)
		}
		if len(s3p.Objects(t, "snaps", "job/per-k/0")) == 0 {
			t.Fatalf("local state of %s at offset %d: no snapshot", kafkaID(c.id), c.upTo)
		}
		h, changes, err := decodeSnapshot(s3p.Get(t, "snaps", "job/per-k/0"))
		if err != nil {
			t.Fatal(err)
		}
		k, _, _ := decodeWindowKey(changes[0].Key)
		if h.upTo != c.upTo || h.id != c.id || len(changes) != 1 || k != c.key {
			t.Fatalf("local state of %s at offset %d, window %q: the snapshot copies %s at offset %d, window %q",
				kafkaID(c.id), c.upTo, c.key, kafkaID(h.id), h.upTo, k)
		}
	}
}
