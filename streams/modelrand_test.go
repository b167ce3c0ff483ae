package streams

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/internal/testutil/faultfs"
)

var modelOps = flag.Int("model.ops", 0, "operations of each TestModelRandomOps run (0: 250, 100 with -short)")

// TestModelRandomOps runs random operations — puts (sequential, concurrent,
// during a reshard, on a full disk), reads, seeks of every iterator type,
// waits, splits, merges, shard-count updates, retention runs as the clock
// moves, deletes and re-creates, clean restarts and crashes in the middle
// of an operation or of recovery (keeping none or part of the unsynced
// data) — against the store and a model of what it promised. After every operation each stream's
// description is compared with the model, and every read and seek with
// what the model says it must return. What the model holds the log to:
// an acknowledged put is readable after any crash, at its shard and
// position, with its data; records are never reordered, duplicated,
// resurrected after a delete, or readable once a trim passed them, and
// they are trimmed only as retention allows; a crash loses only
// unacknowledged puts; a reshard or delete cut by a crash is whole or
// absent; a re-created stream has a new sequence tag, its counters start
// again and the old sequence numbers are refused.
//
// A failure prints the seed (rerun with -seed), the operations so far and
// a diff; -model.ops makes the runs longer. A rerun replays the same
// operations up to the first place where goroutines raced (concurrent
// puts, the retry time of a full disk): from there the store's answers,
// and so the operations, can differ, and the model checks each.
func TestModelRandomOps(t *testing.T) {
	checkGoroutines(t)
	ops := 250
	if testing.Short() {
		ops = 100
	}
	if *modelOps > 0 {
		ops = *modelOps
	}
	for _, seed := range testutil.Seeds(t, 3, 1) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			r := newModelRun(t, seed)
			defer r.close()
			for range ops {
				r.step()
			}
			r.fullCheck()
			t.Logf("seed %d: %d ops (%d puts of %d records, %d reads, %d reshards, %d retention runs trimming %d times and %d closed shards whole, %d deletes), %d restarts, %d crashes",
				seed, ops, r.stats.puts, r.stats.records, r.stats.reads, r.stats.reshards, r.stats.retention, r.stats.trims, r.stats.expired, r.stats.deletes, r.stats.restarts, r.stats.crashes)
		})
	}
}

// mclock is the store's clock, moved by the test.
type mclock struct{ ns atomic.Int64 }

func (c *mclock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *mclock) add(d time.Duration) { c.ns.Add(int64(d)) }

// crashInjector takes a crash clone of a crashable MemFS just before the
// armed number of mutating filesystem operations has passed.
type crashInjector struct {
	// full makes writes fail with ENOSPC.
	full  atomic.Bool
	mem   *vfs.MemFS
	mu    sync.Mutex
	left  int
	cfg   vfs.CrashCloneCfg
	clone *vfs.MemFS
}

func (c *crashInjector) MaybeError(op errorfs.Op) error {
	if op.Kind.ReadOrWrite() != errorfs.OpIsWrite {
		return nil
	}
	if c.full.Load() && faultfs.FillsDisk(op) {
		return syscall.ENOSPC
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.left > 0 {
		c.left--
		if c.left == 0 {
			c.clone = c.mem.CrashClone(c.cfg)
		}
	}
	return nil
}

func (c *crashInjector) String() string { return "crash injector" }

// arm makes the clone before the k-th write from now.
func (c *crashInjector) arm(k int, cfg vfs.CrashCloneCfg) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.left, c.cfg, c.clone = k, cfg, nil
}

// crash returns the clone taken, or one taken now when the operation made
// fewer writes.
func (c *crashInjector) crash() *vfs.MemFS {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.clone == nil {
		c.clone = c.mem.CrashClone(c.cfg)
	}
	c.left = 0
	return c.clone
}

// crashReached is crash, also reporting whether the armed write was
// reached: whether the operation made that many writes.
func (c *crashInjector) crashReached() (*vfs.MemFS, bool) {
	c.mu.Lock()
	reached := c.left == 0
	c.mu.Unlock()
	return c.crash(), reached
}

type oldSeq struct {
	tag uint64
	seq string
}

type modelRun struct {
	t     *testing.T
	seed  uint64
	rng   *rand.Rand
	clock *mclock
	mem   *vfs.MemFS
	inj   *crashInjector
	opts  Options
	s     *Store
	names []string
	model map[string]*mstream // nil: the stream does not exist
	// old are sequence numbers of deleted incarnations.
	old []oldSeq
	// tags are the sequence tags every incarnation had.
	tags map[uint64]bool
	log  []string
	incs int
	data int
	// mayCorrupt: a crash kept part of the unsynced data, so damaged
	// regions may be reported from then on.
	mayCorrupt bool
	stats      struct {
		puts, records, reads, reshards, retention, trims, expired, deletes, restarts, crashes int
	}
}

func newModelRun(t *testing.T, seed uint64) *modelRun {
	r := &modelRun{t: t, seed: seed, rng: rand.New(rand.NewPCG(seed, 0x5eed)), clock: &mclock{},
		names: []string{"a", "b.x"}, model: map[string]*mstream{}, tags: map[uint64]bool{}}
	r.clock.ns.Store(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC).UnixNano())
	pick := func(xs ...int64) int64 { return xs[r.rng.IntN(len(xs))] }
	r.opts = Options{
		Now: r.clock.now, Logger: quietLogger(),
		SegmentBytes:    pick(300, 1500, 64<<20),
		SegmentAge:      time.Duration(pick(10, 60, 240)) * time.Minute,
		PrefillBytes:    pick(0, -1),
		MaxOpenFiles:    int(pick(0, 3)),
		DiskRetry:       time.Duration(pick(1, int64(time.Hour))),
		RetentionCheck:  1000 * time.Hour, // the test runs retention itself
		DurableInterval: 1000 * time.Hour, // and records durable positions itself
	}
	r.logf("options: segment bytes %d, segment age %s, prefill %d, max open files %d, disk retry %s",
		r.opts.SegmentBytes, r.opts.SegmentAge, r.opts.PrefillBytes, r.opts.MaxOpenFiles, r.opts.DiskRetry)
	r.mem = vfs.NewCrashableMem()
	r.open()
	for _, n := range r.names {
		r.create(n, false)
	}
	return r
}

func (r *modelRun) open() {
	r.inj = &crashInjector{mem: r.mem}
	o := r.opts
	o.FS = errorfs.Wrap(r.mem, r.inj)
	s, err := Open(memDir, o)
	if err != nil {
		r.fatalf("open: %v", err)
	}
	r.s = s
}

func (r *modelRun) close() {
	if r.s != nil {
		r.s.Close()
	}
}

func (r *modelRun) logf(format string, args ...any) {
	r.log = append(r.log, fmt.Sprintf("%4d  ", len(r.log))+fmt.Sprintf(format, args...))
}

// fatalf fails the run, printing the operations that led there.
func (r *modelRun) fatalf(format string, args ...any) {
	r.t.Helper()
	log := r.log
	if len(log) > 150 {
		log = log[len(log)-150:]
	}
	r.t.Fatalf("%s\n\nseed %d (rerun: go test ./streams/ -run 'TestModelRandomOps/seed=%d$' -seed=%d); operations, the last %d of %d:\n%s",
		fmt.Sprintf(format, args...), r.seed, r.seed, r.seed, len(log), len(r.log), strings.Join(log, "\n"))
}

// diff fails with a diff from want to got when they differ.
func (r *modelRun) diff(what string, want, got []string) {
	r.t.Helper()
	if d := testutil.Diff(want, got); d != "" {
		r.fatalf("%s differs from the model:\n%s", what, d)
	}
}

// pickStream is a random existing stream, or nil.
func (r *modelRun) pickStream() *mstream {
	var sts []*mstream
	for _, n := range r.names {
		if st := r.model[n]; st != nil {
			sts = append(sts, st)
		}
	}
	if len(sts) == 0 {
		return nil
	}
	return sts[r.rng.IntN(len(sts))]
}

// step runs one random operation and checks every stream's description.
func (r *modelRun) step() {
	st := r.pickStream()
	if absent := r.absentName(); st == nil || (absent != "" && r.rng.IntN(10) == 0) {
		r.probeMissing(absent)
		r.create(absent, false)
		r.checkAll()
		return
	}
	switch p := r.rng.IntN(100); {
	case p < 26:
		r.put(st, false)
	case p < 28:
		r.putConcurrent(st, false, nil)
	case p < 29:
		r.diskFull(st)
	case p < 30:
		r.putConcurrent(st, false, func(st *mstream) {
			[]func(*mstream, bool){r.split, r.merge, r.updateCount}[r.rng.IntN(3)](st, false)
		})
	case p < 42:
		r.read(st)
	case p < 52:
		r.seekRead(st)
	case p < 55:
		r.waitProbe(st)
	case p < 57:
		r.waitWake(st)
	case p < 67:
		r.advance()
	case p < 72:
		r.enforce(false)
	case p < 73:
		r.setRetention(st)
	case p < 77:
		r.split(st, false)
	case p < 80:
		r.merge(st, false)
	case p < 83:
		r.updateCount(st, false)
	case p < 85:
		if st.name == r.names[0] && r.rng.IntN(4) > 0 {
			// The first stream lives long enough for retention to trim.
			r.read(st)
			break
		}
		r.remove(st, false)
		if r.rng.IntN(2) == 0 {
			r.create(st.name, false)
		}
	case p < 87:
		r.logf("record durable positions")
		r.s.recordDurable()
	case p < 90:
		r.restart()
	default:
		r.crash()
		return
	}
	r.checkAll()
}

func (r *modelRun) advance() {
	d := time.Duration(1+r.rng.IntN(5)) * time.Millisecond
	if r.rng.IntN(4) > 0 {
		d = time.Duration(1+r.rng.IntN(600)) * time.Minute
	}
	r.clock.add(d)
	r.logf("clock +%s = %s", d, r.clock.now().Format(time.RFC3339Nano))
}

// newRecords makes n records for st: random keys, sometimes explicit hash
// keys (random, or a boundary of an open shard), data unique in the run
// and naming the incarnation.
func (r *modelRun) newRecords(st *mstream, n int) []PutRecord {
	recs := make([]PutRecord, n)
	for i := range recs {
		key := make([]byte, 1+r.rng.IntN(8))
		for j := range key {
			key[j] = byte('a' + r.rng.IntN(26))
		}
		rec := PutRecord{PartitionKey: string(key)}
		switch r.rng.IntN(8) {
		case 0:
			rec.ExplicitHashKey = HashKey{r.rng.Uint64(), r.rng.Uint64()}.String()
		case 1:
			open := st.openShards()
			sh := open[r.rng.IntN(len(open))]
			rec.ExplicitHashKey = []HashKey{sh.rg.Start, sh.rg.End}[r.rng.IntN(2)].String()
		}
		r.data++
		size := r.rng.IntN(120)
		if r.rng.IntN(20) == 0 {
			size = 500 + r.rng.IntN(1500)
		}
		d := fmt.Appendf(nil, "%s#%d#%d|", st.name, st.inc, r.data)
		for len(d) < size {
			d = append(d, byte('a'+r.rng.IntN(26)))
		}
		rec.Data = d
		recs[i] = rec
	}
	return recs
}

// put puts a batch and checks where each record went; cut marks the
// records as a crash's to keep or lose.
func (r *modelRun) put(st *mstream, cut bool) {
	recs := r.newRecords(st, 1+r.rng.IntN(12))
	res, err := r.s.Put(context.Background(), st.name, recs)
	if err != nil {
		r.fatalf("put %d records to %s: %v", len(recs), st.name, err)
	}
	r.stats.puts++
	r.stats.records += len(recs)
	arrival := r.clock.now().UnixMilli()
	var where []string
	for i, rec := range recs {
		sh := st.route(rec)
		if res[i].ShardIndex != sh.index || res[i].ShardID != ShardID(sh.index) || res[i].Seq != sh.next || res[i].Tag != st.tag {
			r.fatalf("put to %s: record %d went to %s seq %d tag %d; the model says shard %d seq %d tag %d",
				st.name, i, res[i].ShardID, res[i].Seq, res[i].Tag, sh.index, sh.next, st.tag)
		}
		sh.add(mrec{Seq: sh.next, Arrival: arrival, Key: rec.PartitionKey, Data: rec.Data, maybe: cut})
		where = append(where, fmt.Sprintf("%d:%d", sh.index, res[i].Seq))
	}
	r.logf("put %s: %d records → %s", st.name, len(recs), strings.Join(where, " "))
}

// putConcurrent runs a few puts at once, and during them reshards when
// during is set: together they must take the next counters of each shard,
// each put's records in its order, and each put must be routed whole by
// the shards open before the reshard or by those after it.
func (r *modelRun) putConcurrent(st *mstream, cut bool, during func(*mstream)) {
	pre := st.clone()
	batches := make([][]PutRecord, 2+r.rng.IntN(4))
	for i := range batches {
		batches[i] = r.newRecords(st, 1+r.rng.IntN(6))
	}
	results := make([][]PutResult, len(batches))
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for i := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = r.s.Put(context.Background(), st.name, batches[i])
		}()
	}
	if during != nil {
		during(st)
	}
	wg.Wait()
	arrival := r.clock.now().UnixMilli()
	got := map[*mshard][]mrec{}
	for i, recs := range batches {
		if errs[i] != nil {
			r.fatalf("concurrent put to %s: %v", st.name, errs[i])
		}
		r.stats.puts++
		r.stats.records += len(recs)
		last := map[*mshard]uint64{}
		by := pre
		for j, rec := range recs {
			if during != nil && pre.route(rec).index != results[i][j].ShardIndex {
				by = st
			}
		}
		for j, rec := range recs {
			sh, res := st.shards[by.route(rec).index], results[i][j]
			if res.ShardIndex != sh.index || res.Tag != st.tag || res.Seq <= last[sh] {
				r.fatalf("concurrent put to %s: record %d of put %d went to %s seq %d tag %d; the model says shard %d after seq %d, tag %d",
					st.name, j, i, res.ShardID, res.Seq, res.Tag, sh.index, last[sh], st.tag)
			}
			last[sh] = res.Seq
			got[sh] = append(got[sh], mrec{Seq: res.Seq, Arrival: arrival, Key: rec.PartitionKey, Data: rec.Data})
		}
	}
	var where []string
	for _, sh := range st.shards {
		recs := got[sh]
		if len(recs) == 0 {
			continue
		}
		slices.SortFunc(recs, func(a, b mrec) int { return int(a.Seq) - int(b.Seq) })
		for k, rec := range recs {
			if rec.Seq != sh.next+uint64(k) {
				r.fatalf("concurrent puts to %s shard %d took counters %v; the model says %d to %d", st.name, sh.index, recLines(recs), sh.next, sh.next+uint64(len(recs))-1)
			}
		}
		for k := range recs {
			recs[k].maybe = cut
		}
		for _, rec := range recs {
			sh.add(rec)
		}
		if !sh.open {
			// Closed by the reshard after these records.
			sh.ending = sh.next - 1
		}
		where = append(where, fmt.Sprintf("%d:%d-%d", sh.index, recs[0].Seq, sh.next-1))
	}
	r.logf("%d concurrent puts %s → %s", len(batches), st.name, strings.Join(where, " "))
}

func (r *modelRun) pickShard(st *mstream) *mshard { return st.shards[r.rng.IntN(len(st.shards))] }

// read reads a random shard from a random position with random limits.
func (r *modelRun) read(st *mstream) {
	sh := r.pickShard(st)
	var from uint64
	switch r.rng.IntN(4) {
	case 0:
	case 1:
		from = sh.trim
	case 2:
		from = sh.next
	default:
		from = max(sh.trim, 3) - 2 + uint64(r.rng.IntN(int(sh.next-sh.trim)+5))
	}
	r.checkRead(st, sh, from, "")
}

// checkRead reads sh from from, with random limits, and compares the
// answer with the model's.
func (r *modelRun) checkRead(st *mstream, sh *mshard, from uint64, how string) {
	r.t.Helper()
	limit := 0
	if r.rng.IntN(4) > 0 {
		limit = 1 + r.rng.IntN(25)
	}
	maxBytes := 0
	if r.rng.IntN(3) == 0 {
		maxBytes = 1 + r.rng.IntN(1500)
	}
	r.stats.reads++
	id := ShardID(sh.index)
	got, err := r.s.Read(st.name, id, from, limit, maxBytes)
	r.logf("read %s/%d from %d%s limit %d bytes %d: %d records, next %d", st.name, sh.index, from, how, limit, maxBytes, len(got.Records), got.Next)
	if err != nil {
		r.fatalf("read %s/%s: %v", st.name, id, err)
	}
	want, next := sh.read(from, limit, maxBytes)
	r.diff(fmt.Sprintf("read of %s/%s from %d limit %d bytes %d", st.name, id, from, limit, maxBytes), recLines(want), recLines(got.Records))
	end := !sh.open && next > sh.vis && next > sh.next-1
	var children []string
	if end {
		children = st.children(id)
	}
	if got.Next != next || got.Tag != st.tag || got.EndOfShard != end || !slices.Equal(got.Children, children) || got.MillisBehind != sh.behind(want, next) {
		r.fatalf("read of %s/%s from %d: next %d tag %d end of shard %v children %v behind %d; the model says next %d tag %d end of shard %v children %v behind %d",
			st.name, id, from, got.Next, got.Tag, got.EndOfShard, got.Children, got.MillisBehind, next, st.tag, end, children, sh.behind(want, next))
	}
}

// seekRead resolves an iterator of a random type and reads from it.
func (r *modelRun) seekRead(st *mstream) {
	sh := r.pickShard(st)
	id := ShardID(sh.index)
	it := []IteratorType{TrimHorizon, Latest, AtSequenceNumber, AfterSequenceNumber, AtTimestamp}[r.rng.IntN(5)]
	var seq string
	var ts time.Time
	var want uint64
	var wantErr error
	switch it {
	case TrimHorizon:
		want = sh.trim
	case Latest:
		want = sh.vis + 1
	case AtSequenceNumber, AfterSequenceNumber:
		ctr := uint64(r.rng.IntN(int(sh.next) + 3))
		if k := sh.kept(); len(k) > 0 && r.rng.IntN(2) == 0 {
			ctr = k[r.rng.IntN(len(k))].Seq
		}
		seq = FormatSeq(st.tag, sh.index, ctr)
		if it == AfterSequenceNumber {
			ctr++
		}
		want = max(ctr, sh.trim)
		switch p := r.rng.IntN(10); {
		case p == 0 && len(r.old) > 0:
			seq, wantErr = r.old[r.rng.IntN(len(r.old))].seq, ErrSeqNotFromStream
		case p == 1 && len(st.shards) > 1:
			other := (sh.index + 1 + r.rng.IntN(len(st.shards)-1)) % len(st.shards)
			seq, wantErr = FormatSeq(st.tag, other, ctr), ErrInvalid
		case p == 2:
			seq, wantErr = FormatSeq(st.tag+1, sh.index, ctr), ErrSeqNotFromStream
		}
	case AtTimestamp:
		ts = r.clock.now().Add(-time.Duration(r.rng.IntN(48*60)) * time.Minute)
		if k := sh.kept(); len(k) > 0 && r.rng.IntN(2) == 0 {
			ts = time.UnixMilli(k[r.rng.IntN(len(k))].Arrival + int64(r.rng.IntN(3)) - 1)
		}
		want = sh.atTime(ts.UnixMilli())
	}
	pos, err := r.s.Seek(st.name, id, it, seq, ts)
	r.logf("seek %s/%d %s %s %v: %d %v", st.name, sh.index, it, seq, ts.UnixMilli(), pos, err)
	switch {
	case wantErr != nil:
		if !errors.Is(err, wantErr) || (wantErr == ErrInvalid && errors.Is(err, ErrSeqNotFromStream)) {
			r.fatalf("seek %s/%s %s %s: %v; want %v", st.name, id, it, seq, err, wantErr)
		}
		return
	case err != nil:
		r.fatalf("seek %s/%s %s %s: %v", st.name, id, it, seq, err)
	case pos != want:
		r.fatalf("seek %s/%s %s %s %d: position %d; the model says %d", st.name, id, it, seq, ts.UnixMilli(), pos, want)
	}
	r.checkRead(st, sh, pos, " ("+string(it)+")")
}

// waitProbe calls Wait with an ended context: it must return at once,
// nil when a record at or after the position is durable or the shard is
// closed, the context's error otherwise.
func (r *modelRun) waitProbe(st *mstream) {
	sh := r.pickShard(st)
	from := uint64(r.rng.IntN(int(sh.next) + 2))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := r.s.Wait(ctx, st.name, ShardID(sh.index), from)
	r.logf("wait %s/%d from %d: %v", st.name, sh.index, from, err)
	var want error
	if from > sh.vis && (sh.open || sh.vis+1 < sh.next) {
		want = context.Canceled
	}
	if !errors.Is(err, want) || (want == nil && err != nil) {
		r.fatalf("wait on %s/%d from %d (next %d, open %v): %v; want %v", st.name, sh.index, from, sh.next, sh.open, err, want)
	}
}

// waitWake waits for the next record of an open shard while a put
// routed there, or a split closing it, happens: Wait must return nil.
func (r *modelRun) waitWake(st *mstream) {
	open := st.openShards()
	sh := open[r.rng.IntN(len(open))]
	from := sh.next
	done := make(chan error, 1)
	go func() { done <- r.s.Wait(context.Background(), st.name, ShardID(sh.index), from) }()
	r.logf("wait %s/%d from %d in the background", st.name, sh.index, from)
	if len(open) < 8 && sh.rg.Start != sh.rg.End && r.rng.IntN(3) == 0 {
		r.splitAt(st, sh, sh.rg.Mid(), false)
	} else {
		rec := r.newRecords(st, 1)
		rec[0].ExplicitHashKey = sh.rg.Start.String()
		res, err := r.s.Put(context.Background(), st.name, rec)
		if err != nil || res[0].ShardIndex != sh.index || res[0].Seq != sh.next {
			r.fatalf("put to %s/%d: %+v %v; the model says seq %d", st.name, sh.index, res, err, sh.next)
		}
		sh.add(mrec{Seq: sh.next, Arrival: r.clock.now().UnixMilli(), Key: rec[0].PartitionKey, Data: rec[0].Data})
		r.logf("put %s: 1 record → %d:%d", st.name, sh.index, res[0].Seq)
	}
	if err := <-done; err != nil {
		r.fatalf("wait on %s/%d from %d: %v", st.name, sh.index, from, err)
	}
}
