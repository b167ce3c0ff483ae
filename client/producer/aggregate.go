package producer

import (
	"crypto/md5"

	"google.golang.org/protobuf/encoding/protowire"
)

// The KPL's aggregated record: the magic bytes, then the protobuf message
//
//	AggregatedRecord { repeated string partition_key_table = 1;
//	                   repeated string explicit_hash_key_table = 2;
//	                   repeated Record records = 3; }
//	Record { required uint64 partition_key_index = 1;
//	         optional uint64 explicit_hash_key_index = 2;
//	         required bytes data = 3; repeated Tag tags = 4; }
//
// then the 16-byte MD5 of the message. Consumers (the KCL, Runnel's stream
// source) give user record i the sub-sequence number i.
var aggMagic = []byte{0xF3, 0x89, 0x9A, 0xC2}

const (
	aggOverhead  = 4 + md5.Size // magic + trailer
	fieldPKTable = 1
	fieldRecords = 3
	fieldPKIndex = 1
	fieldData    = 3
)

// aggregator collects user records into one aggregated record. The
// partition key table lists keys in order of first use.
type aggregator struct {
	pkIndex map[string]uint64
	pkTable []string
	recs    []aggRec
	size    int // encoded size of the message so far (without magic and trailer)
}

type aggRec struct {
	pk   uint64
	data []byte
}

func newAggregator() *aggregator {
	return &aggregator{pkIndex: map[string]uint64{}}
}

// sizeWith returns the whole aggregated record's size if a record with key
// and data were added.
func (a *aggregator) sizeWith(key string, data []byte) int {
	n := a.size
	idx, ok := a.pkIndex[key]
	if !ok {
		idx = uint64(len(a.pkTable))
		n += protowire.SizeTag(fieldPKTable) + protowire.SizeBytes(len(key))
	}
	inner := recordSize(idx, len(data))
	n += protowire.SizeTag(fieldRecords) + protowire.SizeBytes(inner)
	return aggOverhead + n
}

func recordSize(pkIndex uint64, dataLen int) int {
	return protowire.SizeTag(fieldPKIndex) + protowire.SizeVarint(pkIndex) +
		protowire.SizeTag(fieldData) + protowire.SizeBytes(dataLen)
}

// add appends a user record.
func (a *aggregator) add(key string, data []byte) {
	a.size = a.sizeWith(key, data) - aggOverhead
	idx, ok := a.pkIndex[key]
	if !ok {
		idx = uint64(len(a.pkTable))
		a.pkIndex[key] = idx
		a.pkTable = append(a.pkTable, key)
	}
	a.recs = append(a.recs, aggRec{pk: idx, data: data})
}

func (a *aggregator) len() int { return len(a.recs) }

// encode returns the aggregated record: magic, message, MD5 of the message.
func (a *aggregator) encode() []byte {
	out := make([]byte, 0, aggOverhead+a.size)
	out = append(out, aggMagic...)
	start := len(out)
	for _, k := range a.pkTable {
		out = protowire.AppendTag(out, fieldPKTable, protowire.BytesType)
		out = protowire.AppendString(out, k)
	}
	for _, r := range a.recs {
		out = protowire.AppendTag(out, fieldRecords, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(recordSize(r.pk, len(r.data))))
		out = protowire.AppendTag(out, fieldPKIndex, protowire.VarintType)
		out = protowire.AppendVarint(out, r.pk)
		out = protowire.AppendTag(out, fieldData, protowire.BytesType)
		out = protowire.AppendBytes(out, r.data)
	}
	sum := md5.Sum(out[start:])
	return append(out, sum[:]...)
}
