package streams

import (
	"fmt"
	"math/rand/v2"
	"strconv"
)

// Sequence numbers. Inside a shard a record's sequence is a counter that
// starts at 1 and grows by one per record; it is never reused, because it is
// stored in every record frame and recovered on open. Outside, it is a
// 56-digit decimal string like AWS's: "49", the shard index in 10 digits,
// the stream's sequence tag in 12 digits, then the counter in 32 digits.
//
// The sequence tag tells one incarnation of a stream from another of the
// same name: CreateStream draws it at random (never 0) and the stream's
// metadata keeps it. Counters start at 1 in every stream, so without it a
// sequence number of a deleted stream would be a valid position in a new
// stream of the same name; with it, such a number is refused (Seek gives
// ErrSeqNotFromStream). Streams created before tags existed have tag 0,
// and their numbers are what they always were (the 12 digits were zeros).
//
// Within a shard the tag and index are fixed, so the strings compare the
// same way as the counters, as integers and as big integers (the KCL does
// the latter), and a sequence number names the shard it belongs to.
const (
	seqDigits    = 56
	tagDigits    = 12
	ctrDigits    = seqDigits - 2 - 10 - tagDigits
	maxSeqTag    = 999_999_999_999 // the largest tag: 12 digits
	seqTagOffset = 12              // where the tag's digits start
)

// FormatSeq renders a shard's counter as the public sequence number of a
// stream whose sequence tag is tag (StreamInfo.SeqTag).
func FormatSeq(tag uint64, shardIndex int, counter uint64) string {
	var b [seqDigits]byte
	return string(AppendSeq(b[:0], tag, shardIndex, counter))
}

const seqZeros = "00000000000000000000000000000000"

// AppendSeq appends FormatSeq(tag, shardIndex, counter) to b, without fmt:
// it runs once per record on the put and read paths.
func AppendSeq(b []byte, tag uint64, shardIndex int, counter uint64) []byte {
	var tmp [20]byte
	b = append(b, '4', '9')
	d := strconv.AppendUint(tmp[:0], uint64(shardIndex), 10)
	b = append(b, seqZeros[:max(0, 10-len(d))]...)
	b = append(b, d...)
	if tag == 0 {
		b = append(b, seqZeros[:tagDigits]...)
	} else {
		d = strconv.AppendUint(tmp[:0], tag, 10)
		b = append(b, seqZeros[:max(0, tagDigits-len(d))]...)
		b = append(b, d...)
	}
	d = strconv.AppendUint(tmp[:0], counter, 10)
	b = append(b, seqZeros[:max(0, ctrDigits-len(d))]...)
	return append(b, d...)
}

// ParseSeq splits a public sequence number into its stream's sequence tag,
// shard index and counter. It does not check the tag against a stream:
// Seek does.
func ParseSeq(s string) (tag uint64, shardIndex int, counter uint64, err error) {
	if len(s) != seqDigits || s[:2] != "49" {
		return 0, 0, 0, invalid("parse sequence number", "", "%q is not a sequence number of this server (56 digits starting 49)", s)
	}
	idx, err1 := strconv.ParseUint(s[2:seqTagOffset], 10, 32)
	tag, err2 := strconv.ParseUint(s[seqTagOffset:seqTagOffset+tagDigits], 10, 64)
	ctr, err3 := strconv.ParseUint(s[seqTagOffset+tagDigits:], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		if err3 != nil && err3.(*strconv.NumError).Err == strconv.ErrRange {
			return 0, 0, 0, invalid("parse sequence number", "", "%q is out of range", s)
		}
		return 0, 0, 0, invalid("parse sequence number", "", "%q is not a decimal sequence number", s)
	}
	return tag, int(idx), ctr, nil
}

// notFromStream is Seek's error for a sequence number whose tag is not the
// stream's.
func notFromStream(op, stream, seq string) error {
	return &Error{Op: op, Field: "sequence_number", Err: ErrSeqNotFromStream,
		Msg: fmt.Sprintf("sequence number %s did not come from stream %q: it was issued by another stream, or by one of that name deleted since", seq, stream)}
}

// newSeqTag draws a stream's sequence tag: random, in [1, maxSeqTag]. Two
// incarnations of a stream share a tag with a chance of one in 10^12.
func newSeqTag() uint64 { return rand.Uint64N(maxSeqTag) + 1 }

// ShardID renders a shard index the way Kinesis names shards.
func ShardID(index int) string { return fmt.Sprintf("shardId-%012d", index) }

// ParseShardID reads "shardId-000000000003" (or a bare index) as 3.
func ParseShardID(id string) (int, bool) {
	s := id
	if len(s) == len("shardId-000000000000") && s[:8] == "shardId-" {
		s = s[8:]
	} else if len(s) > 12 {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, false
	}
	return int(n), true
}
