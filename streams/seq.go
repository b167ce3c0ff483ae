package streams

import (
	"fmt"
	"strconv"
)

// Sequence numbers. Inside a shard a record's sequence is a counter that
// starts at 1 and grows by one per record; it is never reused, because it is
// stored in every record frame and recovered on open. Outside, it is a
// 56-digit decimal string like AWS's: "49", the shard index in 10 digits, then
// the counter in 44 digits. Within a shard the strings therefore compare the
// same way as integers and as big integers (the KCL does the latter), and a
// sequence number names the shard it belongs to.
const seqDigits = 56

// FormatSeq renders a shard's counter as the public sequence number.
func FormatSeq(shardIndex int, counter uint64) string {
	return fmt.Sprintf("49%010d%044d", shardIndex, counter)
}

// ParseSeq splits a public sequence number into shard index and counter.
func ParseSeq(s string) (shardIndex int, counter uint64, err error) {
	if len(s) != seqDigits || s[:2] != "49" {
		return 0, 0, invalid("parse sequence number", "", "%q is not a sequence number of this server (56 digits starting 49)", s)
	}
	idx, err1 := strconv.ParseUint(s[2:12], 10, 32)
	hi := s[12:24]
	for _, c := range hi {
		if c != '0' {
			return 0, 0, invalid("parse sequence number", "", "%q is out of range", s)
		}
	}
	ctr, err2 := strconv.ParseUint(s[24:], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, invalid("parse sequence number", "", "%q is not a decimal sequence number", s)
	}
	return int(idx), ctr, nil
}

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
