package kinesis

import (
	"encoding/base64"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/runnel-dev/runnel/streams"
)

// Limits of the record operations, as AWS sets them.
const (
	maxPutRecords      = 500
	maxRequestData     = 10 << 20 // PutRecords: data plus partition keys
	maxGetRecordsLimit = 10000
	maxGetRecordsBytes = 10 << 20
)

// streamFacts are the few stream facts the record path needs on every
// call, cached so that a put does not describe the whole stream. Every
// change this package makes to a stream drops its entry; changes made
// around it (the REST API, the CLI) show within factsTTL.
type streamFacts struct {
	created   int64 // unix nanoseconds
	kms       bool
	at        time.Time
	maxRecord int      // largest record data, bytes
	auto      []string // AUTO distribution: the open shards' starting hash keys
	policy    string   // the stream's resource policy, "" for none
}

const factsTTL = time.Second

type factCache struct {
	mu sync.Mutex
	m  map[string]streamFacts
}

func (h *Handler) facts(name string) (streamFacts, error) {
	now := time.Now()
	h.cache.mu.Lock()
	f, ok := h.cache.m[name]
	h.cache.mu.Unlock()
	if ok && now.Sub(f.at) < factsTTL {
		return f, nil
	}
	info, err := h.describe(name)
	if err != nil {
		return f, err
	}
	enc, _ := encryptionOf(&info)
	f = streamFacts{created: info.Created.UnixNano(), kms: enc == "KMS", at: now, maxRecord: MaxRecordBytes(&info), policy: info.Attrs[attrPolicy]}
	if info.Attrs[attrDistribution] == distributionAuto {
		for _, s := range info.Shards {
			if s.Open {
				f.auto = append(f.auto, s.Range.Start.String())
			}
		}
	}
	if info.Status != streams.StatusCreating {
		h.cache.mu.Lock()
		if h.cache.m == nil {
			h.cache.m = map[string]streamFacts{}
		}
		h.cache.m[name] = f
		h.cache.mu.Unlock()
	}
	return f, nil
}

func (h *Handler) forget(name string) {
	h.cache.mu.Lock()
	delete(h.cache.m, name)
	h.cache.mu.Unlock()
}

// validHashKey: a hash key matches 0|([1-9]\d{0,38}).
func validHashKey(s string) bool { return decimal(s, 39) }

// validSeqNumber: a sequence number matches 0|([1-9]\d{0,128}).
func validSeqNumber(s string) bool { return decimal(s, 129) }

// decimal reports whether s is 0 or a decimal of at most maxDigits
// digits without a leading zero.
func decimal(s string, maxDigits int) bool {
	if s == "0" {
		return true
	}
	if len(s) < 1 || len(s) > maxDigits || s[0] == '0' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// entryValid is validateEntry's verdict without building messages, for
// the common case of a valid record.
func entryValid(e *putRecordsEntry) bool {
	if e.Data == nil || len(e.Data) > defaultMaxRecordKiB<<10 || e.PartitionKey == nil {
		return false
	}
	if n := len(*e.PartitionKey); n < 1 || n > streams.MaxKeyLen && utf8.RuneCountInString(*e.PartitionKey) > streams.MaxKeyLen {
		return false
	}
	return e.ExplicitHashKey == nil || validHashKey(*e.ExplicitHashKey)
}

// validateEntry checks one record; prefix is "" for PutRecord and
// "records.N.member." for PutRecords.
func validateEntry(v *validator, prefix string, data []byte, dataPresent bool, key, ehk *string) {
	if v.required(prefix+"data", dataPresent) && len(data) > v.recordCap {
		tooLarge(v, prefix, len(data), v.recordCap)
	}
	if v.required(prefix+"partitionKey", key != nil) {
		if n := utf8.RuneCountInString(*key); n < 1 || n > streams.MaxKeyLen {
			v.length(prefix+"partitionKey", key, 1, streams.MaxKeyLen)
		}
	}
	v.pattern(prefix+"explicitHashKey", ehk, validHashKey, "0|([1-9]\\d{0,38})")
}

func tooLarge(v *validator, prefix string, n, max int) {
	v.add("java.nio.HeapByteBuffer[pos=0 lim="+itoa(n)+" cap="+itoa(n)+"]", prefix+"data", "have length less than or equal to "+itoa(max))
}

// checkRecordSizes holds records to their stream's maximum record size.
func checkRecordSizes(f *streamFacts, recs []streams.PutRecord, single bool) error {
	var v validator
	for i := range recs {
		if len(recs[i].Data) > f.maxRecord {
			prefix := ""
			if !single {
				prefix = "records." + itoa(i+1) + ".member."
			}
			tooLarge(&v, prefix, len(recs[i].Data), f.maxRecord)
		}
	}
	return v.err()
}

// spread applies the AUTO record distribution: partition keys are
// ignored, and records go to the open shards in turn.
func (h *Handler) spread(f *streamFacts, recs []streams.PutRecord) {
	if len(f.auto) == 0 {
		return
	}
	n := h.spreadNext.Add(uint64(len(recs))) - uint64(len(recs))
	for i := range recs {
		recs[i].ExplicitHashKey = f.auto[(n+uint64(i))%uint64(len(f.auto))]
	}
}

func (h *Handler) checkHashKey(ehk *string) error {
	if ehk == nil {
		return nil
	}
	if _, err := streams.ParseHashKey(*ehk); err != nil {
		return newErr(excInvalidArgument, "Invalid ExplicitHashKey. ExplicitHashKey must be in the range: [0, 2^128-1]. Specified value was %s", *ehk)
	}
	return nil
}

func (h *Handler) putRecord(r *request) (any, error) {
	var in putRecordInput
	if r.codec != codecJSON || !parsePutRecordJSON(r.body, &in) {
		in = putRecordInput{}
		if err := decode(r.codec, r.body, &in); err != nil {
			return nil, err
		}
	}
	v := validator{recordCap: h.recordCapBytes()}
	validateRef(&v, in.streamRef)
	validateEntry(&v, "", in.Data, in.Data != nil, in.PartitionKey, in.ExplicitHashKey)
	v.pattern("sequenceNumberForOrdering", in.SequenceNumberForOrdering, validSeqNumber, "0|([1-9]\\d{0,128})")
	if err := v.err(); err != nil {
		return nil, err
	}
	name, err := h.resolveValid(in.streamRef)
	if err != nil {
		return nil, err
	}
	if err := h.checkHashKey(in.ExplicitHashKey); err != nil {
		return nil, err
	}
	f, err := h.facts(name)
	if err != nil {
		return nil, err
	}
	rec := []streams.PutRecord{{PartitionKey: *in.PartitionKey, Data: in.Data}}
	if in.ExplicitHashKey != nil {
		rec[0].ExplicitHashKey = *in.ExplicitHashKey
	}
	if err := checkRecordSizes(&f, rec, true); err != nil {
		return nil, err
	}
	h.spread(&f, rec)
	if h.limits != nil {
		if refused := h.limits.admitPuts(h, name, rec, nil); refused != nil {
			return nil, refused[0]
		}
	}
	res, err := h.store.Put(r.ctx, name, rec)
	if err != nil {
		h.forget(name)
		return nil, h.mapErr(name, err)
	}
	if r.codec == codecJSON {
		b := getBuf(128)
		b = append(b, `{"SequenceNumber":"`...)
		b = streams.AppendSeq(b, res[0].Tag, res[0].ShardIndex, res[0].Seq)
		b = append(b, `","ShardId":"`...)
		b = append(b, res[0].ShardID...)
		if f.kms {
			b = append(b, `","EncryptionType":"KMS`...)
		}
		return rawBody(append(b, `"}`...)), nil
	}
	out := putRecordOutput{ShardId: res[0].ShardID, SequenceNumber: seqString(res[0].Tag, res[0].ShardIndex, res[0].Seq)}
	if f.kms {
		out.EncryptionType = "KMS"
	}
	return out, nil
}

func (h *Handler) throttledWrite(name, shard string) *apiError {
	return newErr(excThroughputExceeded, "Rate exceeded for shard %s in stream %s under account %s.", shard, name, h.opts.AccountID)
}

func (h *Handler) putRecords(r *request) (any, error) {
	var in putRecordsInput
	sc := getScratch()
	defer putScratchBack(sc)
	if r.codec == codecJSON {
		slab := getBuf(base64.StdEncoding.DecodedLen(len(r.body)))
		defer func() { putBuf(slab) }()
		if !parsePutRecordsJSONScratch(r.body, &in, &slab, sc) {
			in = putRecordsInput{}
			if err := decode(r.codec, r.body, &in); err != nil {
				return nil, err
			}
		}
	} else if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	v := validator{recordCap: h.recordCapBytes()}
	validateRef(&v, in.streamRef)
	if v.required("records", in.Records != nil) {
		if len(in.Records) < 1 {
			v.add("[]", "records", "have length greater than or equal to 1")
		} else if len(in.Records) > maxPutRecords {
			v.add("[...]", "records", "have length less than or equal to 500")
		} else {
			for i := range in.Records {
				e := &in.Records[i]
				if !entryValid(e) {
					validateEntry(&v, "records."+itoa(i+1)+".member.", e.Data, e.Data != nil, e.PartitionKey, e.ExplicitHashKey)
				}
			}
		}
	}
	if err := v.err(); err != nil {
		return nil, err
	}
	name, err := h.resolveValid(in.streamRef)
	if err != nil {
		return nil, err
	}
	if c := callerFrom(r.ctx); c != nil {
		if err := h.authorize(c, "PutRecords", name, "", true); err != nil {
			return nil, err
		}
	}
	total := 0
	if cap(sc.recs) < len(in.Records) {
		sc.recs = make([]streams.PutRecord, len(in.Records))
	}
	recs := sc.recs[:len(in.Records)]
	for i := range in.Records {
		e := &in.Records[i]
		if err := h.checkHashKey(e.ExplicitHashKey); err != nil {
			return nil, err
		}
		recs[i] = streams.PutRecord{PartitionKey: *e.PartitionKey, Data: e.Data}
		if e.ExplicitHashKey != nil {
			recs[i].ExplicitHashKey = *e.ExplicitHashKey
		}
		total += len(e.Data) + len(*e.PartitionKey)
	}
	if total > maxRequestData {
		return nil, newErr(excInvalidArgument, "Records size exceeds %d MB limit", maxRequestData>>20)
	}
	f, err := h.facts(name)
	if err != nil {
		return nil, err
	}
	if err := checkRecordSizes(&f, recs, false); err != nil {
		return nil, err
	}
	h.spread(&f, recs)
	// refused, when not nil, holds the failure of each record an injected
	// fault or the throughput limits refused (nil for one to store).
	var refused []*apiError
	if len(h.opts.Faults) > 0 {
		refused = h.injectRecords(name, recs)
	}
	if h.limits != nil {
		refused = h.limits.admitPuts(h, name, recs, refused)
	}
	if refused != nil {
		kept := recs[:0:0]
		for i := range recs {
			if refused[i] == nil {
				kept = append(kept, recs[i])
			}
		}
		recs = kept
	}
	var res []streams.PutResult
	notStored := 0
	if len(recs) > 0 {
		res, err = h.store.PutInto(r.ctx, name, recs, sc.res)
		if err != nil {
			h.forget(name)
			if notStored = partialPut(err); notStored == 0 {
				return nil, h.mapErr(name, err)
			}
		}
	}
	out := h.appendPutRecordsResult(r.codec, name, res, notStored, refused, f.kms)
	if cap(res) > cap(sc.res) {
		sc.res = res[:0]
	}
	return rawBody(out), nil
}

func (h *Handler) getShardIterator(r *request) (any, error) {
	var in getShardIteratorInput
	name, err := h.streamInput(r, &in, &in.streamRef, func(v *validator) {
		if v.required("shardId", in.ShardId != nil) {
			v.length("shardId", in.ShardId, 1, 128)
		}
		if v.required("shardIteratorType", in.ShardIteratorType != nil) {
			v.enum("shardIteratorType", in.ShardIteratorType, "AT_SEQUENCE_NUMBER", "AFTER_SEQUENCE_NUMBER", "TRIM_HORIZON", "LATEST", "AT_TIMESTAMP")
		}
		v.pattern("startingSequenceNumber", in.StartingSequenceNumber, validSeqNumber, "0|([1-9]\\d{0,128})")
	})
	if err != nil {
		return nil, err
	}
	var ts time.Time
	if in.Timestamp != nil {
		ts = in.Timestamp.Time
	}
	ids, err := h.shardIDs(name, in.ShardId)
	if err != nil {
		return nil, err
	}
	it, err := h.iteratorAt(name, ids[0], *in.ShardIteratorType, in.StartingSequenceNumber, in.Timestamp != nil, ts)
	if err != nil {
		return nil, err
	}
	return getShardIteratorOutput{h.encodeIterator(it)}, nil
}

// iteratorAt resolves a starting position (GetShardIterator's, and
// SubscribeToShard's) to an iterator.
func (h *Handler) iteratorAt(name, shardID, typ string, seq *string, hasTS bool, ts time.Time) (iterator, error) {
	typed := typ == "AT_SEQUENCE_NUMBER" || typ == "AFTER_SEQUENCE_NUMBER"
	if typed && seq == nil {
		return iterator{}, newErr(excInvalidArgument, "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified %s and no StartingSequenceNumber.", typ)
	}
	if !typed && seq != nil {
		return iterator{}, newErr(excInvalidArgument, "Must either specify (1) AT_SEQUENCE_NUMBER or AFTER_SEQUENCE_NUMBER and StartingSequenceNumber or (2) TRIM_HORIZON or LATEST and no StartingSequenceNumber. Request specified %s and also a StartingSequenceNumber.", typ)
	}
	now := h.opts.Now()
	if typ == "AT_TIMESTAMP" {
		if !hasTS {
			return iterator{}, newErr(excInvalidArgument, "Must specify timestampInMillis parameter for iterator of type AT_TIMESTAMP. Current request has no timestamp parameter.")
		}
		if ts.After(now) {
			return iterator{}, newErr(excInvalidArgument, "The timestampInMillis parameter cannot be greater than the currentTimestampInMillis. timestampInMillis: %d, currentTimestampInMillis: %d", ts.UnixMilli(), now.UnixMilli())
		}
	}
	info, err := h.describe(name)
	if err != nil || info.Status == streams.StatusCreating {
		// AWS reports the shard, not the stream, as missing here.
		if ae, ok := err.(*apiError); err == nil || ok && ae.Type == excResourceNotFound {
			return iterator{}, h.shardNotFound(name, shardID)
		}
		return iterator{}, err
	}
	idx, ok := streams.ParseShardID(shardID)
	if !ok || idx >= len(info.Shards) || info.Shards[idx].Index != idx {
		idx = -1
		for _, s := range info.Shards {
			if s.ID == shardID {
				idx = s.Index
			}
		}
	}
	if idx < 0 {
		return iterator{}, h.shardNotFound(name, shardID)
	}
	sid := streams.ShardID(idx)
	s := ""
	if seq != nil {
		s = *seq
		tag, sIdx, _, perr := streams.ParseSeq(s)
		if perr != nil {
			return iterator{}, newErr(excInvalidArgument, "StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is invalid.", s, sid, name, h.opts.AccountID)
		}
		if sIdx != idx {
			return iterator{}, newErr(excInvalidArgument, "Invalid StartingSequenceNumber. It encodes %s, while it was used in a call to a shard with %s", streams.ShardID(sIdx), sid)
		}
		if tag != info.SeqTag {
			// Issued by another stream, or by one of this name deleted
			// since (its counters would name records of this one).
			return iterator{}, newErr(excInvalidArgument, "StartingSequenceNumber %s used in GetShardIterator on shard %s in stream %s under account %s is invalid because it did not come from this stream.", s, sid, name, h.opts.AccountID)
		}
	}
	ctr, err := h.store.Seek(name, sid, streams.IteratorType(typ), s, ts)
	if err != nil {
		return iterator{}, h.mapErr(name, err)
	}
	return iterator{issued: now, streamCreated: info.Created.UnixNano(), shard: idx, counter: ctr, stream: name, tag: info.SeqTag}, nil
}

func (h *Handler) shardNotFound(name, shardID string) *apiError {
	return newErr(excResourceNotFound, "Shard %s in stream %s under account %s does not exist", shardID, name, h.opts.AccountID)
}

func (h *Handler) getRecords(r *request) (any, error) {
	var in getRecordsInput
	if err := decode(r.codec, r.body, &in); err != nil {
		return nil, err
	}
	var v validator
	validateRef(&v, in.streamRef)
	if v.required("shardIterator", in.ShardIterator != nil) {
		v.length("shardIterator", in.ShardIterator, 1, 512)
	}
	v.rangeInt("limit", in.Limit, 1, maxGetRecordsLimit)
	if err := v.err(); err != nil {
		return nil, err
	}
	it, err := h.decodeIterator(*in.ShardIterator)
	if err != nil {
		return nil, err
	}
	if in.StreamName != nil || in.StreamARN != nil {
		name, err := h.resolveValid(in.streamRef)
		if err != nil {
			return nil, err
		}
		if name != it.stream {
			return nil, newErr(excInvalidArgument, "Invalid ShardIterator: it was issued for stream %s, not %s.", it.stream, name)
		}
	}
	sid := streams.ShardID(it.shard)
	f, err := h.facts(it.stream)
	if err != nil {
		if ae, ok := err.(*apiError); ok && ae.Type == excResourceNotFound {
			// AWS names the iterator's shard once its stream is gone.
			return nil, h.shardNotFound(it.stream, sid)
		}
		return nil, err
	}
	if f.created != it.streamCreated {
		// The cache may predate the stream; ask once more.
		h.forget(it.stream)
		if f, err = h.facts(it.stream); err != nil {
			return nil, err
		}
		if f.created != it.streamCreated {
			return nil, h.shardNotFound(it.stream, sid)
		}
	}
	if h.limits != nil && !h.limits.admitRead(it.stream, sid) {
		return nil, newErr(excThroughputExceeded, "Rate exceeded for Shard - %s in stream %s under account %s.", sid, it.stream, h.opts.AccountID)
	}
	limit := maxGetRecordsLimit
	if in.Limit != nil {
		limit = int(*in.Limit)
	}
	res, err := h.store.Read(it.stream, sid, it.counter, limit, maxGetRecordsBytes)
	if err != nil {
		return nil, h.mapErr(it.stream, err)
	}
	out := getRecordsOutput{Records: make([]recordOut, len(res.Records)), MillisBehindLatest: res.MillisBehind}
	bytes := 0
	for i := range res.Records {
		rec := &res.Records[i]
		out.Records[i] = recordOut{
			SequenceNumber: seqString(res.Tag, it.shard, rec.Seq), ApproximateArrivalTimestamp: awsTime{time.UnixMilli(rec.Arrival)},
			Data: rec.Data, PartitionKey: rec.PartitionKey,
		}
		if f.kms {
			out.Records[i].EncryptionType = "KMS"
		}
		bytes += len(rec.Data)
	}
	if h.limits != nil {
		h.limits.chargeRead(it.stream, sid, bytes)
	}
	if res.EndOfShard {
		cs, err := h.childShards(it.stream, res.Children)
		if err != nil {
			return nil, err
		}
		out.ChildShards = cs
	} else {
		it.issued = h.opts.Now()
		it.counter = res.Next
		next := h.encodeIterator(it)
		out.NextShardIterator = &next
	}
	return out, nil
}

// childShards describes the children of a closed shard.
func (h *Handler) childShards(name string, ids []string) ([]childShard, error) {
	if len(ids) == 0 {
		return []childShard{}, nil
	}
	info, err := h.describe(name)
	if err != nil {
		return nil, err
	}
	out := make([]childShard, 0, len(ids))
	for _, id := range ids {
		for _, s := range info.Shards {
			if s.ID != id {
				continue
			}
			c := childShard{ShardId: id, ParentShards: []string{s.Parent},
				HashKeyRange: hashKeyRange{s.Range.Start.String(), s.Range.End.String()}}
			if s.AdjacentParent != "" {
				c.ParentShards = append(c.ParentShards, s.AdjacentParent)
			}
			out = append(out, c)
		}
	}
	return out, nil
}
