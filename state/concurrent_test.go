package state

import (
	"fmt"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// Checkpoints taken while writers run hold, for each writer, exactly a
// prefix of its writes: nothing written later without what came before.
func TestCheckpointDuringWrites(t *testing.T) {
	fs := vfs.NewMem()
	db := mustOpen(t, fs, Options{Retain: 10})
	const writers, perWriter = 2, 3000
	var wg sync.WaitGroup
	for w := range writers {
		s := mustSpace(t, db, "op", fmt.Sprint(w))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if err := s.Set(fmt.Appendf(nil, "%06d", i), []byte("v")); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	for e := uint64(1); e <= 5; e++ {
		if _, err := db.Checkpoint(e, nil); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	db.Close()
	// Newest first: restoring an epoch removes the newer ones.
	for e := uint64(5); e >= 1; e-- {
		rdb, _, _, err := Restore("job", e, Options{FS: fs, Retain: 10})
		if err != nil {
			t.Fatal(err)
		}
		for w := range writers {
			got := dump(t, mustSpace(t, rdb, "op", fmt.Sprint(w)))
			for i := range len(got) {
				if _, ok := got[fmt.Sprintf("%06d", i)]; !ok {
					t.Fatalf("epoch %d writer %d: %d keys but key %d missing", e, w, len(got), i)
				}
			}
		}
		rdb.Close()
	}
}
