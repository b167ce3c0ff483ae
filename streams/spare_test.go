package streams

import (
	"bytes"
	"context"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// spareHeld is the capacity of the group buffers the store's shards keep.
func spareHeld(s *Store) int {
	n := 0
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.mu.streams {
		for _, sh := range st.shards {
			sh.mu.Lock()
			for _, b := range sh.mu.spare {
				n += cap(b)
			}
			sh.mu.Unlock()
		}
	}
	return n
}

// TestSpareBuffersBounded puts a large group to each of many shards: the
// buffers they keep for reuse stay within the store's budget, not a few
// MiB per shard, and a deleted stream's shards give theirs back.
func TestSpareBuffersBounded(t *testing.T) {
	checkGoroutines(t)
	s := openMem(t, vfs.NewMem(), Options{})
	defer s.Close()
	const budget = 1 << 20
	s.spareBudget = budget
	const shards = 8
	info := mustCreate(t, s, "b", shards)
	data := bytes.Repeat([]byte("x"), 600<<10)
	for _, sh := range info.Shards {
		if _, err := s.Put(context.Background(), "b", []PutRecord{{PartitionKey: "k", ExplicitHashKey: sh.Range.Start.String(), Data: data}}); err != nil {
			t.Fatal(err)
		}
	}
	if held := spareHeld(s); held > budget || held == 0 {
		t.Fatalf("shards keep %d bytes of spare buffers, want some and at most %d", held, budget)
	}
	if got := s.spareBytes.Load(); got != int64(spareHeld(s)) {
		t.Fatalf("spare bytes counted %d, held %d", got, spareHeld(s))
	}
	if err := s.DeleteStream("b"); err != nil {
		t.Fatal(err)
	}
	if got := s.spareBytes.Load(); got != 0 {
		t.Fatalf("a deleted stream's shards still count %d spare bytes", got)
	}
}
