package sources

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/runnel-dev/runnel/streams"
)

// Start positions of a stream source.
const (
	StartTrimHorizon = "trim_horizon"
	StartLatest      = "latest"
	StartAtTimestamp = "at_timestamp"
)

// StreamConfig configures a source reading a Runnel stream.
type StreamConfig struct {
	Store  *streams.Store
	Stream string
	// Start is trim_horizon (default), latest or at_timestamp (with
	// Timestamp). It applies to the shards the stream has when the job
	// lists them; shards created later by a reshard are read from their
	// beginning, so nothing written to them is skipped.
	Start     string
	Timestamp time.Time
	// Format decodes record data: json (default), text or bytes.
	Format Format
	// MaxBytes bounds one read of a shard; default 256 KiB (a read of a
	// larger record still returns it).
	MaxBytes int
	// RawJSON, with format json, hands each record's bytes on undecoded,
	// as a json.RawMessage of its own (not validated), for a consumer that
	// decodes them itself: a JS chain reads only the fields its functions
	// use (see operators/js). A malformed record is then that consumer's
	// error, not the source's.
	RawJSON bool
	// MaxDepth, if > 0, bounds the nesting of JSON records (see
	// JSONDecoder.MaxDepth); jobs use MaxJSONDepth. With RawJSON it is
	// checked only when OnError drops bad records (else the consumer's
	// decoder fails on them).
	MaxDepth int
	// OnError is what to do with a record that does not decode; nil
	// fails the read with a *RecordError.
	OnError *BadRecords
}

// Validate checks the configuration (not that the stream exists).
func (c StreamConfig) Validate() error {
	if c.Store == nil {
		return configErr("stream source: no store")
	}
	if err := streams.ValidateStreamName(c.Stream); err != nil {
		return configErr("stream source: %v", err)
	}
	switch c.Start {
	case "", StartTrimHorizon, StartLatest:
	case StartAtTimestamp:
		if c.Timestamp.IsZero() {
			return configErr("stream source %s: start at_timestamp needs a timestamp", c.Stream)
		}
	default:
		return configErr("stream source %s: start %q: use trim_horizon, latest or at_timestamp", c.Stream, c.Start)
	}
	if c.Format != "" {
		if err := c.Format.Validate(); err != nil {
			return err
		}
	}
	if c.RawJSON && c.Format != "" && c.Format != FormatJSON {
		return configErr("stream source %s: raw JSON needs format json, not %s", c.Stream, c.Format)
	}
	if c.MaxBytes < 0 {
		return configErr("stream source %s: max bytes %d must not be negative", c.Stream, c.MaxBytes)
	}
	if c.OnError != nil {
		if err := c.OnError.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// Stream reads a Runnel stream: one shard of the source per stream shard,
// closed shards first and children after their parents (the runtime
// enforces the order from Shard.Parents). A reader waits for new records
// with the store's Wait, which appends wake — no polling. Positions are
// public sequence numbers.
//
// A record whose data does not decode in the configured format is an
// error (a *RecordError naming shard and sequence number), unless the
// configured OnError drops it (skip, dead_letter): then the reader goes on
// with the next record.
type Stream struct {
	cfg StreamConfig
	mu  sync.Mutex
	// initial are the shards listed by Shards: the start position applies
	// to them.
	initial map[string]bool
}

// NewStream validates cfg and returns the source.
func NewStream(cfg StreamConfig) (*Stream, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Start == "" {
		cfg.Start = StartTrimHorizon
	}
	if cfg.MaxBytes == 0 {
		cfg.MaxBytes = 256 << 10
	}
	return &Stream{cfg: cfg, initial: map[string]bool{}}, nil
}

func shardOf(si streams.ShardInfo) Shard {
	sh := Shard{ID: si.ID}
	if si.Parent != "" {
		sh.Parents = append(sh.Parents, si.Parent)
	}
	if si.AdjacentParent != "" {
		sh.Parents = append(sh.Parents, si.AdjacentParent)
	}
	return sh
}

// Shards lists the stream's shards that still hold records (expired closed
// shards are left out), by index, so parents come before children.
func (s *Stream) Shards(ctx context.Context) ([]Shard, error) {
	info, err := s.cfg.Store.DescribeStream(s.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("list shards of stream %s: %w", s.cfg.Stream, err)
	}
	var out []Shard
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, si := range info.Shards {
		if si.Expired {
			continue
		}
		out = append(out, shardOf(si))
		s.initial[si.ID] = true
	}
	return out, nil
}

// Open positions a reader on shard: after the sequence number after, or at
// the configured start.
func (s *Stream) Open(ctx context.Context, shard Shard, after string) (Reader, error) {
	it, seq := streams.TrimHorizon, ""
	s.mu.Lock()
	initial := s.initial[shard.ID] && !shard.FromStart
	s.mu.Unlock()
	switch {
	case after != "":
		it, seq = streams.AfterSequenceNumber, after
	case initial && s.cfg.Start == StartLatest:
		it = streams.Latest
	case s.cfg.Start == StartAtTimestamp:
		it = streams.AtTimestamp
	}
	// The positions handed on carry the stream's sequence tag; Seek
	// refuses an after of another tag (of a stream of this name deleted
	// since).
	tag, err := s.cfg.Store.SeqTag(s.cfg.Stream)
	if err != nil {
		return nil, fmt.Errorf("open stream %s shard %s: %w", s.cfg.Stream, shard.ID, err)
	}
	next, err := s.cfg.Store.Seek(s.cfg.Stream, shard.ID, it, seq, s.cfg.Timestamp)
	if err != nil {
		return nil, fmt.Errorf("open stream %s shard %s: %w", s.cfg.Stream, shard.ID, err)
	}
	idx, _ := streams.ParseShardID(shard.ID)
	dec := NewDecoder(s.cfg.Format)
	dec.SetMaxDepth(s.cfg.MaxDepth)
	return &streamReader{src: s, shard: shard.ID, index: idx, tag: tag, seqPrefix: streams.FormatSeq(tag, idx, 0)[:seqPrefixLen],
		next: next, dec: dec}, nil
}

// SkippedRecords counts records dropped under on_error skip.
func (s *Stream) SkippedRecords() int64 { return s.cfg.OnError.SkippedRecords() }

// DeadLetteredRecords counts records dead-lettered under on_error
// dead_letter.
func (s *Stream) DeadLetteredRecords() int64 { return s.cfg.OnError.DeadLetteredRecords() }

type streamReader struct {
	src       *Stream
	shard     string
	index     int
	tag       uint64 // the stream's sequence tag
	seqPrefix string // "49", the shard index and the tag: the first 24 digits
	next      uint64
	dec       *Decoder
	children  []Shard
	// ahead holds records read from the store but not returned yet; a
	// store read costs about the same for a few records as for many (it
	// reads a whole chunk of the segment), so the reader asks for up to
	// readAhead records at a time.
	ahead []streams.Record
	// aheadNext is the counter to read from after ahead.
	aheadNext uint64
}

// ResumePosition is the sequence number just before the reader's first
// record (counters start at 1, so the counter before is at least 0).
func (r *streamReader) ResumePosition() string {
	if r.next == 0 {
		return ""
	}
	return streams.FormatSeq(r.tag, r.index, r.next-1)
}

// readAhead is the most records one store read asks for.
const readAhead = 4096

func (r *streamReader) Read(ctx context.Context, buf []Record) (int, error) {
	cfg := &r.src.cfg
	for {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		if len(r.ahead) == 0 {
			res, err := cfg.Store.Read(cfg.Stream, r.shard, r.next, max(len(buf), readAhead), cfg.MaxBytes)
			if err != nil {
				return 0, err
			}
			if len(res.Records) == 0 {
				if res.EndOfShard {
					r.children = r.childShards(res.Children)
					return 0, io.EOF
				}
				r.next = max(r.next, res.Next)
				if err := cfg.Store.Wait(ctx, cfg.Stream, r.shard, r.next); err != nil {
					return 0, err
				}
				continue
			}
			r.ahead, r.aheadNext = res.Records, res.Next
		}
		// take returns 0, nil when every record it looked at was
		// dropped under the error policy: read on.
		if n, err := r.take(ctx, buf); n > 0 || err != nil {
			return n, err
		}
	}
}

// take returns records from ahead, dropping bad ones under the error
// policy.
func (r *streamReader) take(ctx context.Context, buf []Record) (int, error) {
	recs := r.ahead[:min(len(buf), len(r.ahead))]
	var slab []byte
	if r.src.cfg.RawJSON {
		// One copy per call: the records do not keep the store's read
		// buffer alive.
		size := 0
		for _, rec := range recs {
			size += len(rec.Data)
		}
		slab = make([]byte, 0, size)
	}
	policy := r.src.cfg.OnError
	n, used := 0, 0
	for _, rec := range recs {
		var v any
		var err error
		if slab != nil {
			if policy.Drops() {
				err = CheckJSON(rec.Data, r.src.cfg.MaxDepth)
			}
			start := len(slab)
			slab = append(slab, rec.Data...)
			v = json.RawMessage(slab[start:len(slab):len(slab)])
		} else {
			v, err = r.dec.Decode(rec.Data)
		}
		if err != nil {
			pos := r.seq(rec.Seq)
			perr := err
			if policy.Drops() {
				// A checkpoint's pause cancels ctx; the dead letter is
				// written all the same.
				perr = policy.Handle(context.WithoutCancel(ctx), policy.Origin(r.shard, pos), rec.PartitionKey, rec.Data, err)
			}
			if perr != nil {
				clear(r.ahead[:used])
				r.ahead = r.ahead[used:]
				if n > 0 {
					return n, nil
				}
				return 0, &RecordError{Shard: r.shard, Position: pos, Err: perr}
			}
			used++
			r.next = rec.Seq + 1
			continue
		}
		buf[n] = Record{Value: v, PartitionKey: rec.PartitionKey,
			Position: r.seq(rec.Seq), Arrival: rec.Arrival}
		n++
		used++
		r.next = rec.Seq + 1
	}
	clear(r.ahead[:used])
	r.ahead = r.ahead[used:]
	if len(r.ahead) == 0 {
		r.ahead = nil
		r.next = max(r.next, r.aheadNext)
	}
	return n, nil
}

// seq formats a counter as the shard's public sequence number (what
// streams.FormatSeq returns) without fmt: it runs once per record.
func (r *streamReader) seq(ctr uint64) string {
	var b [56]byte
	copy(b[:], r.seqPrefix)
	for i := seqPrefixLen; i < len(b); i++ {
		b[i] = '0'
	}
	for i := len(b) - 1; ctr > 0; i-- {
		b[i] = byte('0' + ctr%10)
		ctr /= 10
	}
	return string(b[:])
}

// seqPrefixLen is how many leading digits of a sequence number are the
// same for every record of a shard: "49", the shard index, the tag.
const seqPrefixLen = 24

// childShards looks up the parents of each child (a merge has two).
func (r *streamReader) childShards(ids []string) []Shard {
	info, err := r.src.cfg.Store.DescribeStream(r.src.cfg.Stream)
	out := make([]Shard, 0, len(ids))
	for _, id := range ids {
		sh := Shard{ID: id, Parents: []string{r.shard}}
		if err == nil {
			for _, si := range info.Shards {
				if si.ID == id {
					sh = shardOf(si)
				}
			}
		}
		out = append(out, sh)
	}
	return out
}

func (r *streamReader) Children() []Shard { return r.children }

func (r *streamReader) Close() error { return nil }
