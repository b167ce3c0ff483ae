package streams

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
)

// On-disk record framing. A segment file starts with segmentMagic, then
// holds frames back to back:
//
//	u32 body length | u32 CRC-32C of body | body
//	body = u64 sequence counter | i64 arrival (unix ms) | u16 key length | key | data
//
// All integers are little-endian. The checksum covers the whole body, so a
// torn or bit-flipped frame is detected before any of it is returned.
const (
	segmentMagic = "RNLSEG01"
	frameHeader  = 8
	bodyFixed    = 8 + 8 + 2
	// MaxDataSize is the largest record payload (10 MiB, the most a
	// Kinesis stream can be set to take; a stream's own maximum, 1 MiB
	// unless raised, is enforced by the API that writes to it).
	MaxDataSize = 10 << 20
	// MaxKeyLen is the longest partition key, in bytes of UTF-8.
	MaxKeyLen = 256
	maxBody   = bodyFixed + MaxKeyLen*4 + MaxDataSize
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Record is one record of a shard.
type Record struct {
	Seq          uint64 // the shard-local counter; FormatSeq gives the public form
	Arrival      int64  // approximate arrival time, unix milliseconds
	PartitionKey string
	Data         []byte
}

// frameSize is the encoded size of a record with this key and data.
func frameSize(key string, data []byte) int { return frameHeader + bodyFixed + len(key) + len(data) }

// appendFrame encodes r onto buf.
func appendFrame(buf []byte, seq uint64, arrival int64, key string, data []byte) []byte {
	start := len(buf)
	bodyLen := bodyFixed + len(key) + len(data)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(bodyLen))
	buf = binary.LittleEndian.AppendUint32(buf, 0) // checksum, filled below
	buf = binary.LittleEndian.AppendUint64(buf, seq)
	buf = binary.LittleEndian.AppendUint64(buf, uint64(arrival))
	buf = binary.LittleEndian.AppendUint16(buf, uint16(len(key)))
	buf = append(buf, key...)
	buf = append(buf, data...)
	crc := crc32.Checksum(buf[start+frameHeader:], crcTable)
	binary.LittleEndian.PutUint32(buf[start+4:], crc)
	return buf
}

var (
	errShortFrame = errors.New("incomplete frame")
	errBadLength  = errors.New("frame length out of range")
	errBadCRC     = errors.New("checksum mismatch")
	errBadKey     = errors.New("key length exceeds body")
)

// decodeFrame decodes the frame at the start of b. It returns the record
// (whose Data aliases b), the frame's size, or an error: errShortFrame when
// b ends inside the frame, another error when the frame is damaged.
func decodeFrame(b []byte) (Record, int, error) {
	if len(b) < frameHeader {
		return Record{}, 0, errShortFrame
	}
	n := int(binary.LittleEndian.Uint32(b))
	if n < bodyFixed || n > maxBody {
		return Record{}, 0, errBadLength
	}
	if len(b) < frameHeader+n {
		return Record{}, 0, errShortFrame
	}
	body := b[frameHeader : frameHeader+n]
	if crc32.Checksum(body, crcTable) != binary.LittleEndian.Uint32(b[4:]) {
		return Record{}, 0, errBadCRC
	}
	kl := int(binary.LittleEndian.Uint16(body[16:]))
	if bodyFixed+kl > n {
		return Record{}, 0, errBadKey
	}
	return Record{
		Seq:          binary.LittleEndian.Uint64(body),
		Arrival:      int64(binary.LittleEndian.Uint64(body[8:])),
		PartitionKey: string(body[bodyFixed : bodyFixed+kl]),
		Data:         body[bodyFixed+kl:],
	}, frameHeader + n, nil
}

// frameSeq reads the sequence counter of an already validated frame.
func frameSeq(b []byte) uint64 { return binary.LittleEndian.Uint64(b[frameHeader:]) }

// frameArrival reads the arrival time of an already validated frame.
func frameArrival(b []byte) int64 { return int64(binary.LittleEndian.Uint64(b[frameHeader+8:])) }

// frameLen reads the total size of an already validated frame.
func frameLen(b []byte) int { return frameHeader + int(binary.LittleEndian.Uint32(b)) }
