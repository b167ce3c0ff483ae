package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

// seqBits is how many low bits of a seqCount result hold the record's
// sequence number; the bits above hold the operator's count.
const seqBits = 20

// reshardProgress is what the keyed tasks of one run report: each key's
// count as the operator holds it (restored or counted since).
type reshardProgress struct {
	mu    sync.Mutex
	count map[string]int64
	n     atomic.Int64 // records processed in this run
}

func newReshardProgress() *reshardProgress {
	return &reshardProgress{count: map[string]int64{}}
}

func (p *reshardProgress) set(key string, n int64) {
	p.mu.Lock()
	p.count[key] = n
	p.mu.Unlock()
}

// seqCount is a keyed, stateful operator over records {"k", "seq"} where
// seq numbers the records of a key from 1 in the order they were put. For
// each record it counts the key and emits count<<seqBits | seq as "sum":
// in an exactly-once run in per-key order, both halves of the i-th result
// of a key are i. A lost or repeated record, a record out of order and a
// count restored wrong all show.
type seqCount struct {
	counts map[string]int64
	dirty  map[string]bool
	sp     *state.Space
	prog   *reshardProgress
}

func (o *seqCount) Process(_ context.Context, in *operators.Batch, out operators.Emitter) error {
	for _, r := range in.Records {
		m := r.Value.(map[string]any)
		seq := int64(m["seq"].(float64))
		o.counts[r.Key]++
		o.dirty[r.Key] = true
		out.Emit(operators.Record{Key: r.Key, Value: map[string]any{"key": r.Key, "sum": o.counts[r.Key]<<seqBits | seq}})
		o.prog.set(r.Key, o.counts[r.Key])
	}
	o.prog.n.Add(int64(len(in.Records)))
	return nil
}

func (o *seqCount) Close() error { return nil }

func (o *seqCount) OpenState(sp *state.Space) error {
	o.sp = sp
	return sp.Scan(nil, func(k, v []byte) error {
		n := int64(binary.BigEndian.Uint64(v))
		o.counts[string(k)] = n
		o.prog.set(string(k), n)
		return nil
	})
}

func (o *seqCount) SnapshotState() error { return writeDirty(o.sp, o.counts, o.dirty) }

func seqGraph(src sources.Source, out *outside, prog *reshardProgress) *Graph {
	return &Graph{
		Name:    "seqs",
		Sources: []SourceNode{{ID: "in", Source: src}},
		Nodes: []Node{{ID: "count", Inputs: []string{"in"},
			New: func() (operators.Operator, error) {
				return &seqCount{counts: map[string]int64{}, dirty: map[string]bool{}, prog: prog}, nil
			},
			Key: keyByK}},
		Sinks: []SinkNode{{ID: "out", Inputs: []string{"count"}, Sink: &txSink{out: out}}},
	}
}

// reshardProducer puts records {"k", "seq"} (partition key k) into a
// stream, up to a quota the test raises, and reshards the stream at
// random between puts: splits (often right at a key's hash), merges of
// adjacent open shards and shard count updates.
type reshardProducer struct {
	store  *streams.Store
	stream string
	rng    *rand.Rand
	keys   []string

	mu       sync.Mutex
	cond     *sync.Cond
	quota    int
	put      int
	perKey   map[string]int64 // records put per key
	reshards []string         // what was done, for failure messages
	err      error
	done     bool
}

func newReshardProducer(store *streams.Store, stream string, rng *rand.Rand, keys int) *reshardProducer {
	p := &reshardProducer{store: store, stream: stream, rng: rng, perKey: map[string]int64{}}
	p.cond = sync.NewCond(&p.mu)
	for i := range keys {
		p.keys = append(p.keys, "key-"+strconv.Itoa(i))
	}
	return p
}

// allow lets the producer put n more records.
func (p *reshardProducer) allow(n int) {
	p.mu.Lock()
	p.quota += n
	p.mu.Unlock()
	p.cond.Broadcast()
}

func (p *reshardProducer) stop() {
	p.mu.Lock()
	p.done = true
	p.mu.Unlock()
	p.cond.Broadcast()
}

// idle waits until the producer put its whole quota (or failed).
func (p *reshardProducer) idle() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.put < p.quota && p.err == nil {
		p.cond.Wait()
	}
	return p.err
}

func (p *reshardProducer) run() {
	for {
		p.mu.Lock()
		for p.put >= p.quota && !p.done {
			p.cond.Wait()
		}
		if p.done {
			p.mu.Unlock()
			return
		}
		n := min(p.quota-p.put, 1+p.rng.IntN(24))
		recs := make([]streams.PutRecord, n)
		next := map[string]int64{}
		for i := range recs {
			k := p.keys[p.rng.IntN(len(p.keys))]
			next[k]++
			recs[i] = streams.PutRecord{PartitionKey: k,
				Data: fmt.Appendf(nil, `{"k":%q,"seq":%d}`, k, p.perKey[k]+next[k])}
		}
		reshard := p.rng.IntN(5) == 0
		p.mu.Unlock()

		_, err := p.store.Put(context.Background(), p.stream, recs)
		var what string
		if err == nil && reshard {
			what, err = p.reshard()
		}

		p.mu.Lock()
		if err != nil {
			p.err = err
		} else {
			for k, c := range next {
				p.perKey[k] += c
			}
			p.put += n
			if what != "" {
				p.reshards = append(p.reshards, what)
			}
		}
		p.mu.Unlock()
		p.cond.Broadcast()
		if err != nil {
			return
		}
	}
}

// reshard does one random reshard of the stream's open shards.
func (p *reshardProducer) reshard() (string, error) {
	info, err := p.store.DescribeStream(p.stream)
	if err != nil {
		return "", err
	}
	var open []streams.ShardInfo
	for _, s := range info.Shards {
		if s.Open {
			open = append(open, s)
		}
	}
	slices.SortFunc(open, func(a, b streams.ShardInfo) int { return a.Range.Start.Cmp(b.Range.Start) })
	switch op := p.rng.IntN(3); {
	case op == 0 && len(open) < 10:
		s := open[p.rng.IntN(len(open))]
		at := ""
		// Split right at one of the keys when one falls inside: that key
		// then starts the upper child.
		for _, k := range p.keys {
			h := streams.HashPartitionKey(k)
			if h.Cmp(s.Range.Start) > 0 && h.Cmp(s.Range.End) <= 0 && p.rng.IntN(2) == 0 {
				at = h.String()
				break
			}
		}
		if at == "" {
			at = s.Range.Mid().String()
		}
		if at == s.Range.Start.String() {
			return "", nil // a range of one key cannot split
		}
		return "split " + s.ID, p.store.SplitShard(p.stream, s.ID, at)
	case op == 1 && len(open) > 1:
		i := p.rng.IntN(len(open) - 1)
		return "merge " + open[i].ID + "+" + open[i+1].ID, p.store.MergeShards(p.stream, open[i].ID, open[i+1].ID)
	default:
		n := 1 + p.rng.IntN(8)
		return "count " + strconv.Itoa(n), p.store.UpdateShardCount(p.stream, n)
	}
}

// checkSeqs asserts the committed output of seqCount: per key, exactly
// one result per record put, the i-th result carrying count i (the state
// counted every record once, across restores) and every record's sequence
// number once, the i-th result of record i: the records reached the
// operator in the order they were put.
func checkSeqs(t *testing.T, out *outside, perKey map[string]int64) {
	t.Helper()
	got := map[string][]int64{}
	out.mu.Lock()
	for _, r := range out.rows {
		got[r["key"].(string)] = append(got[r["key"].(string)], r["sum"].(int64))
	}
	out.mu.Unlock()
	total, missing, extra, wrong, unordered := 0, 0, 0, 0, 0
	var examples []string
	note := func(s string) {
		if len(examples) < 6 {
			examples = append(examples, s)
		}
	}
	for k, n := range perKey {
		total += int(n)
		g := got[k]
		if int64(len(g)) != n {
			missing += max(0, int(n)-len(g))
			extra += max(0, len(g)-int(n))
			note(fmt.Sprintf("key %s: %d results, want %d", k, len(g), n))
		}
		seen := map[int64]bool{}
		inOrder := true
		for i, v := range g {
			count, seq := v>>seqBits, v&(1<<seqBits-1)
			if count != int64(i+1) || seq < 1 || seq > n || seen[seq] {
				wrong++
				note(fmt.Sprintf("key %s: result %d is count %d of record %d", k, i+1, count, seq))
				break
			}
			seen[seq] = true
			if seq != int64(i+1) && inOrder {
				inOrder = false
				unordered++
				note(fmt.Sprintf("key %s: result %d is of record %d", k, i+1, seq))
			}
		}
	}
	for k, g := range got {
		if _, ok := perKey[k]; !ok {
			extra += len(g)
			note("unknown key " + k)
		}
	}
	if missing+extra+wrong+unordered > 0 {
		t.Errorf("%d records put: %d results missing, %d extra, %d keys with a wrong count or a repeated record, %d keys out of order: %s",
			total, missing, extra, wrong, unordered, strings.Join(examples, "; "))
	}
}

// waitUntil polls cond until it holds, failing the test if the job ends
// first or nothing happens for 20 s.
func waitUntil(t *testing.T, j *Job, what string, cond func() bool) {
	t.Helper()
	held := testutil.Within(20*time.Second, func() bool {
		if cond() {
			return true
		}
		select {
		case <-j.Done():
			st := j.Status()
			t.Fatalf("waiting for %s: job ended: %s %s", what, st.State, st.Reason)
		default:
		}
		return false
	})
	if !held {
		var shards []string
		for _, sh := range j.Status().Shards {
			shards = append(shards, fmt.Sprintf("%s %s %s (%d)", sh.Shard, sh.State, sh.Position, sh.Records))
		}
		t.Fatalf("waiting for %s: timed out; shards: %s", what, strings.Join(shards, ", "))
	}
}

// failSteps are the checkpoint steps a round may fail at ("" for none).
var failSteps = []string{"", "", "", CheckpointAligned, state.StepBeforeSnapshot, state.StepAfterSnapshot,
	state.StepBeforeManifest, state.StepAfterManifest, state.StepBeforePrune, CheckpointBeforeCommit, CheckpointAfterCommit}

// TestCheckpointReshardExactlyOnce runs a keyed stateful job with a
// transactional sink over a real stream source while a producer puts
// records and splits, merges and re-counts the stream's shards, through
// rounds of: process some, checkpoint (sometimes; sometimes failing at a
// step), process more, crash (hard cancel, live state thrown away) and
// restore from the latest checkpoint — the reshards land before, between
// and during all of these. The committed output must hold every record's
// result exactly once, with the operator's restored count right, in
// per-key order.
func TestCheckpointReshardExactlyOnce(t *testing.T) {
	for _, seed := range testutil.Seeds(t, 10, 10) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { runReshardCrashes(t, seed) })
	}
}

// runReshardCrashes is one run of the reshard-and-crash scenario.
func runReshardCrashes(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 5))
	store := streamstest.Open(t, streams.Options{SyncInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}, "in", 1+rng.IntN(4))
	prod := newReshardProducer(store, "in", rand.New(rand.NewPCG(seed, 6)), 2+rng.IntN(30))
	go prod.run()
	defer prod.stop()

	out := &outside{commits: map[uint64]bool{}}
	dir := t.TempDir()
	var armed atomic.Value
	armed.Store("")
	fp := func(s string) error {
		if s == armed.Load().(string) {
			return errInjected
		}
		return nil
	}
	sopts := state.Options{Failpoint: fp, Retain: 1 + rng.IntN(3)}
	opts := Options{Parallelism: 1 + rng.IntN(3), BatchSize: 1 + rng.IntN(40), QueueDepth: 1 + rng.IntN(4), Failpoint: fp}
	rounds := 4 + rng.IntN(3)
	checkpoints, failed := 0, 0
	for round := 0; ; round++ {
		final := round == rounds
		o := opts
		db, snap := restoreIfAny(t, dir, sopts)
		if db == nil {
			// Nothing to restore: start from nothing. The live
			// store may hold what a failed first checkpoint wrote;
			// it is not trusted (see TestCrashBeforeFirstCheckpoint
			// in cmd/runnel for the server's case).
			dir = t.TempDir()
			var err error
			if db, err = state.Open(dir, sopts); err != nil {
				t.Fatal(err)
			}
		}
		o.State, o.Restore = db, snap
		src, err := sources.NewStream(sources.StreamConfig{Store: store, Stream: "in"})
		if err != nil {
			t.Fatal(err)
		}
		prog := newReshardProgress()
		ctx, cancel := context.WithCancel(context.Background())
		j, err := Start(ctx, seqGraph(src, out, prog), o)
		if err != nil {
			t.Fatal(err)
		}
		if final {
			// Everything put is read and counted, a last checkpoint
			// commits it, and the job stops.
			if err := prod.idle(); err != nil {
				t.Fatal(err)
			}
			prod.mu.Lock()
			want := maps.Clone(prod.perKey)
			prod.mu.Unlock()
			defer func() {
				if !t.Failed() {
					return
				}
				prog.mu.Lock()
				for k, n := range want {
					if prog.count[k] != n {
						t.Logf("key %s (hash %s): counted %d of %d", k, streams.HashPartitionKey(k), prog.count[k], n)
					}
				}
				prog.mu.Unlock()
				info, _ := store.DescribeStream("in")
				for _, s := range info.Shards {
					t.Logf("stream shard %s parents %q %q open %v range [%s, %s] last %d ending %d children %v",
						s.ID, s.Parent, s.AdjacentParent, s.Open, s.Range.Start, s.Range.End, s.LastSeq, s.EndingSeq, s.Children)
				}
				prod.mu.Lock()
				t.Logf("reshards: %s", strings.Join(prod.reshards, ", "))
				prod.mu.Unlock()
			}()
			waitUntil(t, j, "every record counted", func() bool {
				prog.mu.Lock()
				defer prog.mu.Unlock()
				for k, n := range want {
					if prog.count[k] != n {
						return false
					}
				}
				return true
			})
			if _, err := j.Checkpoint(ctx, CheckpointOptions{}); err != nil {
				t.Fatal(err)
			}
			cancel()
			j.Wait()
			db.Close()
			checkSeqs(t, out, want)
			prod.mu.Lock()
			t.Logf("%d records, %d keys, %d rounds, %d checkpoints (%d failed at a step), reshards: %s",
				prod.put, len(want), rounds, checkpoints, failed, strings.Join(prod.reshards, ", "))
			prod.mu.Unlock()
			return
		}
		chunk := 150 + rng.IntN(400)
		prod.allow(chunk)
		target := int64(0)
		for range 1 + rng.IntN(3) {
			// Records processed in this run: at least this round's
			// new ones get read, so the target is reached.
			target = min(int64(chunk), target+1+int64(rng.IntN(chunk/2)))
			waitUntil(t, j, "records processed", func() bool { return prog.n.Load() >= target })
			if rng.IntN(3) == 0 {
				continue
			}
			step := failSteps[rng.IntN(len(failSteps))]
			armed.Store(step)
			_, err := j.Checkpoint(ctx, CheckpointOptions{})
			armed.Store("")
			checkpoints++
			if step == "" {
				if err != nil {
					t.Fatal(err)
				}
				continue
			}
			if !errors.Is(err, errInjected) {
				t.Fatalf("checkpoint failing at %s: %v", step, err)
			}
			failed++
			break // crash right at the failed step
		}
		// Crash: cancel hard, and forget the live store.
		cancel()
		j.Wait()
		db.Close()
	}
}

// gatedSource holds the opening of one shard until gate closes and
// records which shards were opened while it was held.
type gatedSource struct {
	sources.Source
	shard string
	gate  chan struct{}

	mu              sync.Mutex
	openedMeanwhile []string
}

func (s *gatedSource) Open(ctx context.Context, sh sources.Shard, after string) (sources.Reader, error) {
	if sh.ID == s.shard {
		select {
		case <-s.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	} else {
		select {
		case <-s.gate:
		default:
			s.mu.Lock()
			s.openedMeanwhile = append(s.openedMeanwhile, sh.ID)
			s.mu.Unlock()
		}
	}
	return s.Source.Open(ctx, sh, after)
}

// TestReshardMergeChildWaitsForNewParent: a job reads a 2-shard stream,
// A and B, and is behind on A (its opening is held). A is split at key
// k's hash into A1 and A2 (k in A2), A2 is merged with B into M, and k's
// second record goes to M. When B ends, its child M must still wait for
// its other parent A2 — created after the job listed the shards, and
// known only once A ends — so that k's first record, in A, is read first.
func TestReshardMergeChildWaitsForNewParent(t *testing.T) {
	store, err := streams.Open(t.TempDir(), streams.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	info, err := store.CreateStream("in", 2, streams.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	a, b := info.Shards[0], info.Shards[1]
	key := ""
	for i := 0; key == ""; i++ {
		k := "k" + strconv.Itoa(i)
		if h := streams.HashPartitionKey(k); h.Cmp(a.Range.Start) > 0 && h.Cmp(a.Range.End) <= 0 {
			key = k
		}
	}
	put := func(seq int) {
		t.Helper()
		res, err := store.Put(context.Background(), "in", []streams.PutRecord{{PartitionKey: key, Data: fmt.Appendf(nil, `{"k":%q,"seq":%d}`, key, seq)}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("record %d of %s went to %s", seq, key, res[0].ShardID)
	}
	put(1)
	stream, err := sources.NewStream(sources.StreamConfig{Store: store, Stream: "in"})
	if err != nil {
		t.Fatal(err)
	}
	src := &gatedSource{Source: stream, shard: a.ID, gate: make(chan struct{})}
	out := &outside{commits: map[uint64]bool{}}
	prog := newReshardProgress()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	j, err := Start(ctx, seqGraph(src, out, prog), Options{Parallelism: 1, BatchSize: 8})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.SplitShard("in", a.ID, streams.HashPartitionKey(key).String()); err != nil {
		t.Fatal(err)
	}
	info, _ = store.DescribeStream("in")
	a2 := info.Shards[len(info.Shards)-1]
	if err := store.MergeShards("in", a2.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	info, _ = store.DescribeStream("in")
	m := info.Shards[len(info.Shards)-1]
	put(2)
	// B ends and names M as its child.
	waitUntil(t, j, "B to end and M to be known", func() bool {
		ended, known := false, false
		for _, sh := range j.Status().Shards {
			ended = ended || sh.Shard == b.ID && sh.State == ShardEnded
			known = known || sh.Shard == m.ID
		}
		return ended && known
	})
	// M would start right after: give it the chance before A is let go.
	// (On a slow machine the bug may go unseen; correct code passes
	// whatever the timing.)
	testutil.Within(500*time.Millisecond, func() bool {
		src.mu.Lock()
		defer src.mu.Unlock()
		return slices.Contains(src.openedMeanwhile, m.ID)
	})
	close(src.gate)
	waitUntil(t, j, "both records counted", func() bool {
		prog.mu.Lock()
		defer prog.mu.Unlock()
		return prog.count[key] == 2
	})
	src.mu.Lock()
	t.Logf("opened while %s was held: %v (M is %s)", a.ID, src.openedMeanwhile, m.ID)
	if slices.Contains(src.openedMeanwhile, m.ID) {
		t.Errorf("merge child %s was opened before its parent %s's lineage (%s, %s) was read", m.ID, a2.ID, a.ID, a2.ID)
	}
	src.mu.Unlock()
	cancel()
	j.Wait()
	checkSeqs(t, out, map[string]int64{key: 2})
}

// TestCheckpointBeforeFirstRecordLatest: a stream source that starts at
// LATEST, checkpointed before its shard read anything, crashes; records
// put meanwhile must be read after the restore, not skipped by opening at
// LATEST again.
func TestCheckpointBeforeFirstRecordLatest(t *testing.T) {
	store := streamstest.Open(t, streams.Options{}, "in", 1)
	put := func(from, to int) {
		var recs []streams.PutRecord
		for i := from; i < to; i++ {
			recs = append(recs, streams.PutRecord{PartitionKey: "k", Data: fmt.Appendf(nil, `{"k":"k","seq":%d}`, i)})
		}
		if _, err := store.Put(context.Background(), "in", recs); err != nil {
			t.Fatal(err)
		}
	}
	put(0, 5) // before the job: LATEST skips these
	dir := t.TempDir()
	out := &outside{commits: map[uint64]bool{}}
	prog := newReshardProgress()
	src, err := sources.NewStream(sources.StreamConfig{Store: store, Stream: "in", Start: sources.StartLatest})
	if err != nil {
		t.Fatal(err)
	}
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	j, err := Start(ctx, seqGraph(src, out, prog), Options{State: db})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Within(10*time.Second, func() bool { return j.Positions()["in/"+streams.ShardID(0)] != "" })
	if _, err := j.Checkpoint(ctx, CheckpointOptions{}); err != nil {
		t.Fatal(err)
	}
	cancel() // crash before any record was read
	j.Wait()
	db.Close()
	put(5, 15) // while the job is down

	db, snap := restoreLatest(t, dir)
	src, err = sources.NewStream(sources.StreamConfig{Store: store, Stream: "in", Start: sources.StartLatest})
	if err != nil {
		t.Fatal(err)
	}
	j, err = Start(context.Background(), seqGraph(src, out, prog), Options{State: db, Restore: snap})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		j.Stop(ctx)
	}()
	testutil.Within(10*time.Second, func() bool { return prog.n.Load() >= 10 })
	if got := prog.n.Load(); got != 10 {
		t.Fatalf("after the restore the job read %d records, want the 10 put while it was down", got)
	}
}
