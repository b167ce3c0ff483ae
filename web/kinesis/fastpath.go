package kinesis

import (
	"bytes"
	"encoding/base64"
	"strconv"
	"unicode/utf8"

	"github.com/runnel-dev/runnel/streams"
)

// The PutRecords hot path. Decoding 500 records through encoding/json's
// reflection costs more CPU than the rest of the request together, so the
// common shape of a JSON PutRecords body — an object of StreamName or
// StreamARN and Records, records of Data, PartitionKey and
// ExplicitHashKey, strings without escapes — is scanned directly. Any
// other body (escapes, nulls, unknown members, malformed input) makes the
// scanner give up and the request takes the general decoder, so both paths
// accept and reject exactly the same bodies.

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes, control characters or invalid
// UTF-8 and returns its raw bytes.
func (s *scanner) str() ([]byte, bool) {
	if !s.byte('"') {
		return nil, false
	}
	n := bytes.IndexByte(s.b[s.i:], '"')
	if n < 0 {
		return nil, false
	}
	v := s.b[s.i : s.i+n]
	s.i += n + 1
	for _, c := range v {
		if c < 0x20 || c == '\\' || c >= 0x80 {
			// encoding/json handles escapes and replaces invalid UTF-8;
			// plain UTF-8 needs only checking.
			return v, c >= 0x80 && plainUTF8(v)
		}
	}
	return v, true
}

func plainUTF8(v []byte) bool {
	return utf8.Valid(v) && bytes.IndexByte(v, '\\') < 0 && !bytes.ContainsFunc(v, func(r rune) bool { return r < 0x20 })
}

// parsePutRecordsJSON decodes the common shape of a PutRecords body into
// in, reporting false when the body needs the general decoder. Records'
// data is decoded into *slab (grown as needed), which the caller owns.
func parsePutRecordsJSON(body []byte, in *putRecordsInput, slab *[]byte) bool {
	s := scanner{b: body}
	if !s.byte('{') {
		return false
	}
	if need := base64.StdEncoding.DecodedLen(len(body)); cap(*slab) < need {
		*slab = make([]byte, 0, need)
	}
	if s.byte('}') {
		return s.end()
	}
	for {
		k, ok := s.str()
		if !ok || !s.byte(':') {
			return false
		}
		switch string(k) {
		case "StreamName", "StreamARN":
			v, ok := s.str()
			if !ok {
				return false
			}
			str := string(v)
			if string(k) == "StreamName" {
				in.StreamName = &str
			} else {
				in.StreamARN = &str
			}
		case "Records":
			if !s.records(in, slab) {
				return false
			}
		default:
			return false
		}
		if s.byte(',') {
			continue
		}
		if s.byte('}') {
			return s.end()
		}
		return false
	}
}

func (s *scanner) end() bool {
	s.ws()
	return s.i == len(s.b)
}

func (s *scanner) records(in *putRecordsInput, slab *[]byte) bool {
	if !s.byte('[') {
		return false
	}
	in.Records = make([]putRecordsEntry, 0, 16)
	if s.byte(']') {
		return true
	}
	for {
		var e putRecordsEntry
		if !s.entry(&e, slab) {
			return false
		}
		in.Records = append(in.Records, e)
		if s.byte(',') {
			continue
		}
		return s.byte(']')
	}
}

func (s *scanner) entry(e *putRecordsEntry, slab *[]byte) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		k, ok := s.str()
		if !ok || !s.byte(':') {
			return false
		}
		v, ok := s.str()
		if !ok {
			return false
		}
		switch string(k) {
		case "Data":
			b := *slab
			start := len(b)
			need := base64.StdEncoding.DecodedLen(len(v))
			if cap(b)-start < need {
				return false
			}
			n, err := base64.StdEncoding.Decode(b[start:start+need], v)
			if err != nil {
				return false
			}
			e.Data = b[start : start+n : start+n]
			*slab = b[:start+n]
		case "PartitionKey":
			str := string(v)
			e.PartitionKey = &str
		case "ExplicitHashKey":
			str := string(v)
			e.ExplicitHashKey = &str
		default:
			return false
		}
		if s.byte(',') {
			continue
		}
		return s.byte('}')
	}
}

// appendSeq writes a public sequence number without fmt.
func appendSeq(b []byte, shard int, ctr uint64) []byte {
	var tmp [24]byte
	b = append(b, '4', '9')
	d := strconv.AppendUint(tmp[:0], uint64(shard), 10)
	for i := len(d); i < 10; i++ {
		b = append(b, '0')
	}
	b = append(b, d...)
	d = strconv.AppendUint(tmp[:0], ctr, 10)
	for i := len(d); i < 44; i++ {
		b = append(b, '0')
	}
	return append(b, d...)
}

// appendPutRecordsResult renders PutRecords' response. admitted, when not
// nil, marks the records that were put (res holds their results in order);
// the others failed on a throughput limit of the shard in shards[i].
func (h *Handler) appendPutRecordsResult(c codec, name string, res []streams.PutResult, admitted []bool, shards []string, kms bool) []byte {
	n := len(res)
	if admitted != nil {
		n = len(admitted)
	}
	if c == codecCBOR {
		out := putRecordsOutput{Records: make([]putRecordsResult, n)}
		j := 0
		for i := range out.Records {
			if admitted != nil && !admitted[i] {
				e := h.throttledWrite(name, shards[i])
				out.Records[i] = putRecordsResult{ErrorCode: e.Type, ErrorMessage: e.Message}
				out.FailedRecordCount++
				continue
			}
			out.Records[i] = putRecordsResult{ShardId: res[j].ShardID, SequenceNumber: seqString(res[j].ShardIndex, res[j].Seq)}
			j++
		}
		if kms {
			out.EncryptionType = "KMS"
		}
		b, _ := encode(c, out)
		return b
	}
	failed := 0
	for _, a := range admitted {
		if !a {
			failed++
		}
	}
	b := getBuf(48 + n*120)
	b = append(b, `{"FailedRecordCount":`...)
	b = strconv.AppendInt(b, int64(failed), 10)
	if kms {
		b = append(b, `,"EncryptionType":"KMS"`...)
	}
	b = append(b, `,"Records":[`...)
	j := 0
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		if admitted != nil && !admitted[i] {
			e := h.throttledWrite(name, shards[i])
			b = append(b, `{"ErrorCode":"`...)
			b = append(b, e.Type...)
			b = append(b, `","ErrorMessage":`...)
			b = strconv.AppendQuote(b, e.Message)
			b = append(b, '}')
			continue
		}
		r := &res[j]
		j++
		b = append(b, `{"SequenceNumber":"`...)
		b = appendSeq(b, r.ShardIndex, r.Seq)
		b = append(b, `","ShardId":"`...)
		b = append(b, r.ShardID...)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}

// parsePutRecordJSON is parsePutRecordsJSON for a single PutRecord body.
func parsePutRecordJSON(body []byte, in *putRecordInput) bool {
	s := scanner{b: body}
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return s.end()
	}
	for {
		k, ok := s.str()
		if !ok || !s.byte(':') {
			return false
		}
		v, ok := s.str()
		if !ok {
			return false
		}
		switch string(k) {
		case "Data":
			d := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
			n, err := base64.StdEncoding.Decode(d, v)
			if err != nil {
				return false
			}
			in.Data = d[:n:n]
		case "StreamName":
			in.StreamName = strp(v)
		case "StreamARN":
			in.StreamARN = strp(v)
		case "PartitionKey":
			in.PartitionKey = strp(v)
		case "ExplicitHashKey":
			in.ExplicitHashKey = strp(v)
		case "SequenceNumberForOrdering":
			in.SequenceNumberForOrdering = strp(v)
		default:
			return false
		}
		if s.byte(',') {
			continue
		}
		if s.byte('}') {
			return s.end()
		}
		return false
	}
}

func strp(b []byte) *string {
	s := string(b)
	return &s
}

// seqString is streams.FormatSeq without fmt.
func seqString(shard int, ctr uint64) string {
	var b [56]byte
	return string(appendSeq(b[:0], shard, ctr))
}
