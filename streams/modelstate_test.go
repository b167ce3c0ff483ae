package streams

import (
	"fmt"
	"slices"
	"sort"
	"time"
)

// The model of TestModelRandomOps: what the log promised about each
// stream, kept beside the store and compared with every answer it gives.

// mrec is a record the model knows was put. maybe marks the records of a
// put that a crash cut: they may or may not have survived it.
type mrec struct {
	Seq     uint64
	Arrival int64
	Key     string
	Data    []byte
	maybe   bool
}

func (r mrec) String() string {
	return fmt.Sprintf("%d @%d %q %q", r.Seq, r.Arrival, r.Key, r.Data)
}

// mshard is one shard of the model.
type mshard struct {
	index    int
	rg       HashRange
	parent   string
	adj      string
	open     bool
	ending   uint64
	closedAt time.Time
	// recs are the records put and not trimmed (by counter); next is the
	// counter the next record gets (ending+1 once closed); vis is the
	// newest position readers see: next-1, unless a full disk refused the
	// last counters; trim is the trim horizon last seen: records below it
	// are gone for good.
	recs []mrec
	next uint64
	vis  uint64
	trim uint64
}

// mstream is one incarnation of a stream in the model.
type mstream struct {
	name      string
	inc       int // incarnation number, part of every record's data
	tag       uint64
	dir       string
	retention int
	shards    []*mshard // by index
	// allowCut is the newest retention cutoff (unix ms) any retention run
	// had, finished or cut by a crash: only records older than it may be
	// trimmed. mustCut is the newest one of a finished run: records whose
	// segment's span (at most SegmentAge) ends before it must be gone.
	allowCut, mustCut int64
}

func (st *mstream) clone() *mstream {
	c := *st
	c.shards = make([]*mshard, len(st.shards))
	for i, sh := range st.shards {
		s := *sh
		s.recs = slices.Clone(sh.recs)
		c.shards[i] = &s
	}
	return &c
}

func newMstream(name string, inc int, tag uint64, retention int, n int) *mstream {
	st := &mstream{name: name, inc: inc, tag: tag, retention: retention}
	for i, rg := range EvenRanges(n) {
		st.shards = append(st.shards, &mshard{index: i, rg: rg, open: true, next: 1, trim: 1})
	}
	return st
}

// openShards are the open shards sorted by hash range.
func (st *mstream) openShards() []*mshard {
	var out []*mshard
	for _, sh := range st.shards {
		if sh.open {
			out = append(out, sh)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].rg.Start.Cmp(out[j].rg.Start) < 0 })
	return out
}

// route is the open shard a record goes to.
func (st *mstream) route(r PutRecord) *mshard {
	hk := HashPartitionKey(r.PartitionKey)
	if r.ExplicitHashKey != "" {
		hk, _ = ParseHashKey(r.ExplicitHashKey)
	}
	for _, sh := range st.openShards() {
		if sh.rg.Contains(hk) {
			return sh
		}
	}
	return nil
}

func (st *mstream) children(id string) []string {
	var out []string
	for _, sh := range st.shards {
		if sh.parent == id || sh.adj == id {
			out = append(out, ShardID(sh.index))
		}
	}
	return out
}

// add takes a record put at the shard's next counter.
func (sh *mshard) add(r mrec) {
	sh.recs = append(sh.recs, r)
	sh.next, sh.vis = r.Seq+1, r.Seq
}

func (st *mstream) close(sh *mshard, now time.Time) {
	sh.open, sh.ending, sh.closedAt = false, sh.next-1, now
	sh.next, sh.vis = sh.ending+1, sh.ending
}

func (st *mstream) addChild(rg HashRange, parent, adj string) *mshard {
	c := &mshard{index: len(st.shards), rg: rg, parent: parent, adj: adj, open: true, next: 1, trim: 1}
	st.shards = append(st.shards, c)
	return c
}

// split and merge are what SplitShard and MergeShards must do.
func (st *mstream) split(sh *mshard, at HashKey, now time.Time) {
	st.close(sh, now)
	id := ShardID(sh.index)
	st.addChild(HashRange{sh.rg.Start, at.sub1()}, id, "")
	st.addChild(HashRange{at, sh.rg.End}, id, "")
}

func (st *mstream) merge(a, b *mshard, now time.Time) {
	st.close(a, now)
	st.close(b, now)
	lo, hi := a, b
	if b.rg.Start.Cmp(a.rg.Start) < 0 {
		lo, hi = b, a
	}
	st.addChild(HashRange{lo.rg.Start, hi.rg.End}, ShardID(a.index), ShardID(b.index))
}

// layout is the shape of a stream, one line a shard: what a describe must
// show apart from the positions.
func (st *mstream) layout() []string {
	var out []string
	for _, sh := range st.shards {
		end := uint64(0)
		if !sh.open {
			end = sh.ending
		}
		out = append(out, layoutLine(sh.index, sh.rg, sh.parent, sh.adj, sh.open, end, st.children(ShardID(sh.index))))
	}
	return out
}

func infoLayout(in StreamInfo) []string {
	var out []string
	for _, sh := range in.Shards {
		out = append(out, layoutLine(sh.Index, sh.Range, sh.Parent, sh.AdjacentParent, sh.Open, sh.EndingSeq, sh.Children))
	}
	return out
}

func layoutLine(idx int, rg HashRange, parent, adj string, open bool, end uint64, children []string) string {
	return fmt.Sprintf("%d [%s,%s] parent=%q adj=%q open=%v ending=%d children=%v", idx, rg.Start, rg.End, parent, adj, open, end, children)
}

// kept are the records at or after the trim horizon.
func (sh *mshard) kept() []mrec {
	i := sort.Search(len(sh.recs), func(i int) bool { return sh.recs[i].Seq >= sh.trim })
	return sh.recs[i:]
}

// read is what Read must return: records from max(from, trim horizon), at
// most limit, and past the first at most maxBytes of data in all; next
// is after the last record returned, or after the newest position when no
// record is left.
func (sh *mshard) read(from uint64, limit, maxBytes int) ([]mrec, uint64) {
	if limit <= 0 || limit > MaxReadRecords {
		limit = MaxReadRecords
	}
	if maxBytes <= 0 || maxBytes > MaxReadBytes {
		maxBytes = MaxReadBytes
	}
	start := max(from, sh.trim)
	if start > sh.vis {
		return nil, start
	}
	var out []mrec
	total := 0
	for _, r := range sh.kept() {
		if r.Seq < start {
			continue
		}
		if len(out) == limit || (len(out) > 0 && total+len(r.Data) > maxBytes) {
			return out, out[len(out)-1].Seq + 1
		}
		out = append(out, r)
		total += len(r.Data)
	}
	return out, sh.vis + 1
}

// atTime is where AT_TIMESTAMP ts (unix ms) starts.
func (sh *mshard) atTime(ts int64) uint64 {
	for _, r := range sh.kept() {
		if r.Arrival >= ts {
			return r.Seq
		}
	}
	return sh.vis + 1
}

// behind is the MillisBehind of a read that returned recs and next.
func (sh *mshard) behind(recs []mrec, next uint64) int64 {
	k := sh.kept()
	if len(recs) == 0 || next > sh.vis || len(k) == 0 {
		return 0
	}
	return max(0, k[len(k)-1].Arrival-recs[len(recs)-1].Arrival)
}

func recLines[T Record | mrec](rs []T) []string {
	out := make([]string, len(rs))
	for i, r := range rs {
		switch r := any(r).(type) {
		case Record:
			out[i] = mrec{Seq: r.Seq, Arrival: r.Arrival, Key: r.PartitionKey, Data: r.Data}.String()
		case mrec:
			out[i] = r.String()
		}
	}
	return out
}
