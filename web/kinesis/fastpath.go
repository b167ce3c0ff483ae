package kinesis

import (
	"encoding/base64"
	"strconv"
	"sync"
	"unicode/utf8"
	"unsafe"

	"github.com/runnel-dev/runnel/internal/jsonscan"
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
	b  []byte
	i  int
	sc *putScratch // reused slices, or nil
}

// putScratch holds a PutRecords request's working slices so that they are
// reused from request to request (see getScratch). Nothing may keep them
// once the request is answered, nor the records' partition keys, whose
// text is keys.buf (see keyGather.assign).
type putScratch struct {
	entries []putRecordsEntry
	keys    keyGather
	recs    []streams.PutRecord
	res     []streams.PutResult
}

var scratchPool = sync.Pool{New: func() any { return new(putScratch) }}

func getScratch() *putScratch { return scratchPool.Get().(*putScratch) }

func putScratchBack(sc *putScratch) {
	if cap(sc.entries) <= maxPutRecords+1 && cap(sc.keys.buf) <= 1<<20 {
		scratchPool.Put(sc)
	}
}

func (s *scanner) ws() { s.i = jsonscan.SkipSpace(s.b, s.i) }

func (s *scanner) byte(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string without escapes or invalid UTF-8 and returns its raw
// bytes, which are then its text.
func (s *scanner) str() ([]byte, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	end, info, err := jsonscan.ScanString(s.b, s.i)
	if err != nil || info&jsonscan.Escaped != 0 {
		// encoding/json handles escapes (and reports malformed input).
		return nil, false
	}
	v := s.b[s.i+1 : end-1]
	s.i = end
	// encoding/json replaces invalid UTF-8; plain UTF-8 needs only checking.
	return v, info&jsonscan.NonASCII == 0 || utf8.Valid(v)
}

// parsePutRecordsJSON decodes the common shape of a PutRecords body into
// in, reporting false when the body needs the general decoder. Records'
// data is decoded into *slab (grown as needed), which the caller owns.
func parsePutRecordsJSON(body []byte, in *putRecordsInput, slab *[]byte) bool {
	return parsePutRecordsJSONScratch(body, in, slab, nil)
}

// parsePutRecordsJSONScratch is parsePutRecordsJSON reusing sc's slices
// (when not nil) for the records and their keys.
func parsePutRecordsJSONScratch(body []byte, in *putRecordsInput, slab *[]byte, sc *putScratch) bool {
	s := scanner{b: body, sc: sc}
	if need := base64.StdEncoding.DecodedLen(len(body)); cap(*slab) < need {
		*slab = make([]byte, 0, need)
	}
	return s.object(func(k []byte) bool {
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
			return true
		case "Records":
			return s.records(in, slab)
		}
		return false
	})
}

// object reads the body's one JSON object and its end, calling member
// with each member's name once the scanner stands at its value; member
// reads the value and reports false for what needs the general decoder.
func (s *scanner) object(member func(name []byte) bool) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return s.end()
	}
	for {
		k, ok := s.str()
		if !ok || !s.byte(':') || !member(k) {
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
	// Size the slice for the records the rest of the body can hold (a
	// record takes at least minRecordJSON bytes; one past the limit is
	// enough, more is rejected anyway) instead of growing it.
	n := min((len(s.b)-s.i)/minRecordJSON+1, maxPutRecords+1)
	keys := new(keyGather)
	if s.sc != nil {
		keys = &s.sc.keys
		if cap(s.sc.entries) < n {
			s.sc.entries = make([]putRecordsEntry, 0, n)
		}
		in.Records = s.sc.entries[:0]
	} else {
		in.Records = make([]putRecordsEntry, 0, n)
	}
	keys.reset(cap(in.Records))
	if s.byte(']') {
		return true
	}
	// Partition keys are gathered in one buffer and become strings in one
	// allocation at the end, instead of two allocations per record.
	for {
		var e putRecordsEntry
		if !s.entry(&e, slab, keys) {
			return false
		}
		in.Records = append(in.Records, e)
		keys.next()
		if s.byte(',') {
			continue
		}
		if !s.byte(']') {
			return false
		}
		keys.assign(in.Records)
		if s.sc != nil && cap(in.Records) > cap(s.sc.entries) {
			s.sc.entries = in.Records[:0]
		}
		return true
	}
}

// minRecordJSON is the size of the shortest useful record,
// {"PartitionKey":"k"}, with its comma.
const minRecordJSON = 21

// keyGather collects the partition keys of a PutRecords body.
type keyGather struct {
	buf   []byte
	spans []keySpan // one per record, in order
	cur   keySpan
	strs  []string
}

// reset empties k for a body of about n records.
func (k *keyGather) reset(n int) {
	if cap(k.spans) < n {
		k.spans = make([]keySpan, 0, n)
	}
	k.buf, k.spans, k.cur = k.buf[:0], k.spans[:0], keySpan{}
}

type keySpan struct {
	start, end int32
	set        bool
}

// set records the current record's key (the last one wins, as in
// encoding/json).
func (k *keyGather) set(v []byte) {
	k.cur = keySpan{int32(len(k.buf)), int32(len(k.buf) + len(v)), true}
	k.buf = append(k.buf, v...)
}

// next ends the current record.
func (k *keyGather) next() {
	k.spans = append(k.spans, k.cur)
	k.cur = keySpan{}
}

// assign points each record's PartitionKey at its key. The keys alias
// k.buf instead of a copy of it (a fresh string per body was a tenth of a
// 500-record call's allocation, and its first touch of new heap memory
// cost more than the copy): they stay valid until k is reset, which for a
// pooled putScratch is the next request that takes it, so nothing may keep
// a key past its request (streams.Store.Put copies what it stores, and
// error messages are built by concatenation, which copies too).
func (k *keyGather) assign(recs []putRecordsEntry) {
	all := unsafe.String(unsafe.SliceData(k.buf), len(k.buf))
	if cap(k.strs) < len(recs) {
		k.strs = make([]string, len(recs))
	}
	strs := k.strs[:len(recs)]
	for i, sp := range k.spans {
		if sp.set {
			strs[i] = all[sp.start:sp.end]
			recs[i].PartitionKey = &strs[i]
		}
	}
}

// A record's members.
const (
	memberOther = iota
	memberData
	memberPartitionKey
	memberExplicitHashKey
)

// member reads a record's member name and its colon. The three names a
// record may have are matched as they stand in the body, quotes included
// (a string token ends at its first unescaped quote, and they hold no
// backslash, so a match is that name exactly); any other string is read
// as str does. ok is false when the body needs the general decoder.
func (s *scanner) member() (m int, ok bool) {
	s.ws()
	b := s.b[s.i:]
	switch {
	case len(b) > 6 && string(b[:6]) == `"Data"`:
		s.i, m = s.i+6, memberData
	case len(b) > 14 && string(b[:14]) == `"PartitionKey"`:
		s.i, m = s.i+14, memberPartitionKey
	case len(b) > 17 && string(b[:17]) == `"ExplicitHashKey"`:
		s.i, m = s.i+17, memberExplicitHashKey
	default:
		k, ok := s.str()
		if !ok {
			return 0, false
		}
		switch string(k) {
		case "Data":
			m = memberData
		case "PartitionKey":
			m = memberPartitionKey
		case "ExplicitHashKey":
			m = memberExplicitHashKey
		}
	}
	return m, s.byte(':')
}

func (s *scanner) entry(e *putRecordsEntry, slab *[]byte, keys *keyGather) bool {
	if !s.byte('{') {
		return false
	}
	if s.byte('}') {
		return true
	}
	for {
		k, ok := s.member()
		if !ok {
			return false
		}
		if k == memberData {
			if !s.base64(e, slab) {
				return false
			}
		} else {
			v, ok := s.str()
			if !ok {
				return false
			}
			switch k {
			case memberPartitionKey:
				keys.set(v)
			case memberExplicitHashKey:
				e.ExplicitHashKey = strp(v)
			default:
				return false
			}
		}
		if s.byte(',') {
			continue
		}
		return s.byte('}')
	}
}

// base64 decodes a record's Data into the slab straight from the body
// (jsonscan.Base64: a string that decodes as standard base64 needs no
// scan of its own).
func (s *scanner) base64(e *putRecordsEntry, slab *[]byte) bool {
	s.ws()
	data, end, ok := jsonscan.Base64(*slab, s.b, s.i)
	if !ok {
		return false
	}
	s.i = end
	e.Data = data
	*slab = (*slab)[:len(*slab)+len(data)]
	return true
}

// seqText renders a response's sequence numbers. A put's records on one
// shard get consecutive counters, so each shard's last number is kept and
// the next is that text plus one, counted in its decimal digits, instead
// of formatted afresh (strconv's formatting was most of a response's
// rendering). Shards share its slots by index modulo len(slots); a slot
// that holds another shard, or a counter that does not follow, is
// formatted in full.
type seqText struct {
	slots [8]seqSlot
}

type seqSlot struct {
	shard int
	tag   uint64
	next  uint64 // the counter text + 1 stands for; 0 when empty
	text  [seqDigits]byte
}

// seqDigits is the length of a public sequence number.
const seqDigits = 56

func (t *seqText) append(b []byte, tag uint64, shard int, ctr uint64) []byte {
	sl := &t.slots[uint(shard)%uint(len(t.slots))]
	if sl.next == 0 || sl.shard != shard || sl.next != ctr || sl.tag != tag {
		if d := streams.AppendSeq(sl.text[:0], tag, shard, ctr); len(d) != seqDigits {
			// A shard index beyond ten digits: no fixed-width text.
			sl.next = 0
			return append(b, d...)
		}
		sl.shard, sl.tag = shard, tag
	} else {
		// The counter's digits are the last 32 (a counter has at most
		// 20): carry from the end.
		for i := seqDigits - 1; ; i-- {
			if sl.text[i] != '9' {
				sl.text[i]++
				break
			}
			sl.text[i] = '0'
		}
	}
	sl.next = ctr + 1 // 0 after the largest counter: the slot empties
	return append(b, sl.text[:]...)
}

// appendPutRecordsResult renders PutRecords' response. refused, when not
// nil, holds the failure of each record not sent to the log (an injected
// fault, the throughput limits) and nil for the others (res holds only
// theirs); a result with an Err is a record the log did not store, and
// notStored counts them.
func (h *Handler) appendPutRecordsResult(c codec, name string, res []streams.PutResult, notStored int, refused []*apiError, kms bool) []byte {
	n := len(res)
	if refused != nil {
		n = len(refused)
	}
	failed := notStored
	for _, e := range refused {
		if e != nil {
			failed++
		}
	}
	if c == codecCBOR {
		out := putRecordsOutput{Records: make([]putRecordsResult, n), FailedRecordCount: failed}
		ents := putEntries{h: h, name: name, res: res, refused: refused}
		for i := range out.Records {
			e, r := ents.next(i)
			if e != nil {
				out.Records[i] = putRecordsResult{ErrorCode: e.Type, ErrorMessage: e.Message}
			} else {
				out.Records[i] = putRecordsResult{ShardId: r.ShardID, SequenceNumber: seqString(r.Tag, r.ShardIndex, r.Seq)}
			}
		}
		if kms {
			out.EncryptionType = "KMS"
		}
		b, _ := encode(c, out)
		return b
	}
	b := getBuf(48 + n*120)
	b = append(b, `{"FailedRecordCount":`...)
	b = strconv.AppendInt(b, int64(failed), 10)
	if kms {
		b = append(b, `,"EncryptionType":"KMS"`...)
	}
	b = append(b, `,"Records":[`...)
	var seqs seqText
	ents := putEntries{h: h, name: name, res: res, refused: refused}
	for i := 0; i < n; i++ {
		if i > 0 {
			b = append(b, ',')
		}
		e, r := ents.next(i)
		if e != nil {
			b = append(b, `{"ErrorCode":"`...)
			b = append(b, e.Type...)
			b = append(b, `","ErrorMessage":`...)
			b = strconv.AppendQuote(b, e.Message)
			b = append(b, '}')
			continue
		}
		b = append(b, `{"SequenceNumber":"`...)
		b = seqs.append(b, r.Tag, r.ShardIndex, r.Seq)
		b = append(b, `","ShardId":"`...)
		b = append(b, r.ShardID...)
		b = append(b, `"}`...)
	}
	return append(b, "]}"...)
}

// parsePutRecordJSON is parsePutRecordsJSON for a single PutRecord body.
func parsePutRecordJSON(body []byte, in *putRecordInput) bool {
	s := scanner{b: body}
	return s.object(func(k []byte) bool {
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
		return true
	})
}

func strp(b []byte) *string {
	s := string(b)
	return &s
}

// seqString is streams.FormatSeq.
func seqString(tag uint64, shard int, ctr uint64) string {
	var b [seqDigits]byte
	return string(streams.AppendSeq(b[:0], tag, shard, ctr))
}

// putEntries walks the entries of a PutRecords answer in request order:
// entry i was refused before the log saw it (refused[i]: a limit or an
// injected fault), or it is the log's next result, failed or stored.
type putEntries struct {
	h       *Handler
	name    string
	res     []streams.PutResult
	refused []*apiError
	j       int // the next of res
}

// next returns entry i's error, or its stored result.
func (p *putEntries) next(i int) (*apiError, *streams.PutResult) {
	if p.refused != nil && p.refused[i] != nil {
		return p.refused[i], nil
	}
	r := &p.res[p.j]
	p.j++
	if r.Err != nil {
		return p.h.recordFailure(p.name, r), nil
	}
	return nil, r
}
