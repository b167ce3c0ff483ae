package streams

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// The checks of TestModelRandomOps after an open: what it reported, and
// the store matched with the model's shapes before and after a crashed
// operation; and the checks of every description.

// checkOpened checks what opening reported: no damage unless a crash
// kept part of the unsynced data, and no problem: a delete a crash cut
// leaves no directory behind.
func (r *modelRun) checkOpened() {
	if c := r.s.Corruptions(); len(c) > 0 && !r.mayCorrupt {
		r.fatalf("opening after clean crashes reported damage: %v", c[0].Error())
	}
	for _, p := range r.s.Problems() {
		r.fatalf("opening reported a problem: %s %s %s", p.Kind, p.Path, p.Message)
	}
}

// reconcile matches the store opened after a crash with the model before
// the crashed operation and after it: each stream must have one of the
// two shapes; its records are the model's of that shape, every
// acknowledged one present, the cut put's ones each present or not. The
// model then takes what survived.
func (r *modelRun) reconcile(before map[string]*mstream) {
	for _, name := range r.names {
		after := r.model[name]
		in, err := r.s.DescribeStream(name)
		var chosen *mstream
		switch {
		case errors.Is(err, ErrStreamNotFound):
			if after != nil && before[name] != nil {
				r.fatalf("stream %s is gone after the crash", name)
			}
		case err != nil:
			r.fatalf("describe %s after the crash: %v", name, err)
		case after != nil && after.tag == in.SeqTag && slices.Equal(after.layout(), infoLayout(in)):
			chosen = after
		case before[name] != nil && before[name].tag == in.SeqTag && slices.Equal(before[name].layout(), infoLayout(in)):
			chosen = before[name]
			r.logf("after the crash %s is as before the operation", name)
		default:
			var want []string
			if after != nil {
				want = after.layout()
			}
			r.diff(fmt.Sprintf("stream %s (tag %d) after the crash, against the model after the operation (tag %d)", name, in.SeqTag, tagOf(after)), want, infoLayout(in))
			r.fatalf("stream %s after the crash matches neither shape", name)
		}
		if chosen == nil {
			r.model[name] = nil
			continue
		}
		// Retention runs cut by the crash may or may not have trimmed.
		if after != nil && before[name] != nil && after.tag == before[name].tag {
			chosen.allowCut = after.allowCut
		}
		if b := before[name]; b != nil && b.tag == chosen.tag && in.RetentionHours == b.retention {
			// A retention update the crash undid.
			chosen.retention = b.retention
		}
		r.model[name] = chosen
		// A delete the crash undid: its sequence numbers are valid again.
		r.old = slices.DeleteFunc(r.old, func(o oldSeq) bool { return o.tag == chosen.tag })
		for _, sh := range chosen.shards {
			r.reconcileShard(chosen, sh, in.Shards[sh.index], before[name])
		}
	}
}

func tagOf(st *mstream) uint64 {
	if st == nil {
		return 0
	}
	return st.tag
}

func (r *modelRun) reconcileShard(st *mstream, sh *mshard, si ShardInfo, before *mstream) {
	r.checkTrim(st, sh, si.TrimSeq)
	got := r.readAll(st, sh)
	var recs []mrec
	i := 0
	for _, g := range got {
		for i < len(sh.recs) && sh.recs[i].Seq < g.Seq {
			if !sh.recs[i].maybe {
				r.diff(fmt.Sprintf("%s/%d after the crash: acknowledged record %d lost", st.name, sh.index, sh.recs[i].Seq), recLines(sh.kept()), recLines(got))
			}
			i++
		}
		if i == len(sh.recs) || sh.recs[i].Seq != g.Seq || sh.recs[i].String() != g.String() {
			r.diff(fmt.Sprintf("%s/%d after the crash: record %d was never put there", st.name, sh.index, g.Seq), recLines(sh.kept()), recLines(got))
		}
		recs = append(recs, g)
		i++
	}
	for ; i < len(sh.recs); i++ {
		if !sh.recs[i].maybe {
			r.diff(fmt.Sprintf("%s/%d after the crash: acknowledged record %d lost", st.name, sh.index, sh.recs[i].Seq), recLines(sh.kept()), recLines(got))
		}
	}
	sh.recs = recs
	if !sh.open {
		return
	}
	// The next counter is after every record kept and every position
	// durable before the crash, and at most what the operation handed out.
	lo := uint64(1)
	if n := len(recs); n > 0 {
		lo = recs[n-1].Seq + 1
	}
	if before != nil && before.tag == st.tag && sh.index < len(before.shards) {
		lo = max(lo, before.shards[sh.index].vis+1)
	}
	next, err := r.s.Seek(st.name, ShardID(sh.index), Latest, "", time.Time{})
	if err != nil || next < lo || next > sh.next {
		r.fatalf("%s/%d after the crash: LATEST is %d %v; the model says %d to %d", st.name, sh.index, next, err, lo, sh.next)
	}
	sh.next, sh.vis = next, next-1
}

// readAll reads a whole shard from its trim horizon in small pages.
func (r *modelRun) readAll(st *mstream, sh *mshard) []mrec {
	var out []mrec
	var pos uint64
	for {
		res, err := r.s.Read(st.name, ShardID(sh.index), pos, 1+r.rng.IntN(40), 0)
		if err != nil {
			r.fatalf("read %s/%d from %d: %v", st.name, sh.index, pos, err)
		}
		for _, g := range res.Records {
			out = append(out, mrec{Seq: g.Seq, Arrival: g.Arrival, Key: g.PartitionKey, Data: g.Data})
		}
		if len(res.Records) == 0 {
			return out
		}
		if res.Next <= pos {
			r.fatalf("read %s/%d: next %d does not pass %d", st.name, sh.index, res.Next, pos)
		}
		pos = res.Next
	}
}

// checkTrim checks a trim horizon the store reports: it never goes back,
// and only records retention allowed to go are below it, and none that
// retention must have removed is at or above it. The model then drops
// the records below it.
func (r *modelRun) checkTrim(st *mstream, sh *mshard, th uint64) {
	if th < sh.trim || th > sh.vis+1 {
		r.fatalf("%s/%d: trim horizon %d; the model says %d to %d", st.name, sh.index, th, sh.trim, sh.vis+1)
	}
	segAge := r.opts.SegmentAge.Milliseconds()
	first := true
	for _, rec := range sh.recs {
		if rec.maybe {
			continue
		}
		if rec.Seq < th && rec.Arrival >= st.allowCut {
			r.fatalf("%s/%d: trim horizon %d drops record %d, which arrived at %d, after the newest retention cutoff %d", st.name, sh.index, th, rec.Seq, rec.Arrival, st.allowCut)
		}
		if rec.Seq >= th && first {
			first = false
			if rec.Arrival+segAge < st.mustCut {
				r.fatalf("%s/%d: trim horizon %d keeps record %d, which arrived at %d, more than a segment's age (%d ms) before the retention cutoff %d", st.name, sh.index, th, rec.Seq, rec.Arrival, segAge, st.mustCut)
			}
		}
	}
	if th > sh.trim {
		r.logf("trim horizon of %s/%d: %d", st.name, sh.index, th)
		r.stats.trims++
		if !sh.open && th == sh.vis+1 {
			r.stats.expired++
		}
	}
	sh.trim = th
	i := 0
	for i < len(sh.recs) && sh.recs[i].Seq < th {
		i++
	}
	sh.recs = sh.recs[i:]
}

// checkAll compares every stream's description with the model.
func (r *modelRun) checkAll() {
	r.t.Helper()
	now := r.clock.now()
	var names, listed []string
	for _, in := range r.s.ListStreams() {
		listed = append(listed, in.Name)
	}
	for _, name := range r.names {
		if r.model[name] != nil {
			names = append(names, name)
		}
	}
	r.diff("the streams listed", names, listed)
	for _, name := range r.names {
		st := r.model[name]
		in, err := r.s.DescribeStream(name)
		if st == nil {
			if !errors.Is(err, ErrStreamNotFound) {
				r.fatalf("describe %s, deleted: %v", name, err)
			}
			continue
		}
		if err != nil {
			r.fatalf("describe %s: %v", name, err)
		}
		r.diff("the shards of "+name, st.layout(), infoLayout(in))
		if in.SeqTag != st.tag || in.RetentionHours != st.retention || in.Status != StatusActive {
			r.fatalf("describe %s: tag %d, retention %d, status %s; the model says %d, %d, ACTIVE", name, in.SeqTag, in.RetentionHours, in.Status, st.tag, st.retention)
		}
		for _, si := range in.Shards {
			sh := st.shards[si.Index]
			r.checkTrim(st, sh, si.TrimSeq)
			expired := !sh.open && now.Sub(sh.closedAt) > time.Duration(st.retention)*time.Hour
			if si.LastSeq != sh.vis || si.Expired != expired || len(si.Lost) > 0 {
				r.fatalf("describe %s/%d: last %d, expired %v, lost %v; the model says last %d, expired %v, nothing lost", name, si.Index, si.LastSeq, si.Expired, si.Lost, sh.vis, expired)
			}
		}
	}
}

// fullCheck reads every shard of every stream whole.
func (r *modelRun) fullCheck() {
	r.checkAll()
	for _, name := range r.names {
		st := r.model[name]
		if st == nil {
			continue
		}
		for _, sh := range st.shards {
			r.diff(fmt.Sprintf("all of %s/%d", name, sh.index), recLines(sh.kept()), recLines(r.readAll(st, sh)))
		}
	}
}

// probeMissing checks that a deleted stream, and a shard a stream does
// not have, are not found by puts, reads, seeks and waits.
func (r *modelRun) probeMissing(name string) {
	ctx := context.Background()
	_, err := r.s.Put(ctx, name, []PutRecord{{PartitionKey: "k", Data: []byte("x")}})
	_, err2 := r.s.Read(name, ShardID(0), 0, 0, 0)
	_, err3 := r.s.Seek(name, ShardID(0), TrimHorizon, "", time.Time{})
	err4 := r.s.Wait(ctx, name, ShardID(0), 1)
	r.logf("put, read, seek, wait %s (deleted): %v; %v; %v; %v", name, err, err2, err3, err4)
	for _, e := range []error{err, err2, err3, err4} {
		if !errors.Is(e, ErrStreamNotFound) {
			r.fatalf("%s, deleted: %v; want ErrStreamNotFound", name, e)
		}
	}
	if st := r.pickStream(); st != nil {
		id := ShardID(len(st.shards))
		_, err := r.s.Read(st.name, id, 0, 0, 0)
		_, err2 := r.s.Seek(st.name, id, Latest, "", time.Time{})
		if !errors.Is(err, ErrShardNotFound) || !errors.Is(err2, ErrShardNotFound) {
			r.fatalf("%s/%s, no such shard: %v; %v; want ErrShardNotFound", st.name, id, err, err2)
		}
	}
}
