package streams

import (
	"context"
	"errors"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// The operations of TestModelRandomOps that change a stream's shape or
// life, restarts and crashes, and the checks of every description.

// enforce runs retention. Records older than the cutoff may go from now
// on; once the run finished, whole segments older than it must be gone.
func (r *modelRun) enforce(cut bool) {
	now := r.clock.now()
	for _, st := range r.model {
		if st == nil {
			continue
		}
		c := now.Add(-time.Duration(st.retention) * time.Hour).UnixMilli()
		st.allowCut = max(st.allowCut, c)
		if !cut {
			st.mustCut = max(st.mustCut, c)
		}
	}
	r.stats.retention++
	r.logf("enforce retention at %s", now.Format(time.RFC3339Nano))
	r.s.EnforceRetention()
}

func (r *modelRun) setRetention(st *mstream) {
	h := 24 + r.rng.IntN(48)
	r.logf("retention of %s = %d h", st.name, h)
	if err := r.s.UpdateStream(st.name, func(u *StreamUpdate) error { u.RetentionHours = h; return nil }); err != nil {
		r.fatalf("update retention of %s: %v", st.name, err)
	}
	st.retention = h
}

// split splits a random open shard at a random key inside it, or now and
// then tries a split the store must refuse.
func (r *modelRun) split(st *mstream, cut bool) {
	open := st.openShards()
	if !cut && r.rng.IntN(8) == 0 {
		sh := r.pickShard(st)
		at, want := sh.rg.Start, error(ErrInvalid)
		if r.rng.IntN(2) == 0 && sh.rg.End != MaxHashKey {
			at = sh.rg.End.add(1)
		}
		if !sh.open {
			at, want = sh.rg.Mid(), ErrShardClosed
		}
		err := r.s.SplitShard(st.name, ShardID(sh.index), at.String())
		r.logf("split %s/%d at %s: %v", st.name, sh.index, at, err)
		if !errors.Is(err, want) {
			r.fatalf("split of %s/%d at %s: %v; want %v", st.name, sh.index, at, err, want)
		}
		return
	}
	var can []*mshard
	for _, sh := range open {
		if sh.rg.Start != sh.rg.End {
			can = append(can, sh)
		}
	}
	if len(open) >= 8 || len(can) == 0 {
		r.merge(st, cut)
		return
	}
	sh := can[r.rng.IntN(len(can))]
	at := sh.rg.Mid()
	switch r.rng.IntN(4) {
	case 0:
		at = sh.rg.Start.add(1)
	case 1:
		at = sh.rg.End
	}
	r.splitAt(st, sh, at, cut)
}

func (r *modelRun) splitAt(st *mstream, sh *mshard, at HashKey, cut bool) {
	r.stats.reshards++
	err := r.s.SplitShard(st.name, ShardID(sh.index), at.String())
	r.logf("split %s/%d at %s: %v", st.name, sh.index, at, err)
	if err != nil {
		r.fatalf("split %s/%d at %s: %v", st.name, sh.index, at, err)
	}
	st.split(sh, at, r.clock.now())
}

// merge merges two adjacent open shards, or now and then tries two the
// store must refuse.
func (r *modelRun) merge(st *mstream, cut bool) {
	open := st.openShards()
	if len(open) < 2 {
		r.split(st, cut)
		return
	}
	if !cut && len(open) > 2 && r.rng.IntN(8) == 0 {
		a, b := open[0], open[2]
		err := r.s.MergeShards(st.name, ShardID(a.index), ShardID(b.index))
		r.logf("merge %s/%d and %d: %v", st.name, a.index, b.index, err)
		if !errors.Is(err, ErrInvalid) {
			r.fatalf("merge of the shards %d and %d of %s, not adjacent: %v; want ErrInvalid", a.index, b.index, st.name, err)
		}
		return
	}
	i := r.rng.IntN(len(open) - 1)
	a, b := open[i], open[i+1]
	if r.rng.IntN(2) == 0 {
		a, b = b, a
	}
	r.stats.reshards++
	err := r.s.MergeShards(st.name, ShardID(a.index), ShardID(b.index))
	r.logf("merge %s/%d and %d: %v", st.name, a.index, b.index, err)
	if err != nil {
		r.fatalf("merge %s/%d and %d: %v", st.name, a.index, b.index, err)
	}
	st.merge(a, b, r.clock.now())
}

// updateCount changes the shard count and checks the new shards: the
// open ranges are the even ranges of the target, the shards closed were
// open, each new shard splits or merges its parents, and intermediate
// shards are closed and empty.
func (r *modelRun) updateCount(st *mstream, cut bool) {
	target := 1 + r.rng.IntN(6)
	r.stats.reshards++
	err := r.s.UpdateShardCount(st.name, target)
	r.logf("update shard count of %s to %d: %v", st.name, target, err)
	if err != nil {
		r.fatalf("update shard count of %s to %d: %v", st.name, target, err)
	}
	in, err := r.s.DescribeStream(st.name)
	if err != nil {
		r.fatalf("describe %s: %v", st.name, err)
	}
	now := r.clock.now()
	n := len(st.shards)
	if len(in.Shards) < n {
		r.fatalf("update shard count of %s: %d shards, had %d", st.name, len(in.Shards), n)
	}
	even := EvenRanges(target)
	isEven := func(rg HashRange) bool { return slices.Contains(even, rg) }
	for _, si := range in.Shards[:n] {
		sh := st.shards[si.Index]
		if sh.open && !si.Open {
			st.close(sh, now)
		}
		if si.Open && !isEven(si.Range) {
			r.fatalf("update shard count of %s to %d: shard %d [%s,%s] stayed open", st.name, target, si.Index, si.Range.Start, si.Range.End)
		}
	}
	for _, si := range in.Shards[n:] {
		p, ok := ParseShardID(si.Parent)
		if si.Index != len(st.shards) || !ok || p >= si.Index {
			r.fatalf("update shard count of %s: new shard %d has parent %q", st.name, si.Index, si.Parent)
		}
		parent := st.shards[p]
		if si.AdjacentParent != "" {
			q, ok := ParseShardID(si.AdjacentParent)
			if !ok || q >= si.Index {
				r.fatalf("update shard count of %s: new shard %d has adjacent parent %q", st.name, si.Index, si.AdjacentParent)
			}
			lo, hi := parent.rg, st.shards[q].rg
			if hi.Start.Cmp(lo.Start) < 0 {
				lo, hi = hi, lo
			}
			if !adjacent(lo, hi) || si.Range != (HashRange{lo.Start, hi.End}) {
				r.fatalf("update shard count of %s: shard %d [%s,%s] is no merge of %d and %d", st.name, si.Index, si.Range.Start, si.Range.End, p, q)
			}
		} else if si.Range != (HashRange{parent.rg.Start, si.Range.End}) && si.Range != (HashRange{si.Range.Start, parent.rg.End}) {
			r.fatalf("update shard count of %s: shard %d [%s,%s] is no half of %d", st.name, si.Index, si.Range.Start, si.Range.End, p)
		}
		c := st.addChild(si.Range, si.Parent, si.AdjacentParent)
		if !si.Open {
			st.close(c, now)
		}
	}
	var ranges []HashRange
	for _, sh := range st.openShards() {
		ranges = append(ranges, sh.rg)
	}
	if !slices.Equal(ranges, even) {
		r.fatalf("update shard count of %s to %d: open ranges %v", st.name, target, ranges)
	}
	// Each split parent has exactly two children that cover it (the
	// layout check after this compares children with the model's).
	for _, sh := range st.shards {
		var kids []*mshard
		for _, c := range st.shards {
			if c.parent == ShardID(sh.index) && c.adj == "" {
				kids = append(kids, c)
			}
		}
		if len(kids) > 0 && (len(kids) != 2 || kids[0].rg.Start != sh.rg.Start || kids[1].rg.End != sh.rg.End || !adjacent(kids[0].rg, kids[1].rg)) {
			r.fatalf("update shard count of %s: shard %d is split into %d shards that do not cover it", st.name, sh.index, len(kids))
		}
	}
}

// remove deletes a stream, keeping a few of its sequence numbers, which
// every later incarnation must refuse.
func (r *modelRun) remove(st *mstream, cut bool) {
	for _, sh := range st.shards {
		k := sh.kept()
		for range min(2, len(k)) {
			r.old = append(r.old, oldSeq{st.tag, FormatSeq(st.tag, sh.index, k[r.rng.IntN(len(k))].Seq)})
		}
		r.old = append(r.old, oldSeq{st.tag, FormatSeq(st.tag, sh.index, 1)})
	}
	if len(r.old) > 60 {
		r.old = r.old[len(r.old)-60:]
	}
	r.stats.deletes++
	err := r.s.DeleteStream(st.name)
	r.logf("delete %s (tag %d): %v", st.name, st.tag, err)
	if err != nil {
		r.fatalf("delete %s: %v", st.name, err)
	}
	r.model[st.name] = nil
}

func (r *modelRun) create(name string, cut bool) {
	n := 1 + r.rng.IntN(4)
	h := 24
	if r.rng.IntN(3) == 0 {
		h += r.rng.IntN(24)
	}
	in, err := r.s.CreateStream(name, n, CreateOptions{RetentionHours: h})
	r.logf("create %s with %d shards, retention %d h: tag %d, %v", name, n, h, in.SeqTag, err)
	if err != nil {
		r.fatalf("create %s: %v", name, err)
	}
	if in.SeqTag == 0 || r.tags[in.SeqTag] {
		r.fatalf("create %s: sequence tag %d is 0 or was used before", name, in.SeqTag)
	}
	r.tags[in.SeqTag] = true
	r.incs++
	st := newMstream(name, r.incs, in.SeqTag, h, n)
	ss, err := r.s.get("test", name)
	if err != nil {
		r.fatalf("get %s: %v", name, err)
	}
	r.s.metaMu.Lock()
	st.dir = r.s.fs.PathJoin(memDir, "streams", ss.meta.Dir)
	r.s.metaMu.Unlock()
	r.model[name] = st
	r.diff("the new stream "+name, st.layout(), infoLayout(in))
}

func (r *modelRun) restart() {
	r.stats.restarts++
	r.logf("restart")
	if err := r.s.Close(); err != nil {
		r.fatalf("close: %v", err)
	}
	r.s = nil
	r.open()
	r.checkOpened()
	// Counters a full disk refused at the end of a shard are handed out
	// again after a restart: they never held a record.
	for _, st := range r.model {
		if st == nil {
			continue
		}
		for _, sh := range st.openShards() {
			next, err := r.s.Seek(st.name, ShardID(sh.index), Latest, "", time.Time{})
			if err != nil || next < sh.vis+1 || next > sh.next {
				r.fatalf("%s/%d after a restart: LATEST is %d %v; the model says %d to %d", st.name, sh.index, next, err, sh.vis+1, sh.next)
			}
			sh.next = next
		}
	}
	r.fullCheck()
}

// learnNext learns the next counters of st's open shards after refused
// puts: at least the model's, and at most routed more.
func (r *modelRun) learnNext(st *mstream, routed map[*mshard]uint64) {
	ss, err := r.s.get("test", st.name)
	if err != nil {
		r.fatalf("get %s: %v", st.name, err)
	}
	for _, sh := range st.openShards() {
		ss.mu.RLock()
		x := ss.shards[sh.index]
		ss.mu.RUnlock()
		x.mu.Lock()
		next := x.mu.nextSeq
		x.mu.Unlock()
		if next < sh.next || next > sh.next+routed[sh] {
			r.fatalf("%s/%d after refused puts: next counter %d; the model says %d to %d", st.name, sh.index, next, sh.next, sh.next+routed[sh])
		}
		sh.next = next
	}
}

// diskFull makes the disk full for a few puts, which must be refused
// retryably and never show; their counters are not handed out again
// while the store runs. Once there is room, every shard takes puts again
// without a restart.
func (r *modelRun) diskFull(st *mstream) {
	r.inj.full.Store(true)
	routed := map[*mshard]uint64{}
	for range 1 + r.rng.IntN(3) {
		recs := r.newRecords(st, 1+r.rng.IntN(5))
		_, err := r.s.Put(context.Background(), st.name, recs)
		r.logf("put %s on a full disk: %d records: %v", st.name, len(recs), err)
		if !errors.Is(err, ErrUnavailable) || partlyStored(err) {
			r.inj.full.Store(false)
			r.fatalf("put %s on a full disk: %v; want ErrUnavailable", st.name, err)
		}
		for _, rec := range recs {
			routed[st.route(rec)]++
		}
	}
	r.inj.full.Store(false)
	// The refused records took counters (unless refused before taking
	// any, within the retry time): learn how many.
	r.learnNext(st, routed)
	if r.opts.DiskRetry >= time.Hour {
		// The shards that refused writes go on refusing at once for the
		// retry time, though the disk has room now: a put to every shard
		// is refused whole, storing nothing, taking no counter. A restart
		// ends the refusals.
		var recs []PutRecord
		for _, sh := range st.openShards() {
			rec := r.newRecords(st, 1)[0]
			rec.ExplicitHashKey = sh.rg.Start.String()
			recs = append(recs, rec)
		}
		_, err := r.s.Put(context.Background(), st.name, recs)
		r.logf("put %s to every shard, some refusing: %v", st.name, err)
		if !errors.Is(err, ErrUnavailable) || partlyStored(err) {
			r.fatalf("put %s to every shard, some refusing writes: %v; want ErrUnavailable", st.name, err)
		}
		r.learnNext(st, nil)
		r.restart()
		return
	}
	if r.rng.IntN(2) == 0 {
		return // the next puts let the shards try again
	}
	for _, sh := range st.openShards() {
		rec := r.newRecords(st, 1)
		rec[0].ExplicitHashKey = sh.rg.Start.String()
		for try := 0; ; try++ {
			res, err := r.s.Put(context.Background(), st.name, rec)
			if errors.Is(err, ErrUnavailable) && try < 1000 {
				continue // refused at once until the retry time passed
			}
			if err != nil || res[0].ShardIndex != sh.index || res[0].Seq != sh.next {
				r.fatalf("put to %s/%d with room again: %+v %v; the model says seq %d", st.name, sh.index, res, err, sh.next)
			}
			sh.add(mrec{Seq: sh.next, Arrival: r.clock.now().UnixMilli(), Key: rec[0].PartitionKey, Data: rec[0].Data})
			r.logf("put %s: 1 record → %d:%d", st.name, sh.index, res[0].Seq)
			break
		}
	}
}

// crash runs a random operation that writes, taking a crash image before
// a random one of its filesystem writes (or after the operation when it
// made fewer), with none or part of the unsynced data. The store then
// opens on that image: what the operation did is all there or not at all,
// except that a cut put's records each may or may not be there.
func (r *modelRun) crash() {
	cfg := r.crashCfg()
	k := 1 + r.rng.IntN(30)
	before := map[string]*mstream{}
	for n, st := range r.model {
		if st != nil {
			before[n] = st.clone()
		}
	}
	r.inj.arm(k, cfg)
	r.logf("crash before write %d from here, keeping %d%% of the unsynced data, during:", k, cfg.UnsyncedDataPercent)
	st := r.pickStream()
	switch p := r.rng.IntN(100); {
	case st == nil:
		r.create(r.names[r.rng.IntN(len(r.names))], true)
	case p < 45:
		r.put(st, true)
	case p < 55:
		r.split(st, true)
	case p < 63:
		r.merge(st, true)
	case p < 71:
		r.updateCount(st, true)
	case p < 78 && (st.name != r.names[0] || r.rng.IntN(4) == 0):
		r.remove(st, true)
	case p < 83:
		r.enforce(true)
	case p < 86:
		r.setRetention(st)
	case p < 89:
		r.logf("record durable positions")
		r.s.recordDurable()
	case p < 92:
		r.putConcurrent(st, true, nil)
	case p < 96:
		r.logf("close")
		if err := r.s.Close(); err != nil {
			r.fatalf("close: %v", err)
		}
	default:
		if absent := r.absentName(); absent != "" {
			r.create(absent, true)
		} else {
			r.put(st, true)
		}
	}
	clone := r.inj.crash()
	if err := r.s.Close(); err != nil {
		r.fatalf("close the crashed store: %v", err)
	}
	r.s = nil
	r.stats.crashes++
	if cfg.UnsyncedDataPercent > 0 {
		r.mayCorrupt = true
	}
	r.mem = clone
	if r.rng.IntN(4) == 0 {
		r.openCrashing()
	}
	r.open()
	r.checkOpened()
	r.reconcile(before)
	r.fullCheck()
}

// crashCfg keeps none of the unsynced data, or a random part of it.
func (r *modelRun) crashCfg() vfs.CrashCloneCfg {
	if r.rng.IntN(2) == 0 {
		return vfs.CrashCloneCfg{}
	}
	return vfs.CrashCloneCfg{UnsyncedDataPercent: 10 + r.rng.IntN(81), RNG: rand.New(rand.NewPCG(r.rng.Uint64(), 1))}
}

// openCrashing opens the store and crashes it before one of the writes
// recovery makes (or right after opening): the next open recovers again.
func (r *modelRun) openCrashing() {
	k, cfg := 1+r.rng.IntN(12), r.crashCfg()
	r.logf("open, crashing before write %d, keeping %d%% of the unsynced data", k, cfg.UnsyncedDataPercent)
	r.inj = &crashInjector{mem: r.mem}
	r.inj.arm(k, cfg)
	o := r.opts
	o.FS = errorfs.Wrap(r.mem, r.inj)
	s, err := Open(memDir, o)
	if err != nil {
		r.fatalf("open: %v", err)
	}
	clone := r.inj.crash()
	if err := s.Close(); err != nil {
		r.fatalf("close: %v", err)
	}
	if cfg.UnsyncedDataPercent > 0 {
		r.mayCorrupt = true
	}
	r.mem = clone
}

func (r *modelRun) absentName() string {
	for _, n := range r.names {
		if r.model[n] == nil {
			return n
		}
	}
	return ""
}
