package streams

import (
	"context"
	"fmt"
	"sync"
	"testing"
)

// TestWriteStatsCountGroupsAndSyncs: a lone producer's puts are each one
// commit group with one fdatasync; concurrent producers' records are all
// counted whatever groups they share, and every group is synced.
func TestWriteStatsCountGroupsAndSyncs(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	defer s.Close()
	mustCreate(t, s, "one", 1)
	recs := make([]PutRecord, 10)
	for i := range recs {
		recs[i] = PutRecord{PartitionKey: keyFor(i), Data: payload(fmt.Sprint(i), 50)}
	}
	for i := 0; i < 5; i++ {
		if _, err := s.Put(context.Background(), "one", recs); err != nil {
			t.Fatal(err)
		}
	}
	if got, want := s.WriteStats(), (WriteStats{Groups: 5, Records: 50, Syncs: 5}); got != want {
		t.Fatalf("after 5 puts of 10 records by one producer: %+v, want %+v", got, want)
	}

	mustCreate(t, s, "four", 4)
	var wg sync.WaitGroup
	for p := 0; p < 8; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := s.Put(context.Background(), "four", recs); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	got := s.WriteStats()
	if got.Records != 50+8*20*10 {
		t.Errorf("records written %d, want %d", got.Records, 50+8*20*10)
	}
	if got.Syncs != got.Groups || got.Groups <= 5 || got.Groups > 5+8*20*4 {
		t.Errorf("after 160 puts over 4 shards: %+v; want one sync a group, and between 1 and 4 groups a put", got)
	}
}
