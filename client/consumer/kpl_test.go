package consumer

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/internal/kplvectors"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
)

// TestDeaggregateVectors de-aggregates the shared KPL test vectors (made
// from the published format by an encoder independent of ours; the
// repository's copy of ../shared/kpl/vectors.json) and checks each user
// record, in order, against the list: over the whole hash-key space, and
// as shard 0 of a 2-shard stream, which keeps only the records marked
// in_shard_0_of_2.
func TestDeaggregateVectors(t *testing.T) {
	all := streams.HashRange{Start: mustKey(t, "0"), End: mustKey(t, "340282366920938463463374607431768211455")}
	half := streams.HashRange{Start: mustKey(t, "0"), End: mustKey(t, "170141183460469231731687303715884105727")}
	for _, v := range kplvectors.Load(t) {
		data, err := base64.StdEncoding.DecodeString(v.DataBase64)
		if err != nil {
			t.Fatal(err)
		}
		kr := types.Record{PartitionKey: aws.String(v.OuterKey), Data: data, SequenceNumber: aws.String("49000000000000000000000000000000000000000000000000000001")}
		for _, rng := range []struct {
			name      string
			r         streams.HashRange
			onlyShard bool
		}{{"whole range", all, false}, {"shard 0 of 2", half, true}} {
			var want, got []string
			for _, u := range v.UserRecords {
				if rng.onlyShard && u.InShard0Of2 != nil && !*u.InShard0Of2 {
					continue
				}
				if rng.onlyShard && u.InShard0Of2 == nil && u.SubSequence != nil && streams.HashPartitionKey(u.PartitionKey).Cmp(half.End) > 0 && u.ExplicitHashKey == nil {
					continue // a vector without the mark: its key decides
				}
				d := ""
				if u.Data != nil {
					d = *u.Data
				} else {
					b, _ := base64.StdEncoding.DecodeString(*u.DataBase64)
					d = string(b)
				}
				ehk, sub, agg := "", uint64(0), u.SubSequence != nil
				if u.ExplicitHashKey != nil {
					ehk = *u.ExplicitHashKey
				}
				if u.SubSequence != nil {
					sub = *u.SubSequence
				}
				want = append(want, fmt.Sprintf("sub=%d agg=%v key=%q ehk=%q data=%q", sub, agg, u.PartitionKey, ehk, d))
			}
			recs, err := Deaggregate(kr, rng.r)
			if err != nil {
				t.Fatalf("%s (%s): %v", v.Name, rng.name, err)
			}
			for _, r := range recs {
				if r.SequenceNumber != *kr.SequenceNumber {
					t.Errorf("%s: user record carries sequence number %s", v.Name, r.SequenceNumber)
				}
				got = append(got, fmt.Sprintf("sub=%d agg=%v key=%q ehk=%q data=%q", r.SubSequenceNumber, r.Aggregated, r.PartitionKey, r.ExplicitHashKey, r.Data))
			}
			if d := testutil.Diff(want, got); d != "" {
				t.Errorf("vector %s (%s):\n%s", v.Name, rng.name, d)
			}
		}
	}
}

func mustKey(t *testing.T, s string) streams.HashKey {
	t.Helper()
	k, err := streams.ParseHashKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
