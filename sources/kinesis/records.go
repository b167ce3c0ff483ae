package kinesis

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"

	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/kpl"
)

// position is where a record sits in its shard: a Kinesis sequence number
// and, for a user record of an aggregated record, its sub-sequence number.
type position struct {
	seq string
	sub int64 // -1: a whole Kinesis record
}

func (p position) String() string {
	if p.sub < 0 {
		return p.seq
	}
	return p.seq + "/" + strconv.FormatInt(p.sub, 10)
}

// parsePosition reads "SEQ" or "SEQ/SUB".
func parsePosition(s string) (position, error) {
	seq, sub, agg := strings.Cut(s, "/")
	p := position{seq: seq, sub: -1}
	if !isDecimal(seq) {
		return p, fmt.Errorf("position %q is not SEQUENCE or SEQUENCE/SUBSEQUENCE", s)
	}
	if agg {
		n, err := strconv.ParseInt(sub, 10, 64)
		if err != nil || n < 0 {
			return p, fmt.Errorf("position %q is not SEQUENCE or SEQUENCE/SUBSEQUENCE", s)
		}
		p.sub = n
	}
	return p, nil
}

// raw is a record read but not decoded yet.
type raw struct {
	data    []byte
	key     string
	pos     position
	arrival int64
	// err is a damaged aggregated record: returned as a record error in
	// its place.
	err error
}

// unpacker turns Kinesis records into user records: KPL aggregated ones
// are de-aggregated and filtered to the shard's hash range; a resumed
// aggregated record skips the user records up to skip.
type unpacker struct {
	rng  streams.HashRange
	skip position // sub >= 0: drop sub-records <= skip.sub of record skip.seq
	// filtered counts user records dropped as outside the hash range.
	filtered int64
}

func (u *unpacker) add(out []raw, r types.Record) []raw {
	seq := deref(r.SequenceNumber)
	var arrival int64
	if r.ApproximateArrivalTimestamp != nil {
		arrival = r.ApproximateArrivalTimestamp.UnixMilli()
	}
	skipTo := int64(-1)
	if u.skip.sub >= 0 && u.skip.seq == seq {
		skipTo = u.skip.sub
	}
	u.skip = position{sub: -1} // only the first record read can be the resumed one
	recs, ok, err := kpl.Deaggregate(r.Data)
	if !ok {
		return append(out, raw{data: r.Data, key: deref(r.PartitionKey), pos: position{seq: seq, sub: -1}, arrival: arrival})
	}
	if err == nil {
		n := len(recs)
		recs, err = kpl.Filter(recs, u.rng)
		u.filtered += int64(n - len(recs))
	}
	if err != nil {
		return append(out, raw{pos: position{seq: seq, sub: -1}, arrival: arrival, err: err})
	}
	for _, ur := range recs {
		if int64(ur.SubSequence) <= skipTo {
			continue
		}
		out = append(out, raw{data: ur.Data, key: ur.PartitionKey, pos: position{seq: seq, sub: int64(ur.SubSequence)}, arrival: arrival})
	}
	return out
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// take decodes records from pending into buf, as sources.Reader.Read
// specifies: a record that does not decode is returned alone as a
// *sources.RecordError, after the good records before it.
func take(shard string, dec Decoder, pending *[]raw, buf []sources.Record) (int, error) {
	p := *pending
	n := 0
	for n < len(buf) && len(p) > 0 {
		r := p[0]
		err := r.err
		var v any
		if err == nil {
			v, err = dec.Decode(r.data)
		}
		if err != nil {
			if n > 0 {
				break
			}
			p[0] = raw{}
			*pending = p[1:]
			return 0, &sources.RecordError{Shard: shard, Position: r.pos.String(), Err: err}
		}
		buf[n] = sources.Record{Value: v, PartitionKey: r.key, Position: r.pos.String(), Arrival: r.arrival}
		p[0] = raw{}
		p = p[1:]
		n++
	}
	*pending = p
	return n, nil
}
