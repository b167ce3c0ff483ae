package consumer

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/kpl"
)

// userRecords turns Kinesis records into user records: aggregated records
// are unpacked (keeping, as the KCL does, only the user records whose hash
// key lies in the shard's range rng), and user records at or before pos
// are skipped (the read resumed at pos's sequence number).
func (r *shardRunner) userRecords(in []types.Record, rng streams.HashRange, pos consumergroups.Checkpoint) []Record {
	var out []Record
	for _, kr := range in {
		seq := aws.ToString(kr.SequenceNumber)
		recs, err := Deaggregate(kr, rng)
		if err != nil {
			// The record carries the magic and a matching digest but its
			// body is damaged: handed whole, so nothing is lost, and
			// reported.
			r.w.m.damaged.Inc()
			r.w.log.Error("damaged KPL aggregated record; handing it whole", "shard", r.lease.Shard, "sequence_number", seq, "err", err)
		}
		for _, u := range recs {
			if seq == pos.SequenceNumber && u.SubSequenceNumber <= pos.SubSequenceNumber {
				continue
			}
			out = append(out, u)
		}
	}
	return out
}

// Deaggregate returns the user records of one Kinesis record read from a
// shard whose hash-key range is rng: the record itself when it is not a
// KPL aggregated record, else the user records it packs whose hash key lies
// in rng, each with its sub-sequence number. A damaged aggregated record
// comes back whole, with the error.
func Deaggregate(kr types.Record, rng streams.HashRange) ([]Record, error) {
	seq := aws.ToString(kr.SequenceNumber)
	var at time.Time
	if kr.ApproximateArrivalTimestamp != nil {
		at = *kr.ApproximateArrivalTimestamp
	}
	whole := []Record{{PartitionKey: aws.ToString(kr.PartitionKey), Data: kr.Data, SequenceNumber: seq, ArrivalTime: at}}
	users, ok, err := kpl.Deaggregate(kr.Data)
	if !ok {
		return whole, nil
	}
	if err == nil {
		users, err = kpl.Filter(users, rng)
	}
	if err != nil {
		return whole, err
	}
	out := make([]Record, 0, len(users))
	for _, u := range users {
		out = append(out, Record{PartitionKey: u.PartitionKey, ExplicitHashKey: u.ExplicitHashKey, Data: u.Data,
			SequenceNumber: seq, SubSequenceNumber: u.SubSequence, Aggregated: true, ArrivalTime: at})
	}
	return out, nil
}
