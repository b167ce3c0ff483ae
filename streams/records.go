package streams

// Appending and reading records: Put routes and appends, Seek resolves an
// iterator, Read returns records, Wait blocks for new ones.

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// PutRecord is a record to append.
type PutRecord struct {
	PartitionKey string
	// ExplicitHashKey, when set, routes the record instead of the MD5 of
	// its partition key (a decimal in [0, 2^128−1]).
	ExplicitHashKey string
	Data            []byte
}

// PutResult says where a record went.
type PutResult struct {
	ShardID    string
	ShardIndex int
	Tag        uint64 // the stream's sequence tag
	Seq        uint64
	// Err is nil when the record is stored. Only the Results of a
	// PartialPutError hold records with an Err: the record, routed to
	// ShardID, was not stored (Tag and Seq are then zero).
	Err error
}

// SequenceNumber is the public sequence number of the put record.
func (r PutResult) SequenceNumber() string { return FormatSeq(r.Tag, r.ShardIndex, r.Seq) }

// ValidateRecord checks one record against the limits; i is its position
// in the request, for the error message.
func ValidateRecord(i int, r *PutRecord) error {
	if n, ok := keyChars(r.PartitionKey); !ok || n < 1 || n > MaxKeyLen {
		return invalid("put", fmt.Sprintf("records[%d].partition_key", i), "must be 1 to %d characters of UTF-8 (got %d)", MaxKeyLen, n)
	}
	if len(r.Data) > MaxDataSize {
		return invalid("put", fmt.Sprintf("records[%d].data", i), "is %d bytes; a record holds at most %d bytes", len(r.Data), MaxDataSize)
	}
	if r.ExplicitHashKey != "" {
		if _, err := ParseHashKey(r.ExplicitHashKey); err != nil {
			return invalid("put", fmt.Sprintf("records[%d].explicit_hash_key", i), "%q is not a decimal integer in [0, 2^128-1]", r.ExplicitHashKey)
		}
	}
	return nil
}

// keyChars counts the characters of a partition key and reports whether it
// is valid UTF-8; ASCII keys (the common case) take one cheap pass.
func keyChars(k string) (int, bool) {
	for i := 0; i < len(k); i++ {
		if k[i] >= utf8.RuneSelf {
			return utf8.RuneCountInString(k), utf8.ValidString(k)
		}
	}
	return len(k), true
}

// Put appends records to a stream and returns once all of them are
// durable (or written, under SyncInterval). Records are validated first:
// when one is invalid nothing is written. Records of one call that land on
// the same shard keep their order.
//
// A put is stored or refused shard by shard: when the records of some
// shards were stored and those of others were not (a write failed on one
// shard only), Put returns every record's result with a *PartialPutError,
// which says which records were stored (their results have sequence
// numbers) and which were not, and why (putpartial.go). When no record was
// stored it returns nil and the error, as for any refused put.
func (s *Store) Put(ctx context.Context, name string, recs []PutRecord) ([]PutResult, error) {
	return s.PutInto(ctx, name, recs, nil)
}

// PutInto is Put writing the results into res's room when it has enough
// (a caller that puts many records reuses one slice), else a new slice.
func (s *Store) PutInto(ctx context.Context, name string, recs []PutRecord, res []PutResult) ([]PutResult, error) {
	for i := range recs {
		if err := ValidateRecord(i, &recs[i]); err != nil {
			return nil, err
		}
	}
	st, err := s.get("put", name)
	if err != nil {
		return nil, err
	}
	if cap(res) < len(recs) {
		res = make([]PutResult, len(recs))
	}
	res = res[:len(recs)]
	// A caller that has gone (an HTTP client that gave up, while this
	// server was paused or slow) would send the put again: storing it now
	// would only make a duplicate.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st.puts.Add(1)
	defer st.puts.Add(-1)
	rs := routePool.Get().(*routeScratch)
	defer rs.release()
	puts, err := s.appendRouted(st, recs, res, rs)
	if err != nil {
		return nil, err
	}
	return settle(ctx, name, len(recs), res, puts)
}

// routeScratch holds a put's routing slices, reused from put to put: at
// hundreds of records a put they were most of its garbage, and fresh heap
// memory costs page faults as well as allocation.
type routeScratch struct {
	route, order       []int32
	count, start, next []int
	puts               []shardPut
}

var routePool = sync.Pool{New: func() any { return new(routeScratch) }}

// maxPooledRoute bounds the records a pooled routeScratch is kept for.
const maxPooledRoute = 1 << 14

func (rs *routeScratch) release() {
	if cap(rs.route) > maxPooledRoute {
		return
	}
	clear(rs.puts[:cap(rs.puts)])
	routePool.Put(rs)
}

// sized returns b with length n and zeroed, reusing its room.
func sized[T int | int32](b []T, n int) []T {
	if cap(b) < n {
		return make([]T, n)
	}
	b = b[:n]
	clear(b)
	return b
}

// appendRouted routes recs and appends them shard by shard, returning one
// shardPut per shard the put touches. An error returned means nothing was
// appended; a shard's append that fails is that shard's shardPut.err, and
// the other shards' appends go on.
func (s *Store) appendRouted(st *stream, recs []PutRecord, res []PutResult, rs *routeScratch) ([]shardPut, error) {
	st.mu.RLock()
	defer st.mu.RUnlock()
	if st.deleted {
		return nil, notFound("put", st.name)
	}
	s.metaMu.Lock()
	creating := st.meta.Pending == StatusCreating && s.opts.Now().Before(st.meta.PendingUntil)
	s.metaMu.Unlock()
	if creating {
		return nil, &Error{Op: "put", Err: ErrStreamNotActive, Msg: fmt.Sprintf("stream %q is still being created", st.name)}
	}
	// Route every record, then append per shard in request order.
	rs.route = sized(rs.route, len(recs))
	rs.count = sized(rs.count, len(st.open))
	route, count := rs.route, rs.count
	// With one open shard over the whole key space (a new one-shard
	// stream, or every shard merged back) each record goes there: no
	// partition key needs hashing.
	whole := len(st.ranges) == 1 && st.ranges[0].Start == HashKey{} && st.ranges[0].End == MaxHashKey
	// A record with the previous record's partition key goes where that
	// one went: producers often put runs of one key, and its MD5 is most
	// of the routing's cost.
	prevKey, prevShard := "", int32(-1)
	for i := range recs {
		if whole {
			count[0]++
			continue
		}
		r := &recs[i]
		var hk HashKey
		if r.ExplicitHashKey != "" {
			hk, _ = ParseHashKey(r.ExplicitHashKey)
		} else if prevShard >= 0 && r.PartitionKey == prevKey {
			route[i] = prevShard
			count[prevShard]++
			continue
		} else {
			hk = HashPartitionKey(r.PartitionKey)
		}
		j := sort.Search(len(st.ranges), func(j int) bool { return st.ranges[j].End.Cmp(hk) >= 0 })
		if j == len(st.ranges) {
			return nil, fmt.Errorf("put to stream %s: no open shard holds hash key %s: %w", st.name, hk, ErrCorrupt)
		}
		route[i] = int32(j)
		count[j]++
		if r.ExplicitHashKey == "" {
			prevKey, prevShard = r.PartitionKey, int32(j)
		}
	}
	// order lists the records shard by shard, each shard's in request
	// order (a counting sort by route).
	rs.start = sized(rs.start, len(count)+1)
	start := rs.start
	for j, c := range count {
		start[j+1] = start[j] + c
	}
	rs.order = sized(rs.order, len(recs))
	order := rs.order
	rs.next = append(rs.next[:0], start[:len(count)]...)
	next := rs.next
	for i, j := range route {
		order[next[j]] = int32(i)
		next[j]++
	}
	// A shard refusing writes for a full disk refuses the whole put
	// before any of it is appended elsewhere.
	for j, c := range count {
		if c > 0 {
			if err := st.open[j].refusing(); err != nil {
				return nil, fmt.Errorf("put to stream %s: %w", st.name, err)
			}
		}
	}
	now := s.opts.Now().UnixMilli()
	puts := rs.puts[:0]
	for j, c := range count {
		if c == 0 {
			continue
		}
		g, err := st.open[j].append(recs, order[start[j]:start[j+1]], now, res)
		if err != nil {
			err = fmt.Errorf("put to stream %s: %w", st.name, err)
		}
		puts = append(puts, shardPut{shard: st.open[j], recs: order[start[j]:start[j+1]], g: g, err: err})
	}
	rs.puts = puts
	return puts, nil
}

func (s *Store) shard(op, name, shardID string) (*stream, *shard, error) {
	st, err := s.get(op, name)
	if err != nil {
		return nil, nil, err
	}
	idx, ok := ParseShardID(shardID)
	st.mu.RLock()
	sh := st.shards[idx]
	st.mu.RUnlock()
	if !ok || sh == nil {
		return nil, nil, &Error{Op: op, Field: "shard", Err: ErrShardNotFound, Msg: fmt.Sprintf("stream %q has no shard %q", name, shardID)}
	}
	return st, sh, nil
}

// IteratorType names where a read starts.
type IteratorType string

// The iterator types of Kinesis.
const (
	TrimHorizon         IteratorType = "TRIM_HORIZON"
	Latest              IteratorType = "LATEST"
	AtSequenceNumber    IteratorType = "AT_SEQUENCE_NUMBER"
	AfterSequenceNumber IteratorType = "AFTER_SEQUENCE_NUMBER"
	AtTimestamp         IteratorType = "AT_TIMESTAMP"
)

// Seek resolves an iterator to the counter a read starts from. seq is the
// public sequence number for the *_SEQUENCE_NUMBER types; ts is for
// AT_TIMESTAMP.
func (s *Store) Seek(name, shardID string, it IteratorType, seq string, ts time.Time) (uint64, error) {
	const op = "get iterator"
	_, sh, err := s.shard(op, name, shardID)
	if err != nil {
		return 0, err
	}
	v := sh.view()
	switch it {
	case TrimHorizon:
		return v.trimHorizon(), nil
	case Latest:
		return v.visible + 1, nil
	case AtSequenceNumber, AfterSequenceNumber:
		tag, idx, ctr, err := ParseSeq(seq)
		if err != nil {
			return 0, invalid(op, "sequence_number", "%q is not a valid sequence number", seq)
		}
		if tag != sh.tag {
			return 0, notFromStream(op, name, seq)
		}
		if idx != sh.index {
			return 0, invalid(op, "sequence_number", "sequence number %s belongs to shard %s, not %s", seq, ShardID(idx), sh.id)
		}
		if it == AfterSequenceNumber {
			if ctr == math.MaxUint64 {
				// Nothing comes after it; ctr+1 would wrap to the trim horizon.
				return 0, invalid(op, "sequence_number", "%q is out of range", seq)
			}
			ctr++
		}
		return max(ctr, v.trimHorizon()), nil
	case AtTimestamp:
		return sh.positionAtTime(&v, ts.UnixMilli())
	}
	return 0, invalid(op, "type", "%q is not one of TRIM_HORIZON, LATEST, AT_SEQUENCE_NUMBER, AFTER_SEQUENCE_NUMBER, AT_TIMESTAMP", it)
}

// ReadResult is one read of a shard.
type ReadResult struct {
	Records []Record
	// Tag is the stream's sequence tag: FormatSeq(Tag, shard index,
	// Records[i].Seq) is a record's public sequence number.
	Tag uint64
	// Next is the counter to read from next.
	Next uint64
	// MillisBehind is how far the last returned record is behind the
	// shard's newest record (0 when caught up).
	MillisBehind int64
	// EndOfShard: the shard is closed and every record of it was read;
	// Children are where reading goes on.
	EndOfShard bool
	Children   []string
}

// Read returns durable records of a shard starting at counter from (a
// position before the trim horizon starts at the trim horizon), at most
// maxRecords and about maxBytes of data (never fewer than one record).
func (s *Store) Read(name, shardID string, from uint64, maxRecords, maxBytes int) (ReadResult, error) {
	const op = "read"
	if maxRecords <= 0 || maxRecords > MaxReadRecords {
		maxRecords = MaxReadRecords
	}
	if maxBytes <= 0 || maxBytes > MaxReadBytes {
		maxBytes = MaxReadBytes
	}
	st, sh, err := s.shard(op, name, shardID)
	if err != nil {
		return ReadResult{}, err
	}
	v := sh.view()
	recs, next, err := sh.read(&v, from, maxRecords, maxBytes)
	for errors.Is(err, errSegmentGone) {
		// Retention removed a segment under the read; the new view
		// starts at the new trim horizon.
		if _, err = s.get(op, name); err != nil {
			return ReadResult{}, err
		}
		v = sh.view()
		recs, next, err = sh.read(&v, from, maxRecords, maxBytes)
	}
	if err != nil {
		return ReadResult{}, fmt.Errorf("read stream %s shard %s: %w", name, shardID, err)
	}
	r := ReadResult{Records: recs, Tag: sh.tag, Next: next}
	if n := len(recs); n > 0 && next <= v.visible {
		r.MillisBehind = max(0, v.tipTime-recs[n-1].Arrival)
	}
	sh.recordsRead.Add(int64(len(recs)))
	sh.behindMs.Store(r.MillisBehind)
	if v.closed && next > v.visible && next > v.next-1 {
		r.EndOfShard = true
		r.Children = s.children(st, sh.id)
	}
	return r, nil
}

func (s *Store) children(st *stream, id string) []string {
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	var out []string
	for _, m := range st.meta.Shards {
		if m.Parent == id || m.AdjacentParent == id {
			out = append(out, ShardID(m.Index))
		}
	}
	return out
}

// Wait blocks until the shard has a durable record at or after counter
// from, the shard is closed and fully durable (a read then reports
// EndOfShard), or ctx ends. It does not poll: appends wake it. It returns
// ErrClosed when the store closes, and the shard's error when a write of it
// failed.
func (s *Store) Wait(ctx context.Context, name, shardID string, from uint64) error {
	_, sh, err := s.shard("wait", name, shardID)
	if err != nil {
		return err
	}
	for {
		v := sh.view()
		if v.visible >= from || (v.closed && v.visible+1 >= v.next) {
			return nil
		}
		if v.failed != nil {
			return fmt.Errorf("wait on stream %s shard %s: %w", name, shardID, v.failed)
		}
		select {
		case <-v.notify:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.stop:
			return ErrClosed
		}
	}
}

// ParseCounter reads a decimal counter (the REST API's positions).
func ParseCounter(s string) (uint64, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, invalid("parse position", "", "%q is not a non-negative integer", s)
	}
	return n, nil
}
