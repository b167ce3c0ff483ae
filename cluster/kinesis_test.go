package cluster

import (
	"testing"

	"github.com/runnel-dev/runnel/consumergroups"
)

// Positions compare as Kinesis orders records: by sequence number as a
// number (of any length), then by sub-sequence number; nothing is before
// everything and SHARD_END after everything. A record is skipped when its
// position is not after the committed one, so an error here duplicates or
// loses records.
func TestPositionsOrder(t *testing.T) {
	cp := func(seq string, sub uint64) consumergroups.Checkpoint {
		return consumergroups.Checkpoint{SequenceNumber: seq, SubSequenceNumber: sub}
	}
	end := cp(consumergroups.ShardEnd, 0)
	ascending := []consumergroups.Checkpoint{cp("", 0), cp("9", 0), cp("10", 0), cp("10", 1), cp("10", 2),
		cp("49590338271490256608559692538361571095921575989136588898", 0),
		cp("49590338271490256608559692538361571095921575989136588898", 7),
		cp("49590338271490256608559692538361571095921575989136588899", 0), end}
	for i, a := range ascending {
		for j, b := range ascending {
			if got, want := after(a, b), i > j; got != want {
				t.Errorf("after(%v, %v) = %v, want %v", a, b, got, want)
			}
		}
	}
}
