package streams

import (
	"fmt"
	"sort"
	"time"
)

// Resharding. A reshard closes parent shards — they keep their records,
// readable until retention, and record an ending sequence number — and opens
// child shards that record their parents. Each operation edits a copy of the
// stream's metadata, persists it atomically, then applies it: either all of
// a reshard happens or none of it.

// SplitShard splits an open shard at newStart: the children cover
// [start, newStart−1] and [newStart, end].
func (s *Store) SplitShard(name, shardID, newStart string) error {
	const op = "split shard"
	hk, err := ParseHashKey(newStart)
	if err != nil {
		return invalid(op, "new_starting_hash_key", "%q is not a decimal integer in [0, 2^128-1]", newStart)
	}
	return s.reshard(op, name, func(r *resharder) error {
		m, err := r.openShard(shardID, "shard")
		if err != nil {
			return err
		}
		if len(r.openMetas()) >= MaxShards {
			return invalid(op, "shard", "stream %q already has %d open shards, the most it can have", name, MaxShards)
		}
		if hk.Cmp(m.Range.Start) <= 0 || hk.Cmp(m.Range.End) > 0 {
			return invalid(op, "new_starting_hash_key", "%s is not inside shard %s's range (%s, %s]", hk, shardID, m.Range.Start, m.Range.End)
		}
		r.split(m, hk)
		return nil
	})
}

// MergeShards merges two open shards with adjacent hash ranges.
func (s *Store) MergeShards(name, shardID, adjacentID string) error {
	const op = "merge shards"
	return s.reshard(op, name, func(r *resharder) error {
		a, err := r.openShard(shardID, "shard")
		if err != nil {
			return err
		}
		b, err := r.openShard(adjacentID, "adjacent_shard")
		if err != nil {
			return err
		}
		if !adjacent(a.Range, b.Range) && !adjacent(b.Range, a.Range) {
			return invalid(op, "adjacent_shard", "shards %s and %s are not adjacent", shardID, adjacentID)
		}
		r.merge(a, b)
		return nil
	})
}

// adjacent reports whether b starts right after a ends (a ending at
// 2^128−1 has nothing after it: the key space does not wrap).
func adjacent(a, b HashRange) bool {
	return a.End != MaxHashKey && a.End.add(1) == b.Start
}

// UpdateShardCount reshapes the open shards into target shards of even
// ranges, by splitting at the new boundaries and merging what falls in one
// range (as Kinesis does; intermediate shards appear, closed and empty, in
// the lineage).
func (s *Store) UpdateShardCount(name string, target int) error {
	const op = "update shard count"
	if target < 1 || target > MaxShards {
		return invalid(op, "target_shard_count", "%d is out of range: a stream has 1 to %d shards", target, MaxShards)
	}
	return s.reshard(op, name, func(r *resharder) error {
		bounds := EvenRanges(target)
		for _, b := range bounds[1:] {
			for _, m := range r.openMetas() {
				if b.Start.Cmp(m.Range.Start) > 0 && b.Start.Cmp(m.Range.End) <= 0 {
					r.split(m, b.Start)
				}
			}
		}
		for _, b := range bounds {
			for {
				var in []*shardMeta
				for _, m := range r.openMetas() {
					if b.Start.Cmp(m.Range.Start) <= 0 && m.Range.End.Cmp(b.End) <= 0 {
						in = append(in, m)
					}
				}
				if len(in) < 2 {
					break
				}
				r.merge(in[0], in[1])
			}
		}
		return nil
	})
}

// OpenShardCount is the number of open shards of a stream.
func (s *Store) OpenShardCount(name string) (int, error) {
	st, err := s.get("describe stream", name)
	if err != nil {
		return 0, err
	}
	st.mu.RLock()
	defer st.mu.RUnlock()
	return len(st.open), nil
}

type resharder struct {
	op     string
	st     *stream
	m      *streamMeta // the copy being edited
	now    time.Time
	ending map[int]uint64 // ending counters of shards closed by this reshard
}

func (r *resharder) openShard(id, field string) (*shardMeta, error) {
	idx, ok := ParseShardID(id)
	for _, m := range r.m.Shards {
		if ok && m.Index == idx {
			if m.EndingSeq != nil {
				return nil, &Error{Op: r.op, Field: field, Err: ErrShardClosed, Msg: fmt.Sprintf("shard %s is closed", id)}
			}
			return m, nil
		}
	}
	return nil, &Error{Op: r.op, Field: field, Err: ErrShardNotFound, Msg: fmt.Sprintf("stream %q has no shard %q", r.st.name, id)}
}

func (r *resharder) openMetas() []*shardMeta {
	var out []*shardMeta
	for _, m := range r.m.Shards {
		if m.EndingSeq == nil {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Range.Start.Cmp(out[j].Range.Start) < 0 })
	return out
}

func (r *resharder) close(m *shardMeta) {
	end := uint64(0)
	if sh := r.st.shards[m.Index]; sh != nil {
		sh.mu.Lock()
		end = sh.mu.nextSeq - 1
		sh.mu.Unlock()
	}
	r.ending[m.Index] = end
	now := r.now
	m.EndingSeq, m.Closed = &end, &now
}

func (r *resharder) child(rg HashRange, parent, adjacent string) *shardMeta {
	c := &shardMeta{Index: r.m.NextShardIndex, Range: rg, Parent: parent, AdjacentParent: adjacent, Created: r.now}
	r.m.NextShardIndex++
	r.m.Shards = append(r.m.Shards, c)
	return c
}

func (r *resharder) split(m *shardMeta, at HashKey) {
	r.close(m)
	id := ShardID(m.Index)
	r.child(HashRange{m.Range.Start, at.sub1()}, id, "")
	r.child(HashRange{at, m.Range.End}, id, "")
}

func (r *resharder) merge(a, b *shardMeta) {
	r.close(a)
	r.close(b)
	lo, hi := a, b
	if b.Range.Start.Cmp(a.Range.Start) < 0 {
		lo, hi = b, a
	}
	r.child(HashRange{lo.Range.Start, hi.Range.End}, ShardID(a.Index), ShardID(b.Index))
}

func (s *Store) reshard(op, name string, edit func(*resharder) error) error {
	st, err := s.get(op, name)
	if err != nil {
		return err
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.deleted {
		return notFound(op, name)
	}
	s.metaMu.Lock()
	defer s.metaMu.Unlock()
	r := &resharder{op: op, st: st, m: st.meta.clone(), now: s.opts.Now().UTC(), ending: map[int]uint64{}}
	if err := edit(r); err != nil {
		return err
	}
	if n := len(r.openMetas()); n > len(st.open) {
		if err := s.checkLimits(op, st, false, n); err != nil {
			return err
		}
	}
	if s.opts.UpdateVisibility > 0 {
		r.m.Pending, r.m.PendingUntil = StatusUpdating, r.now.Add(s.opts.UpdateVisibility)
	}
	created := map[int]*shard{}
	for _, m := range r.m.Shards {
		if st.shards[m.Index] == nil {
			sh, err := s.makeShard(st, r.m, m.Index)
			if err != nil {
				return fmt.Errorf("%s %s: %w", op, name, err)
			}
			created[m.Index] = sh
		}
	}
	old := st.meta
	st.meta = r.m
	if err := s.persist(); err != nil {
		st.meta = old
		return fmt.Errorf("%s %s: %w", op, name, err)
	}
	for idx := range r.ending {
		if sh := st.shards[idx]; sh != nil {
			sh.closeForWrites()
			sh.stopWriter() // flushes what was queued before the close
			sh.ended()
		}
	}
	for _, m := range r.m.Shards {
		sh, ok := created[m.Index]
		if !ok {
			continue
		}
		st.shards[m.Index] = sh
		if m.EndingSeq != nil {
			sh.mu.closed = true
			sh.stopped()
		} else {
			s.startShard(sh)
		}
	}
	st.rebuildOpen()
	return nil
}
