package engine

import (
	"context"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/state"
)

// TestMaxStagedRows: a Transactional sink given more rows than
// Options.MaxStagedRows without a checkpoint fails the job with an error
// naming the sink, instead of holding them all.
func TestMaxStagedRows(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	shards := makeShards(rng, 1, 200, 5)
	f := newFeed(shards)
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	j, err := Start(context.Background(), sumGraph(f, &outside{commits: map[uint64]bool{}}),
		Options{State: db, MaxStagedRows: 50, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	f.release(200)
	f.end()
	err = j.Wait()
	if err == nil || !strings.Contains(err.Error(), "sink out") || !strings.Contains(err.Error(), "limit of 50") {
		t.Fatalf("job ended with %v, want an error naming sink out and the limit", err)
	}
}
