package sources

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

func newStore(t *testing.T, name string, shards int) *streams.Store {
	t.Helper()
	return streamstest.Open(t, streams.Options{}, name, shards)
}

func put(t *testing.T, store *streams.Store, name string, from, to int) {
	t.Helper()
	var recs []streams.PutRecord
	for i := from; i < to; i++ {
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprintf("k%d", i%7), Data: fmt.Appendf(nil, `{"n":%d}`, i)})
	}
	if _, err := store.Put(context.Background(), name, recs); err != nil {
		t.Fatal(err)
	}
}

func ns(recs []Record) []float64 {
	var out []float64
	for _, r := range recs {
		out = append(out, r.Value.(map[string]any)["n"].(float64))
	}
	return out
}

func TestStreamSourceFollowsSplitAndMerge(t *testing.T) {
	store := newStore(t, "clicks", 1)
	put(t, store, "clicks", 0, 5)
	if err := store.UpdateShardCount("clicks", 2); err != nil {
		t.Fatal(err)
	}
	put(t, store, "clicks", 5, 10)
	if err := store.UpdateShardCount("clicks", 1); err != nil {
		t.Fatal(err)
	}
	put(t, store, "clicks", 10, 15)
	src, err := NewStream(StreamConfig{Store: store, Stream: "clicks"})
	if err != nil {
		t.Fatal(err)
	}
	shards, err := src.Shards(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Shard{}
	for _, s := range shards {
		byID[s.ID] = s
	}
	merged := shards[len(shards)-1]
	if len(merged.Parents) != 2 {
		t.Fatalf("merged shard %+v should have two parents; shards %+v", merged, shards)
	}
	// Read the lineage the way the runtime does: a shard after its parents.
	var got []float64
	done := map[string]bool{}
	var read func(sh Shard)
	read = func(sh Shard) {
		for _, p := range sh.Parents {
			if !done[p] {
				return
			}
		}
		if done[sh.ID] {
			return
		}
		r, err := src.Open(context.Background(), sh, "")
		if err != nil {
			t.Fatal(err)
		}
		var recs []Record
		if sh.ID == merged.ID {
			recs = readUntil(t, r, 5) // the merged shard is open: no end
		} else {
			recs = readAll(t, r, 3)
		}
		got = append(got, ns(recs)...)
		for _, rec := range recs {
			if rec.PartitionKey == "" || rec.Arrival == 0 {
				t.Fatalf("record lacks key or arrival: %+v", rec)
			}
		}
		done[sh.ID] = true
		for _, c := range r.Children() {
			if !reflect.DeepEqual(c.Parents, byID[c.ID].Parents) {
				t.Errorf("child %s parents %v, listed %v", c.ID, c.Parents, byID[c.ID].Parents)
			}
			read(c)
		}
	}
	read(shards[0])
	if len(got) != 15 || !done[merged.ID] {
		t.Fatalf("read %v (%d records), merged shard read: %v", got, len(got), done[merged.ID])
	}
	for i, n := range got[:5] {
		if n != float64(i) {
			t.Fatalf("parent records out of order: %v", got)
		}
	}
	for i, n := range got[10:] {
		if n != float64(10+i) {
			t.Fatalf("merged shard records %v", got[10:])
		}
	}
}

func TestStreamSourceWaitsForRecordsAndResumes(t *testing.T) {
	store := newStore(t, "s", 1)
	src, _ := NewStream(StreamConfig{Store: store, Stream: "s"})
	r := openOnly(t, src, "")
	type result struct {
		recs []Record
		err  error
	}
	got := make(chan result)
	go func() {
		buf := make([]Record, 10)
		n, err := r.Read(context.Background(), buf)
		got <- result{buf[:n], err}
	}()
	put(t, store, "s", 0, 3)
	res := <-got
	if res.err != nil || len(res.recs) == 0 || ns(res.recs)[0] != 0 {
		t.Fatalf("woken read: %+v", res)
	}
	// An idle read ends with the context, which the runtime uses for idleness.
	all := readUntil(t, r, 3-len(res.recs))
	last := append(res.recs, all...)[2]
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := r.Read(ctx, make([]Record, 10)); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("idle read err = %v", err)
	}
	put(t, store, "s", 3, 5)
	r2 := openOnly(t, src, last.Position)
	if n := ns(readUntil(t, r2, 2)); !reflect.DeepEqual(n, []float64{3, 4}) {
		t.Fatalf("resumed after %s: %v", last.Position, n)
	}
}

func readUntil(t *testing.T, r Reader, n int) []Record {
	t.Helper()
	var out []Record
	buf := make([]Record, 10)
	for len(out) < n {
		k, err := r.Read(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, buf[:k]...)
	}
	return out
}

func TestStreamSourceLatestSkipsOldRecordsButNotNewShards(t *testing.T) {
	store := newStore(t, "s", 1)
	put(t, store, "s", 0, 3)
	src, _ := NewStream(StreamConfig{Store: store, Stream: "s", Start: StartLatest, Format: FormatText})
	shards, _ := src.Shards(context.Background())
	r, err := src.Open(context.Background(), shards[0], "")
	if err != nil {
		t.Fatal(err)
	}
	put(t, store, "s", 3, 4)
	if err := store.UpdateShardCount("s", 2); err != nil {
		t.Fatal(err)
	}
	put(t, store, "s", 4, 20)
	recs := readAll(t, r, 10)
	if len(recs) != 1 || recs[0].Value != `{"n":3}` {
		t.Fatalf("latest read %+v, want only the record put after open, as text", recs)
	}
	total := 0
	for _, c := range r.Children() {
		cr, err := src.Open(context.Background(), c, "")
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]Record, 100)
		n, err := cr.Read(context.Background(), buf)
		if err != nil && err != io.EOF {
			t.Fatal(err)
		}
		total += n
	}
	if total != 16 {
		t.Fatalf("children gave %d records, want all 16 written to them", total)
	}
}

func TestStreamConfigValidate(t *testing.T) {
	store := newStore(t, "s", 1)
	for _, c := range []StreamConfig{{Stream: "s"}, {Store: store, Stream: "bad name"}, {Store: store, Stream: "s", Start: "now"},
		{Store: store, Stream: "s", Start: StartAtTimestamp}, {Store: store, Stream: "s", Format: "xml"},
		{Store: store, Stream: "s", Format: FormatText, RawJSON: true}} {
		if _, err := NewStream(c); !errors.Is(err, ErrConfig) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}

func TestStreamPositionsAreSequenceNumbers(t *testing.T) {
	for _, tag := range []uint64{0, 1, 123456789012, 999999999999} {
		r := &streamReader{index: 3, tag: tag, seqPrefix: streams.FormatSeq(tag, 3, 0)[:seqPrefixLen]}
		for _, c := range []uint64{0, 1, 9, 10, 1234567890123456789, ^uint64(0)} {
			if got, want := r.seq(c), streams.FormatSeq(tag, 3, c); got != want {
				t.Errorf("tag %d: seq(%d) = %s, want %s", tag, c, got, want)
			}
		}
	}
}

// TestStreamSourcePositionsOfRecreatedStream: the positions a reader hands
// on carry the stream's sequence tag, and a position of a stream deleted
// and created again under the same name is refused, not taken as a
// position in the new one (which would skip its first records).
func TestStreamSourcePositionsOfRecreatedStream(t *testing.T) {
	store := newStore(t, "s", 1)
	src, _ := NewStream(StreamConfig{Store: store, Stream: "s"})
	put(t, store, "s", 0, 3)
	old := readUntil(t, openOnly(t, src, ""), 3)
	info, _ := store.DescribeStream("s")
	if tag, _, ctr, err := streams.ParseSeq(old[1].Position); err != nil || tag != info.SeqTag || tag == 0 || ctr != 2 {
		t.Fatalf("position %s: tag %d counter %d %v, want the stream's tag %d", old[1].Position, tag, ctr, err, info.SeqTag)
	}
	if err := store.DeleteStream("s"); err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateStream("s", 1, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	put(t, store, "s", 10, 15)
	shards, _ := src.Shards(context.Background())
	if _, err := src.Open(context.Background(), shards[0], old[1].Position); !errors.Is(err, streams.ErrSeqNotFromStream) {
		t.Fatalf("open after the old stream's %s: %v, want ErrSeqNotFromStream", old[1].Position, err)
	}
	fresh := readUntil(t, openOnly(t, src, ""), 5)
	if n := ns(fresh); n[0] != 10 {
		t.Fatalf("new stream read %v", n)
	}
	if n := ns(readUntil(t, openOnly(t, src, fresh[1].Position), 3)); !reflect.DeepEqual(n, []float64{12, 13, 14}) {
		t.Fatalf("resumed after the new stream's %s: %v", fresh[1].Position, n)
	}
}

// TestStreamSourceReadAheadAndRawJSON: small reads served from one larger
// store read return every record once, in order, with positions that
// resume right after them; with RawJSON the values are each record's own
// bytes, and a bad record is not the source's error.
func TestStreamSourceReadAheadAndRawJSON(t *testing.T) {
	store := newStore(t, "s", 1)
	put(t, store, "s", 0, 25)
	if _, err := store.Put(context.Background(), "s", []streams.PutRecord{{PartitionKey: "k", Data: []byte(`{bad`)}}); err != nil {
		t.Fatal(err)
	}
	put(t, store, "s", 26, 30)
	src, err := NewStream(StreamConfig{Store: store, Stream: "s", RawJSON: true})
	if err != nil {
		t.Fatal(err)
	}
	r := openOnly(t, src, "")
	var got []Record
	buf := make([]Record, 7)
	for len(got) < 30 {
		n, err := r.Read(context.Background(), buf)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, buf[:n]...)
	}
	for i, rec := range got {
		want := fmt.Sprintf(`{"n":%d}`, i)
		if i == 25 {
			want = `{bad`
		}
		raw, ok := rec.Value.(json.RawMessage)
		if !ok || string(raw) != want {
			t.Fatalf("record %d: %#v", i, rec.Value)
		}
		if cap(raw) != len(raw) {
			t.Fatalf("record %d shares capacity with the next one", i)
		}
	}
	r2 := openOnly(t, src, got[11].Position)
	if n, err := r2.Read(context.Background(), buf); err != nil || string(buf[0].Value.(json.RawMessage)) != `{"n":12}` || n == 0 {
		t.Fatalf("resumed after record 11: %d %v %#v", n, err, buf[0].Value)
	}
	// Decoding, the bad record is the source's error once the records
	// before it are returned.
	dec, _ := NewStream(StreamConfig{Store: store, Stream: "s"})
	r3 := openOnly(t, dec, got[20].Position)
	n, err := r3.Read(context.Background(), make([]Record, 10))
	if err != nil || n != 4 {
		t.Fatalf("read up to the bad record: %d %v", n, err)
	}
	var re *RecordError
	if _, err := r3.Read(context.Background(), make([]Record, 10)); !errors.As(err, &re) || re.Position != got[25].Position {
		t.Fatalf("bad record: %v", err)
	}
}
