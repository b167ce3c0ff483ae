package streams

import (
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestSeqTagRecreatedStream: a stream deleted and created again under the
// same name refuses the sequence numbers of the old one, which would
// otherwise be positions in the new one (counters start at 1 in both).
func TestSeqTagRecreatedStream(t *testing.T) {
	s := openMem(t, vfs.NewMem(), Options{})
	defer s.Close()
	mustCreate(t, s, "re", 1)
	var old []PutResult
	for i := 0; i < 5; i++ {
		old = append(old, putOne(t, s, "re", keyFor(i), []byte("old")))
	}
	oldTag := seqTag(t, s, "re")
	if oldTag == 0 || old[0].Tag != oldTag {
		t.Fatalf("tag %d, put result tag %d", oldTag, old[0].Tag)
	}
	if err := s.DeleteStream("re"); err != nil {
		t.Fatal(err)
	}
	in := mustCreate(t, s, "re", 1)
	if in.SeqTag == 0 || in.SeqTag == oldTag {
		t.Fatalf("new stream's tag %d (old %d)", in.SeqTag, oldTag)
	}
	var fresh []PutResult
	for i := 0; i < 5; i++ {
		fresh = append(fresh, putOne(t, s, "re", keyFor(i), []byte("new")))
	}
	if fresh[0].Seq != old[0].Seq || fresh[0].SequenceNumber() == old[0].SequenceNumber() {
		t.Fatalf("same counter %d must give different numbers: %s, %s", fresh[0].Seq, fresh[0].SequenceNumber(), old[0].SequenceNumber())
	}
	if got := in.Shards[0].StartingSequenceNumber(); !strings.HasPrefix(fresh[0].SequenceNumber(), got[:24]) || got >= fresh[0].SequenceNumber() {
		t.Errorf("starting sequence number %s does not carry the tag of %s", got, fresh[0].SequenceNumber())
	}
	for _, it := range []IteratorType{AtSequenceNumber, AfterSequenceNumber} {
		_, err := s.Seek("re", ShardID(0), it, old[1].SequenceNumber(), time.Time{})
		if !errors.Is(err, ErrSeqNotFromStream) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "did not come from stream") {
			t.Errorf("%s of the old stream's %s: %v, want ErrSeqNotFromStream", it, old[1].SequenceNumber(), err)
		}
		pos, err := s.Seek("re", ShardID(0), it, fresh[1].SequenceNumber(), time.Time{})
		want := fresh[1].Seq
		if it == AfterSequenceNumber {
			want++
		}
		if err != nil || pos != want {
			t.Errorf("%s of the new stream's %s: %d %v, want %d", it, fresh[1].SequenceNumber(), pos, err, want)
		}
	}
}

// TestSeqTagLegacyStream: a stream whose metadata has no tag (created
// before tags existed) keeps issuing and accepting the numbers it always
// did, across restarts, and refuses tagged ones.
func TestSeqTagLegacyStream(t *testing.T) {
	mem := vfs.NewMem()
	s := openMem(t, mem, Options{})
	mustCreate(t, s, "legacy", 1)
	first := putOne(t, s, "legacy", "k", []byte("a"))
	tagged := first.SequenceNumber()
	s.Close()
	stripSeqTags(t, mem)

	s = openMem(t, mem, Options{})
	defer s.Close()
	if tag := seqTag(t, s, "legacy"); tag != 0 {
		t.Fatalf("legacy stream has tag %d", tag)
	}
	r := putOne(t, s, "legacy", "k", []byte("b"))
	const want = "49000000000000000000000000000000000000000000000000000002"
	if r.Seq != 2 || r.SequenceNumber() != want {
		t.Fatalf("legacy put: %d %s, want %s", r.Seq, r.SequenceNumber(), want)
	}
	pos, err := s.Seek("legacy", ShardID(0), AtSequenceNumber, "49000000000000000000000000000000000000000000000000000001", time.Time{})
	if err != nil || pos != 1 {
		t.Fatalf("seek to a legacy number: %d %v", pos, err)
	}
	if _, err := s.Seek("legacy", ShardID(0), AtSequenceNumber, tagged, time.Time{}); !errors.Is(err, ErrSeqNotFromStream) {
		t.Fatalf("seek to a tagged number %s on a legacy stream: %v", tagged, err)
	}
	in, _ := s.DescribeStream("legacy")
	if got := in.Shards[0].StartingSequenceNumber(); got != "49000000000000000000000000000000000000000000000000000000" {
		t.Fatalf("legacy starting sequence number %s", got)
	}
}

// stripSeqTags rewrites the store's metadata in fs as a store from before
// sequence tags wrote it: without the seq_tag fields.
func stripSeqTags(t *testing.T, fs vfs.FS) {
	t.Helper()
	path := fs.PathJoin(memDir, metaFileName)
	f, err := fs.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, st := range m["streams"].([]any) {
		if _, ok := st.(map[string]any)["seq_tag"]; ok {
			delete(st.(map[string]any), "seq_tag")
			n++
		}
	}
	if n == 0 {
		t.Fatalf("no seq_tag in %s", b)
	}
	if b, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(fs, path, b); err != nil {
		t.Fatal(err)
	}
}
