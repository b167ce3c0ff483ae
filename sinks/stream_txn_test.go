package sinks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

// errCrash stands for the process dying at a crash point.
var errCrash = errors.New("simulated crash")

// Crash points of the simulated job, per epoch.
const (
	crashNone             = ""
	crashBeforeCheckpoint = "before-checkpoint" // PreCommit done, checkpoint never taken
	crashAfterCheckpoint  = "after-checkpoint"  // checkpoint durable, no Commit
	crashMidCommit        = "mid-commit"        // Commit appended k records, then died
	crashMidCommitKeys    = "mid-commit-keys"   // Commit's k-th Put landed for some keys only
	crashAfterCommit      = "after-commit"      // Commit returned
	crashMidRecovery      = "mid-recovery"      // OpenState appended k records, then died
	failCheckpoint        = "fail-checkpoint"   // the checkpoint failed; the job goes on
)

type crashPoint struct {
	epoch uint64
	point string
	k     int // records appended before a mid-commit crash
}

// txnJob drives a Stream the way the runtime does, over a real stream
// store and a real state DB, restarting from the latest checkpoint after
// each crash.
type txnJob struct {
	t         *testing.T
	storeDir  string
	stateDir  string
	fs        vfs.FS  // nil: the OS filesystem
	epochs    [][]Row // rows between barrier e-1 and e are epochs[e-1]
	store     *streams.Store
	db        *state.DB
	sink      *Stream
	crashes   []crashPoint
	restarts  int
	recovered int // OpenState calls that found staged epochs
	// failNext makes the next checkpoint fail before its manifest, as a
	// full disk would.
	failNext bool
}

var errCheckpointFailed = errors.New("simulated checkpoint failure")

func newTxnJob(t *testing.T, shards int, epochs [][]Row, crashes ...crashPoint) *txnJob {
	return newTxnJobFS(t, nil, shards, epochs, crashes...)
}

// newTxnJobFS is newTxnJob on fs (the stream store and the state).
func newTxnJobFS(t *testing.T, fs vfs.FS, shards int, epochs [][]Row, crashes ...crashPoint) *txnJob {
	j := &txnJob{t: t, storeDir: filepath.Join(t.TempDir(), "streams"), stateDir: filepath.Join(t.TempDir(), "state"),
		fs: fs, epochs: epochs, crashes: crashes}
	store, err := streams.Open(j.storeDir, streams.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CreateStream("out", shards, streams.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	j.store = store
	t.Cleanup(func() {
		if j.db != nil {
			j.db.Close()
		}
		j.store.Close()
	})
	return j
}

// txnRows returns n rows per epoch over keys k0..k<keys-1>; each row is
// unique and a key's rows carry increasing "n".
func txnRows(epochs, n, keys int) [][]Row {
	out := make([][]Row, epochs)
	seq := 0
	for e := range out {
		for range n {
			k := "k" + strconv.Itoa(seq%keys)
			out[e] = append(out[e], Row{Key: k, Value: map[string]any{
				"window_start": int64(seq / keys * 1000), "window_end": int64(seq/keys*1000 + 1000), "key": k, "n": int64(seq)}})
			seq++
		}
	}
	return out
}

// crashAt returns the planned crash at (epoch, point), consuming it.
func (j *txnJob) crashAt(epoch uint64, points ...string) (crashPoint, bool) {
	for i, c := range j.crashes {
		if c.epoch == epoch && slices.Contains(points, c.point) {
			j.crashes = append(j.crashes[:i], j.crashes[i+1:]...)
			return c, true
		}
	}
	return crashPoint{}, false
}

// start restores the state (or starts afresh without a checkpoint), opens
// a new sink and returns the epoch the job resumes after.
func (j *txnJob) start() uint64 {
	t := j.t
	ctx := context.Background()
	opts := state.Options{FS: j.fs, Failpoint: func(step string) error {
		if j.failNext && step == state.StepBeforeManifest {
			j.failNext = false
			return errCheckpointFailed
		}
		return nil
	}}
	db, _, meta, err := state.Restore(j.stateDir, state.Latest, opts)
	var resume uint64
	switch {
	case errors.Is(err, state.ErrNoCheckpoint):
		fs := j.fs
		if fs == nil {
			fs = vfs.Default
		}
		if err := fs.RemoveAll(j.stateDir); err != nil {
			t.Fatal(err)
		}
		if db, err = state.Open(j.stateDir, opts); err != nil {
			t.Fatal(err)
		}
	case err != nil:
		t.Fatal(err)
	default:
		if resume, err = strconv.ParseUint(string(meta), 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	j.db = db
	sp, err := db.Namespace("sink", "0")
	if err != nil {
		t.Fatal(err)
	}
	for {
		s, err := NewStream(StreamConfig{Store: j.store, Stream: "out"})
		if err != nil {
			t.Fatal(err)
		}
		if staged, _ := loadStaged(sp); len(staged) > 0 {
			j.recovered++
		}
		if c, ok := j.crashAt(resume+1, crashMidRecovery); ok {
			s.put = j.cutShort(c, false)
		}
		err = s.OpenState(ctx, sp)
		if errors.Is(err, errCrash) {
			j.crash()
			return j.start()
		}
		if err != nil {
			t.Fatal(err)
		}
		s.put = nil
		j.sink = s
		return resume
	}
}

// cutShort returns a Put that lets c.k records through and then crashes;
// with keys, the Put that crosses k lands for the even keys only.
func (j *txnJob) cutShort(c crashPoint, keys bool) func(context.Context, []streams.PutRecord) error {
	budget := c.k
	return func(ctx context.Context, recs []streams.PutRecord) error {
		if budget >= len(recs) {
			budget -= len(recs)
			_, err := j.store.Put(ctx, "out", recs)
			return err
		}
		part := recs[:budget]
		if keys {
			part = nil
			for _, r := range recs {
				if n, _ := strconv.Atoi(r.PartitionKey[1:]); n%2 == 0 {
					part = append(part, r)
				}
			}
		}
		budget = 0
		if len(part) > 0 {
			if _, err := j.store.Put(ctx, "out", part); err != nil {
				return err
			}
		}
		return errCrash
	}
}

// crash drops the sink and the DB and reopens the stream store, as a
// restarted process would.
// commitCutShort starts the job, stages rows for epoch 1, checkpoints it
// and has its Commit fail after k records were put.
func (j *txnJob) commitCutShort(rows []Row, k int) {
	j.t.Helper()
	ctx := context.Background()
	j.start()
	j.write(rows)
	if err := j.sink.PreCommit(ctx, 1); err != nil {
		j.t.Fatal(err)
	}
	if _, err := j.db.Checkpoint(1, []byte("1")); err != nil {
		j.t.Fatal(err)
	}
	j.sink.put = j.cutShort(crashPoint{k: k}, false)
	if err := j.sink.Commit(ctx, 1); !errors.Is(err, errCrash) {
		j.t.Fatalf("commit: %v", err)
	}
}

func (j *txnJob) crash() {
	j.restarts++
	j.sink = nil
	if err := j.db.Close(); err != nil {
		j.t.Fatal(err)
	}
	j.db = nil
	if err := j.store.Close(); err != nil {
		j.t.Fatal(err)
	}
	store, err := streams.Open(j.storeDir, streams.Options{FS: j.fs})
	if err != nil {
		j.t.Fatal(err)
	}
	j.store = store
}

func (j *txnJob) write(rows []Row) {
	// Several Writes per epoch, as window firings arrive.
	for len(rows) > 0 {
		n := min(len(rows), 170)
		if err := j.sink.Write(context.Background(), rows[:n]); err != nil {
			j.t.Fatal(err)
		}
		rows = rows[n:]
	}
}

// run runs the job to its end through the planned crashes. Like the
// runtime, it writes the first rows after a barrier before the checkpoint
// is taken.
func (j *txnJob) run() {
	t := j.t
	ctx := context.Background()
	last := uint64(len(j.epochs))
restart:
	for {
		resume := j.start()
		half := 0 // rows of the current epoch written before its loop turn
		for e := resume + 1; e <= last; e++ {
			j.write(j.epochs[e-1][half:])
			if err := j.sink.PreCommit(ctx, e); err != nil {
				t.Fatal(err)
			}
			if _, ok := j.crashAt(e, crashBeforeCheckpoint); ok {
				j.crash()
				continue restart
			}
			half = 0
			if e < last {
				half = len(j.epochs[e]) / 2
				j.write(j.epochs[e][:half])
			}
			if _, ok := j.crashAt(e, failCheckpoint); ok {
				j.failNext = true
				if _, err := j.db.Checkpoint(e, []byte(strconv.FormatUint(e, 10))); !errors.Is(err, errCheckpointFailed) {
					t.Fatalf("checkpoint %d: %v, want the simulated failure", e, err)
				}
				continue
			}
			if _, err := j.db.Checkpoint(e, []byte(strconv.FormatUint(e, 10))); err != nil {
				t.Fatal(err)
			}
			if _, ok := j.crashAt(e, crashAfterCheckpoint); ok {
				j.crash()
				continue restart
			}
			if c, ok := j.crashAt(e, crashMidCommit, crashMidCommitKeys); ok {
				j.sink.put = j.cutShort(c, c.point == crashMidCommitKeys)
			}
			err := j.sink.Commit(ctx, e)
			if errors.Is(err, errCrash) {
				j.crash()
				continue restart
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := j.crashAt(e, crashAfterCommit); ok {
				j.crash()
				continue restart
			}
		}
		// A failed last checkpoint is retried, as the runtime's final
		// checkpoint at the end of input would be.
		if e := last + 1; len(j.sink.txn.log.Pending()) > 0 {
			if err := j.sink.PreCommit(ctx, e); err != nil {
				t.Fatal(err)
			}
			if _, err := j.db.Checkpoint(e, []byte(strconv.FormatUint(e, 10))); err != nil {
				t.Fatal(err)
			}
			if err := j.sink.Commit(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		return
	}
}

// outRecord is one record of the output stream, decoded.
type outRecord struct {
	shard int
	key   string
	n     int64
}

// readOut returns every record of the output stream, shard by shard.
func readOut(t *testing.T, store *streams.Store) []outRecord {
	t.Helper()
	info, err := store.DescribeStream("out")
	if err != nil {
		t.Fatal(err)
	}
	var out []outRecord
	for _, sh := range info.Shards {
		for from := uint64(0); from <= sh.LastSeq; {
			res, err := store.Read("out", sh.ID, from, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Records {
				var v struct {
					Key string `json:"key"`
					N   int64  `json:"n"`
				}
				if err := json.Unmarshal(r.Data, &v); err != nil {
					t.Fatal(err)
				}
				if v.Key != r.PartitionKey {
					t.Fatalf("record key %q, partition key %q", v.Key, r.PartitionKey)
				}
				out = append(out, outRecord{shard: sh.Index, key: v.Key, n: v.N})
			}
			from = res.Next
		}
	}
	return out
}

// checkExactlyOnce asserts that the output holds every row of the epochs
// exactly once, each key's rows in the order written.
func checkExactlyOnce(t *testing.T, store *streams.Store, epochs [][]Row) {
	t.Helper()
	want := map[int64]bool{}
	for _, rows := range epochs {
		for _, r := range rows {
			want[r.Value.(map[string]any)["n"].(int64)] = true
		}
	}
	got := readOut(t, store)
	seen := map[int64]int{}
	lastOfKey := map[string]int64{}
	for _, r := range got {
		seen[r.n]++
		if seen[r.n] == 2 {
			t.Errorf("row %d (key %s) appears twice", r.n, r.key)
		}
		if !want[r.n] {
			t.Errorf("row %d was never written", r.n)
		}
		if p, ok := lastOfKey[r.key]; ok && r.n < p {
			t.Errorf("key %s: row %d after row %d", r.key, r.n, p)
		}
		lastOfKey[r.key] = r.n
	}
	for n := range want {
		if seen[n] == 0 {
			t.Errorf("row %d is missing", n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d records, want %d", len(got), len(want))
	}
}

// checkSpaceEmpty asserts that nothing is left staged after the last
// Commit.
func (j *txnJob) checkSpaceEmpty() {
	sp, _ := j.db.Namespace("sink", "0")
	n := 0
	if err := sp.Scan(nil, func(k, v []byte) error { n++; return nil }); err != nil {
		j.t.Fatal(err)
	}
	if n != 0 {
		j.t.Errorf("%d keys left in the sink's space after the last commit", n)
	}
}

func TestStreamTxnCrashAtEachPoint(t *testing.T) {
	// 4 epochs of 640 rows: each Commit makes two Puts (maxPut 500).
	const epochs, perEpoch = 4, 640
	rows := txnRows(epochs, perEpoch, 7)
	var plans []crashPoint
	for e := uint64(1); e <= epochs; e++ {
		plans = append(plans,
			crashPoint{epoch: e, point: crashBeforeCheckpoint},
			crashPoint{epoch: e, point: crashAfterCheckpoint},
			crashPoint{epoch: e, point: crashAfterCommit},
			crashPoint{epoch: e, point: failCheckpoint})
		for _, k := range []int{0, 1, 499, 500, 501, perEpoch - 1} {
			plans = append(plans, crashPoint{epoch: e, point: crashMidCommit, k: k})
		}
		plans = append(plans, crashPoint{epoch: e, point: crashMidCommitKeys, k: 500})
	}
	if testing.Short() {
		plans = plans[:len(plans)/2]
	}
	for _, c := range plans {
		t.Run(fmt.Sprintf("%d-%s-%d", c.epoch, c.point, c.k), func(t *testing.T) {
			t.Parallel() // mostly waiting for fsync
			j := newTxnJob(t, 2, rows, c)
			j.run()
			if len(j.crashes) != 0 {
				t.Fatalf("crash %v never happened", j.crashes)
			}
			wantRestarts := 1
			if c.point == failCheckpoint {
				wantRestarts = 0
			}
			if j.restarts != wantRestarts {
				t.Fatalf("%d restarts, want %d", j.restarts, wantRestarts)
			}
			checkExactlyOnce(t, j.store, rows)
			j.checkSpaceEmpty()
		})
	}
}

// A crash whose restore finds staged epochs must make OpenState recover
// them: after a checkpoint, before or in the middle of Commit.
func TestStreamTxnRecoveryFindsStagedEpochs(t *testing.T) {
	rows := txnRows(2, 50, 3)
	for _, c := range []crashPoint{{1, crashAfterCheckpoint, 0}, {1, crashMidCommit, 20}, {1, crashAfterCommit, 0}} {
		j := newTxnJob(t, 1, rows, c)
		j.run()
		if j.recovered != 1 {
			t.Errorf("%s: OpenState recovered %d times, want 1", c.point, j.recovered)
		}
		checkExactlyOnce(t, j.store, rows)
	}
}

// A failed checkpoint leaves its rows staged; the next Commit appends
// them before the next epoch's, also when that Commit is cut short.
func TestStreamTxnFailedCheckpoint(t *testing.T) {
	rows := txnRows(4, 300, 5)
	for _, crashes := range [][]crashPoint{
		{{2, failCheckpoint, 0}},
		{{2, failCheckpoint, 0}, {3, crashMidCommit, 450}},
		{{2, failCheckpoint, 0}, {3, failCheckpoint, 0}, {4, crashMidCommitKeys, 700}},
		{{2, failCheckpoint, 0}, {3, crashAfterCheckpoint, 0}, {4, crashMidRecovery, 100}},
	} {
		j := newTxnJobFS(t, vfs.NewMem(), 3, rows, crashes...)
		j.run()
		if len(j.crashes) != 0 {
			t.Fatalf("%v: crash %v never happened", crashes, j.crashes)
		}
		checkExactlyOnce(t, j.store, rows)
		j.checkSpaceEmpty()
	}
}

// Any number of crashes, anywhere, recovery included: one answer.
func TestStreamTxnRandomCrashes(t *testing.T) {
	const epochs = 6
	points := []string{crashBeforeCheckpoint, crashAfterCheckpoint, crashMidCommit, crashMidCommitKeys,
		crashAfterCommit, crashMidRecovery, failCheckpoint}
	seeds := 50
	if testing.Short() {
		seeds = 6
	}
	for seed := range seeds {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		perEpoch := 1 + rng.IntN(700)
		rows := txnRows(epochs, perEpoch, 1+rng.IntN(9))
		var crashes []crashPoint
		for range 1 + rng.IntN(5) {
			crashes = append(crashes, crashPoint{epoch: 1 + uint64(rng.IntN(epochs)),
				point: points[rng.IntN(len(points))], k: rng.IntN(2 * perEpoch)})
		}
		// In memory: this test is about the many crash orders.
		j := newTxnJobFS(t, vfs.NewMem(), 1+rng.IntN(4), rows, crashes...)
		j.run()
		checkExactlyOnce(t, j.store, rows)
		j.checkSpaceEmpty()
		if t.Failed() {
			t.Fatalf("seed %d: crashes %v", seed, crashes)
		}
	}
}

func TestStreamTxnStagesUntilCommit(t *testing.T) {
	j := newTxnJob(t, 1, nil)
	ctx := context.Background()
	j.start()
	rows := txnRows(2, 10, 2)
	j.write(rows[0])
	if err := j.sink.PreCommit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	j.write(rows[1])
	if got := readOut(t, j.store); len(got) != 0 {
		t.Fatalf("%d records visible before Commit", len(got))
	}
	if err := j.sink.Commit(ctx, 1); err != nil {
		t.Fatal(err)
	}
	checkExactlyOnce(t, j.store, rows[:1])
	if err := j.sink.PreCommit(ctx, 1); err == nil {
		t.Fatal("PreCommit of an epoch not after the last: no error")
	}
	s, _ := NewStream(StreamConfig{Store: j.store, Stream: "out"})
	if err := s.PreCommit(ctx, 1); err == nil {
		t.Fatal("PreCommit before OpenState: no error")
	}
}

// The output stream resharded between a commit cut short and its recovery:
// records that went to the parent are found, the rest go to the children.
func TestStreamTxnRecoveryAfterReshard(t *testing.T) {
	rows := txnRows(1, 300, 6)
	j := newTxnJob(t, 1, rows)
	j.commitCutShort(rows[0], 120)
	j.crash()
	if err := j.store.SplitShard("out", streams.ShardID(0), streams.EvenRanges(2)[1].Start.String()); err != nil {
		t.Fatal(err)
	}
	j.start()
	checkExactlyOnce(t, j.store, rows)
	got := readOut(t, j.store)
	if got[119].shard != 0 || got[120].shard == 0 {
		t.Errorf("records 120.. should be in the children: %v %v", got[119], got[120])
	}
}

func FuzzStagedChunk(f *testing.F) {
	f.Add(encodeChunk(nil, []streams.PutRecord{{PartitionKey: "k", Data: []byte("{}")}}))
	f.Add(encodeMarker(txnMarker{chunks: 2, records: 600, ends: map[int]uint64{0: 5, 3: 9}}))
	f.Add([]byte{1}) // a length past the end
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := decodeChunk(nil, b)
		if err == nil {
			// Varints need not be minimal, so compare records, not bytes.
			again, err := decodeChunk(nil, encodeChunk(nil, recs))
			if err != nil || !reflect.DeepEqual(again, recs) {
				t.Fatalf("chunk %x does not round-trip: %v, %v", b, again, err)
			}
		}
		if m, err := decodeMarker(b); err == nil {
			if _, err := decodeMarker(encodeMarker(m)); err != nil {
				t.Fatalf("marker does not round-trip: %v", err)
			}
		}
	})
}

// A Commit that failed part-way is not retried from memory (that could
// repeat records): the sink refuses work until the job restarts.
func TestStreamTxnFailedCommitRefusesRetry(t *testing.T) {
	rows := txnRows(1, 50, 2)
	j := newTxnJob(t, 1, rows)
	ctx := context.Background()
	j.commitCutShort(rows[0], 10)
	j.sink.put = nil
	if err := j.sink.Commit(ctx, 1); !errors.Is(err, errCrash) {
		t.Fatalf("retried commit: %v, want the first failure", err)
	}
	if err := j.sink.Write(ctx, rows[0]); err == nil {
		t.Fatal("Write after a failed commit: no error")
	}
	if got := len(readOut(t, j.store)); got != 10 {
		t.Fatalf("%d records after the failed commit, want 10", got)
	}
	j.crash()
	j.start()
	checkExactlyOnce(t, j.store, rows)
}

// Chunks without a marker come from a PreCommit cut short: OpenState drops
// them and appends nothing.
func TestStreamTxnDropsChunksWithoutMarker(t *testing.T) {
	j := newTxnJob(t, 1, nil)
	db, err := state.Open(j.stateDir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	j.db = db
	sp, err := db.Namespace("sink", "0")
	if err != nil {
		t.Fatal(err)
	}
	recs := []streams.PutRecord{{PartitionKey: "k", Data: []byte(`{"n":1}`)}}
	if err := sp.Set(chunkKey(3, 0), encodeChunk(nil, recs)); err != nil {
		t.Fatal(err)
	}
	s, _ := NewStream(StreamConfig{Store: j.store, Stream: "out"})
	if err := s.OpenState(context.Background(), sp); err != nil {
		t.Fatal(err)
	}
	if got := readOut(t, j.store); len(got) != 0 {
		t.Fatalf("%d records appended from an unfinished PreCommit", len(got))
	}
	j.checkSpaceEmpty()
}
