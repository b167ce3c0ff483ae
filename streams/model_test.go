package streams

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// TestModelEquivalence runs random puts (random batch sizes, keys and
// record sizes), reads (random positions and limits) and restarts (with
// random segment sizes) against the log and against a plain in-memory
// model, for many seeds and shard counts: every read must give the same
// answer.
func TestModelEquivalence(t *testing.T) {
	seeds := 40
	if testing.Short() {
		seeds = 8
	}
	for seed := 0; seed < seeds; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 99))
		shards := 1 + rng.IntN(4)
		t.Run(fmt.Sprintf("seed=%d,shards=%d", seed, shards), func(t *testing.T) {
			runModel(t, rng, shards)
		})
	}
}

func runModel(t *testing.T, rng *rand.Rand, shards int) {
	mem := vfs.NewMem()
	segSizes := []int64{150, 700, 4096, 64 << 20}
	s := openMem(t, mem, Options{SegmentBytes: segSizes[rng.IntN(len(segSizes))]})
	defer func() { s.Close() }()
	mustCreate(t, s, "m", shards)
	ranges := EvenRanges(shards)
	model := make([][]Record, shards)
	for op := 0; op < 300; op++ {
		switch r := rng.IntN(100); {
		case r < 50:
			recs := make([]PutRecord, 1+rng.IntN(20))
			for i := range recs {
				key := make([]byte, 1+rng.IntN(10))
				for j := range key {
					key[j] = byte('a' + rng.IntN(26))
				}
				data := make([]byte, rng.IntN(300))
				for j := range data {
					data[j] = byte(rng.Uint32())
				}
				recs[i] = PutRecord{PartitionKey: string(key), Data: data}
			}
			res, err := s.Put(context.Background(), "m", recs)
			if err != nil {
				t.Fatal(err)
			}
			for i, rec := range recs {
				sh := 0
				for j, rg := range ranges {
					if rg.Contains(HashPartitionKey(rec.PartitionKey)) {
						sh = j
					}
				}
				want := Record{Seq: uint64(len(model[sh]) + 1), PartitionKey: rec.PartitionKey, Data: rec.Data}
				model[sh] = append(model[sh], want)
				if res[i].ShardIndex != sh || res[i].Seq != want.Seq {
					t.Fatalf("op %d: record %d went to %s/%d, model says %d/%d", op, i, res[i].ShardID, res[i].Seq, sh, want.Seq)
				}
			}
		case r < 95:
			sh := rng.IntN(shards)
			from := uint64(rng.IntN(len(model[sh]) + 3))
			limit := 1 + rng.IntN(50)
			maxBytes := 0
			if rng.IntN(2) == 0 {
				maxBytes = 1 + rng.IntN(2000)
			}
			got, err := s.Read("m", ShardID(sh), from, limit, maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			want, next := modelRead(model[sh], from, limit, maxBytes)
			if len(got.Records) != len(want) || got.Next != next {
				t.Fatalf("op %d: read %d from %d limit %d bytes %d: got %d records next %d, model %d next %d",
					op, sh, from, limit, maxBytes, len(got.Records), got.Next, len(want), next)
			}
			for i, w := range want {
				g := got.Records[i]
				if g.Seq != w.Seq || g.PartitionKey != w.PartitionKey || !bytes.Equal(g.Data, w.Data) {
					t.Fatalf("op %d: record %d differs: %d %q, model %d %q", op, i, g.Seq, g.PartitionKey, w.Seq, w.PartitionKey)
				}
			}
		default:
			s.Close()
			s = openMem(t, mem, Options{SegmentBytes: segSizes[rng.IntN(len(segSizes))]})
		}
	}
	if c := s.Corruptions(); len(c) != 0 {
		t.Fatal(c[0].Error())
	}
}

// modelRead is what a read must return: records from max(from, 1), at
// most limit, and past the first at most maxBytes of data in all.
func modelRead(recs []Record, from uint64, limit, maxBytes int) ([]Record, uint64) {
	if maxBytes == 0 {
		maxBytes = MaxReadBytes
	}
	start := max(from, 1)
	if start > uint64(len(recs)) {
		return nil, start
	}
	var out []Record
	total := 0
	for _, r := range recs[start-1:] {
		if len(out) == limit || (len(out) > 0 && total+len(r.Data) > maxBytes) {
			return out, r.Seq
		}
		out = append(out, r)
		total += len(r.Data)
	}
	return out, uint64(len(recs)) + 1
}
