package producer

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/runnel-dev/runnel/internal/kplvectors"
	"github.com/runnel-dev/runnel/internal/testutil"
)

func testSeed(t *testing.T) uint64 { return testutil.Seed(t) }

// TestAggregateVectors checks the test decoder against the shared vectors
// (made by an independent encoder), and the encoder's output byte for byte
// where a vector's input fits it (no tags, no explicit hash keys).
func TestAggregateVectors(t *testing.T) {
	encoded := 0
	for _, v := range kplvectors.Load(t) {
		blob, err := base64.StdEncoding.DecodeString(v.DataBase64)
		if err != nil {
			t.Fatal(err)
		}
		got, err := deaggregate(blob)
		if v.UserRecords[0].SubSequence == nil {
			if err != errNotAggregated {
				t.Errorf("%s: decoder took a plain record for an aggregated one (%v)", v.Name, err)
			}
			continue
		}
		if err != nil || len(got) != len(v.UserRecords) {
			t.Fatalf("%s: decoded %d records, err %v; want %d", v.Name, len(got), err, len(v.UserRecords))
		}
		plain := true
		agg := newAggregator()
		for i, u := range v.UserRecords {
			if got[i].Key != u.PartitionKey || string(got[i].Data) != *u.Data {
				t.Errorf("%s[%d]: got %q %q, want %q %q", v.Name, i, got[i].Key, got[i].Data, u.PartitionKey, *u.Data)
			}
			if u.ExplicitHashKey != nil {
				plain = false
			}
			agg.add(u.PartitionKey, []byte(*u.Data))
		}
		if v.Name == "basic" || !plain {
			continue // tags or explicit hash keys: the encoder writes neither
		}
		if enc := agg.encode(); !bytes.Equal(enc, blob) {
			t.Errorf("%s: encoder output differs from the vector (%d vs %d bytes)", v.Name, len(enc), len(blob))
		}
		encoded++
	}
	if encoded == 0 {
		t.Fatal("no vector checked the encoder")
	}
}

// TestAggregateRoundTrip encodes random user records and decodes them with
// the test decoder; the predicted size must be the encoded size.
func TestAggregateRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(testSeed(t), 1))
	for round := 0; round < 200; round++ {
		agg := newAggregator()
		var want []userRecord
		n := 1 + rng.IntN(300)
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("key-%d", rng.IntN(1+rng.IntN(40)))
			d := make([]byte, rng.IntN([]int{4, 200, 5000}[rng.IntN(3)]))
			for j := range d {
				d[j] = byte(rng.Uint32())
			}
			predicted := agg.sizeWith(k, d)
			agg.add(k, d)
			want = append(want, userRecord{Key: k, Data: d})
			if rng.IntN(20) != 0 && i != n-1 {
				continue
			}
			if got := len(agg.encode()); got != predicted {
				t.Fatalf("round %d record %d: predicted %d bytes, encoded %d", round, i, predicted, got)
			}
		}
		got, err := deaggregate(agg.encode())
		if err != nil || len(got) != len(want) {
			t.Fatalf("round %d: decoded %d records, err %v; want %d", round, len(got), err, len(want))
		}
		for i := range want {
			if got[i].Key != want[i].Key || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Fatalf("round %d record %d: got key %q (%d bytes), want %q (%d bytes)", round, i, got[i].Key, len(got[i].Data), want[i].Key, len(want[i].Data))
			}
		}
	}
}

// FuzzDeaggregateEncode: whatever records go in come out of the test
// decoder the same.
func FuzzAggregateRoundTrip(f *testing.F) {
	f.Add("k", []byte("v"), "k2", []byte{})
	f.Fuzz(func(t *testing.T, k1 string, d1 []byte, k2 string, d2 []byte) {
		agg := newAggregator()
		agg.add(k1, d1)
		agg.add(k2, d2)
		got, err := deaggregate(agg.encode())
		if err != nil || len(got) != 2 || got[0].Key != k1 || got[1].Key != k2 || !bytes.Equal(got[0].Data, d1) || !bytes.Equal(got[1].Data, d2) {
			t.Fatalf("round trip of (%q,%q) (%q,%q): %v %+v", k1, d1, k2, d2, err, got)
		}
	})
}
