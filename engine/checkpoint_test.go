package engine

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/state"
)

// feedSource is an unbounded source whose shards hand out records as the
// test makes them available, and end once the test ends them; a new
// instance over the same feed resumes after a position like a stream.
type feedSource struct{ f *feed }

type feed struct {
	mu     sync.Mutex
	cond   *sync.Cond
	shards map[string][]any
	avail  map[string]int
	ended  bool
}

func newFeed(shards map[string][]any) *feed {
	f := &feed{shards: shards, avail: map[string]int{}}
	f.cond = sync.NewCond(&f.mu)
	return f
}

// release makes the first n records of every shard readable.
func (f *feed) release(n int) {
	f.mu.Lock()
	for id, recs := range f.shards {
		f.avail[id] = min(len(recs), max(f.avail[id], n))
	}
	f.mu.Unlock()
	f.cond.Broadcast()
}

func (f *feed) end() {
	f.mu.Lock()
	f.ended = true
	for id, recs := range f.shards {
		f.avail[id] = len(recs)
	}
	f.mu.Unlock()
	f.cond.Broadcast()
}

func (s feedSource) Shards(context.Context) ([]sources.Shard, error) {
	var out []sources.Shard
	for id := range s.f.shards {
		out = append(out, sources.Shard{ID: id})
	}
	slices.SortFunc(out, func(a, b sources.Shard) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

func (s feedSource) Open(_ context.Context, sh sources.Shard, after string) (sources.Reader, error) {
	next := 0
	if after != "" {
		n, err := strconv.Atoi(after)
		if err != nil {
			return nil, err
		}
		next = n + 1
	}
	return &feedReader{f: s.f, shard: sh.ID, next: next}, nil
}

type feedReader struct {
	f     *feed
	shard string
	next  int
}

func (r *feedReader) Read(ctx context.Context, buf []sources.Record) (int, error) {
	f := r.f
	stop := context.AfterFunc(ctx, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.cond.Broadcast()
	})
	defer stop()
	f.mu.Lock()
	defer f.mu.Unlock()
	for r.next >= f.avail[r.shard] {
		if f.ended {
			return 0, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		f.cond.Wait()
	}
	n := 0
	recs := f.shards[r.shard]
	for n < len(buf) && r.next < f.avail[r.shard] {
		buf[n] = sources.Record{Value: recs[r.next], Position: strconv.Itoa(r.next), Arrival: int64(r.next)}
		n++
		r.next++
	}
	return n, nil
}

func (r *feedReader) Children() []sources.Shard { return nil }
func (r *feedReader) Close() error              { return nil }

// runningSum is a keyed, stateful operator: for every record it emits
// {key, sum} with the key's running sum of "v", so a result that is lost
// or repeated shows as a gap or a repeat in the key's sequence.
type runningSum struct {
	sums  map[string]int64
	dirty map[string]bool
	sp    *state.Space
}

func (o *runningSum) Process(_ context.Context, in *operators.Batch, out operators.Emitter) error {
	for _, r := range in.Records {
		o.sums[r.Key] += r.Value.(map[string]any)["v"].(int64)
		o.dirty[r.Key] = true
		out.Emit(operators.Record{Key: r.Key, Value: map[string]any{"key": r.Key, "sum": o.sums[r.Key]}})
	}
	return nil
}

func (o *runningSum) Close() error { return nil }

func (o *runningSum) OpenState(sp *state.Space) error {
	o.sp = sp
	return sp.Scan(nil, func(k, v []byte) error {
		o.sums[string(k)] = int64(binary.BigEndian.Uint64(v))
		return nil
	})
}

func (o *runningSum) SnapshotState() error { return writeDirty(o.sp, o.sums, o.dirty) }

// writeDirty writes the changed keys' values of a test operator's counters
// to its state space, and forgets that they changed.
func writeDirty(sp *state.Space, vals map[string]int64, dirty map[string]bool) error {
	b := sp.NewBatch()
	for k := range dirty {
		b.Set([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(vals[k])))
	}
	clear(dirty)
	return b.Commit()
}

// outside is the "external system" a transactional sink commits to; it
// outlives crashes of the job.
type outside struct {
	mu      sync.Mutex
	rows    []map[string]any
	commits map[uint64]bool // epochs whose rows are in rows
}

// txSink stages rows in its space per epoch and appends them to outside
// at Commit; an epoch already in outside is not appended again.
type txSink struct {
	out     *outside
	sp      *state.Space
	pending []map[string]any
	seq     int
}

func (s *txSink) Write(_ context.Context, rows []sinks.Row) error {
	for _, r := range rows {
		s.pending = append(s.pending, r.Value.(map[string]any))
	}
	if s.sp == nil { // no checkpoints: write through
		s.out.mu.Lock()
		s.out.rows = append(s.out.rows, s.pending...)
		s.out.mu.Unlock()
		s.pending = nil
	}
	return nil
}

func (s *txSink) Close() error { return nil }

func stageKey(epoch uint64, i int) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, epoch), uint32(i))
}

func (s *txSink) OpenState(ctx context.Context, sp *state.Space) error {
	s.sp = sp
	return s.Commit(ctx, ^uint64(0))
}

func (s *txSink) PreCommit(_ context.Context, epoch uint64) error {
	b := s.sp.NewBatch()
	for i, r := range s.pending {
		b.Set(stageKey(epoch, i), []byte(fmt.Sprintf("%s=%d", r["key"], r["sum"])))
	}
	s.pending = nil
	return b.Commit()
}

func (s *txSink) Commit(_ context.Context, epoch uint64) error {
	type staged struct {
		epoch uint64
		row   map[string]any
	}
	var rows []staged
	var keys [][]byte
	err := s.sp.ScanRange(nil, binary.BigEndian.AppendUint64(nil, epoch+1), func(k, v []byte) error {
		if epoch != ^uint64(0) && binary.BigEndian.Uint64(k) > epoch {
			return nil
		}
		var key string
		var sum int64
		for i := len(v) - 1; i >= 0; i-- {
			if v[i] == '=' {
				key = string(v[:i])
				sum, _ = strconv.ParseInt(string(v[i+1:]), 10, 64)
				break
			}
		}
		rows = append(rows, staged{binary.BigEndian.Uint64(k), map[string]any{"key": key, "sum": sum}})
		keys = append(keys, slices.Clone(k))
		return nil
	})
	if err != nil {
		return err
	}
	s.out.mu.Lock()
	for _, r := range rows {
		if !s.out.commits[r.epoch] {
			s.out.rows = append(s.out.rows, r.row)
		}
	}
	for _, r := range rows {
		s.out.commits[r.epoch] = true
	}
	s.out.mu.Unlock()
	b := s.sp.NewBatch()
	for _, k := range keys {
		b.Delete(k)
	}
	return b.Commit()
}

func sumGraph(f *feed, out *outside) *Graph {
	return &Graph{
		Name:    "sums",
		Sources: []SourceNode{{ID: "in", Source: feedSource{f}}},
		Nodes: []Node{{ID: "sum", Inputs: []string{"in"},
			New: func() (operators.Operator, error) {
				return &runningSum{sums: map[string]int64{}, dirty: map[string]bool{}}, nil
			},
			Key: keyByK}},
		Sinks: []SinkNode{{ID: "out", Inputs: []string{"sum"}, Sink: &txSink{out: out}}},
	}
}

// keyByK keys each record by its field k.
func keyByK() (KeyFunc, error) {
	return func(_ context.Context, recs []operators.Record) error {
		for i := range recs {
			recs[i].Key = recs[i].Value.(map[string]any)["k"].(string)
		}
		return nil
	}, nil
}

// checkSums asserts each key's committed running sums: one per record of
// the key (nothing lost, nothing repeated), strictly increasing, ending at
// the key's total. The sums in between depend on how the shards
// interleaved, which differs from run to run.
func checkSums(t *testing.T, out *outside, shards map[string][]any) {
	t.Helper()
	total := map[string]int64{}
	count := map[string]int{}
	for _, recs := range shards {
		for _, r := range recs {
			m := r.(map[string]any)
			total[m["k"].(string)] += m["v"].(int64)
			count[m["k"].(string)]++
		}
	}
	got := map[string][]int64{}
	out.mu.Lock()
	for _, r := range out.rows {
		got[r["key"].(string)] = append(got[r["key"].(string)], r["sum"].(int64))
	}
	out.mu.Unlock()
	for k, n := range count {
		g := got[k]
		switch {
		case len(g) != n:
			t.Errorf("key %s: %d results committed, want %d", k, len(g), n)
		case g[len(g)-1] != total[k]:
			t.Errorf("key %s: last sum %d, want %d", k, g[len(g)-1], total[k])
		default:
			for i := 1; i < len(g); i++ {
				if g[i] <= g[i-1] {
					t.Errorf("key %s: result %d is %d after %d: repeated or out of order", k, i, g[i], g[i-1])
					break
				}
			}
		}
	}
	if len(got) != len(count) {
		t.Errorf("keys: got %d, want %d", len(got), len(count))
	}
}

func makeShards(rng *rand.Rand, nShards, perShard, keys int) map[string][]any {
	shards := map[string][]any{}
	for s := range nShards {
		var recs []any
		for range perShard {
			recs = append(recs, map[string]any{"k": "k" + strconv.Itoa(rng.IntN(keys)), "v": int64(1 + rng.IntN(9))})
		}
		shards["s"+strconv.Itoa(s)] = recs
	}
	return shards
}

// waitRead waits until every shard handed on its first n records.
func waitRead(t *testing.T, j *Job, f *feed, n int, restored *Snapshot) {
	t.Helper()
	testutil.Eventually(t, 20*time.Second, func() bool {
		pos := j.Positions()
		if restored != nil {
			for k, p := range restored.Positions {
				if pos[k] == "" {
					pos[k] = p
				}
			}
		}
		ok := true
		for id, recs := range f.shards {
			want := min(n, len(recs)) - 1
			if p, err := strconv.Atoi(pos["in/"+id]); err != nil || p < want {
				ok = false
			}
		}
		return ok
	}, "shards did not read %d records: %v", n, positionsOf{j})
}

// positionsOf formats the job's positions when a failure message is
// printed, not when it is made.
type positionsOf struct{ j *Job }

func (p positionsOf) String() string { return fmt.Sprint(p.j.Positions()) }

// TestCheckpointRestoreExactlyOnce runs a stateful keyed job with a
// transactional sink through rounds of: read some, checkpoint (sometimes),
// read more, crash (hard cancel, live state thrown away), restore from the
// latest checkpoint. The committed output must be every running sum once.
func TestCheckpointRestoreExactlyOnce(t *testing.T) {
	for _, seed := range testutil.Seeds(t, 6, 6) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			const per = 600
			shards := makeShards(rng, 1+rng.IntN(4), per, 1+rng.IntN(20))
			f := newFeed(shards)
			out := &outside{commits: map[uint64]bool{}}
			dir := t.TempDir()
			opts := Options{Parallelism: 1 + rng.IntN(3), BatchSize: 1 + rng.IntN(40), QueueDepth: 1 + rng.IntN(4)}
			db, err := state.Open(dir, state.Options{})
			if err != nil {
				t.Fatal(err)
			}
			released := 0
			for round := 0; ; round++ {
				o := opts
				o.State = db
				if round > 0 {
					if db, o.Restore = restoreIfAny(t, dir, state.Options{}); db == nil {
						var err error
						if db, err = state.Open(dir, state.Options{}); err != nil {
							t.Fatal(err)
						}
					}
					o.State = db
				}
				ctx, cancel := context.WithCancel(context.Background())
				j, err := Start(ctx, sumGraph(f, out), o)
				if err != nil {
					t.Fatal(err)
				}
				if released >= per || round == 5 {
					f.end()
					if err := j.Wait(); err != nil {
						t.Fatal(err)
					}
					cancel()
					if st := j.Status(); st.State != Finished {
						t.Fatalf("final run: %s %s", st.State, st.Reason)
					}
					db.Close()
					break
				}
				for range 1 + rng.IntN(3) {
					released += 1 + rng.IntN(per/4)
					f.release(released)
					waitRead(t, j, f, released, o.Restore)
					if rng.IntN(3) > 0 {
						if _, err := j.Checkpoint(ctx, CheckpointOptions{}); err != nil {
							t.Fatal(err)
						}
					}
				}
				// Crash: cancel hard, and forget the live store.
				cancel()
				j.Wait()
				db.Close()
			}
			checkSums(t, out, shards)
		})
	}
}

var errInjected = errors.New("injected failure")

// TestCheckpointFailpoints fails a checkpoint at each of its steps (the
// runtime's and the state store's), crashes the job right there, fails
// the restore at each of its steps once, and restores: the committed
// output must still be every running sum exactly once.
func TestCheckpointFailpoints(t *testing.T) {
	steps := []string{CheckpointAligned, state.StepBeforeSnapshot, state.StepAfterSnapshot, state.StepBeforeManifest,
		state.StepAfterManifest, state.StepBeforePrune, CheckpointBeforeCommit, CheckpointAfterCommit}
	restoreSteps := []string{state.StepRestoreBeforeRewind, state.StepRestoreBeforeCopy, state.StepRestoreBeforeSwap, state.StepRestoreBeforeOpen}
	base := testutil.Seed(t)
	for i, step := range steps {
		t.Run(step, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(base+uint64(i), 11))
			shards := makeShards(rng, 3, 300, 7)
			f := newFeed(shards)
			out := &outside{commits: map[uint64]bool{}}
			dir := t.TempDir()
			var armed atomic.Bool
			fp := func(s string) error {
				if s == step && armed.Load() {
					return errInjected
				}
				return nil
			}
			db, err := state.Open(dir, state.Options{Failpoint: fp, Retain: 1})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			opts := Options{Parallelism: 2, BatchSize: 16, State: db, Failpoint: fp}
			j, err := Start(ctx, sumGraph(f, out), opts)
			if err != nil {
				t.Fatal(err)
			}
			f.release(100)
			waitRead(t, j, f, 100, nil)
			if _, err := j.Checkpoint(ctx, CheckpointOptions{}); err != nil {
				t.Fatal(err)
			}
			f.release(200)
			waitRead(t, j, f, 200, nil)
			armed.Store(true)
			_, err = j.Checkpoint(ctx, CheckpointOptions{})
			if !errors.Is(err, errInjected) {
				t.Fatalf("checkpoint with failpoint %s: %v", step, err)
			}
			cancel() // crash right at the failed step
			j.Wait()
			db.Close()

			// Each restore step fails once, then the restore goes through.
			for _, rs := range restoreSteps {
				_, _, _, err := state.Restore(dir, state.Latest, state.Options{Failpoint: func(s string) error {
					if s == rs {
						return errInjected
					}
					return nil
				}})
				if !errors.Is(err, errInjected) {
					t.Fatalf("restore with failpoint %s: %v", rs, err)
				}
			}
			db, snap := restoreLatest(t, dir)
			j, err = Start(context.Background(), sumGraph(f, out), Options{Parallelism: 2, BatchSize: 16, State: db, Restore: snap})
			if err != nil {
				t.Fatal(err)
			}
			f.end()
			if err := j.Wait(); err != nil {
				t.Fatal(err)
			}
			db.Close()
			checkSums(t, out, shards)
		})
	}
}
