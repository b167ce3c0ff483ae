package engine

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/state"
)

// TestRestoredWatermarkAdvancesWithoutNewRecords restores a job whose
// shards had read all their input and whose keyed tasks were held back by
// the slower shard, and sends it nothing more. Without the crash, both
// shards would go idle and the watermark would move to the largest of
// their watermarks; after the restore it must get there too, though no
// shard reads another record.
func TestRestoredWatermarkAdvancesWithoutNewRecords(t *testing.T) {
	// Event time is the arrival time, which the feed sets to the
	// record's index: shard a ends at 9, shard b at 99.
	shards := map[string][]any{}
	for s, n := range map[string]int{"a": 10, "b": 100} {
		var recs []any
		for i := range n {
			recs = append(recs, map[string]any{"k": "k" + strconv.Itoa(i%7), "v": int64(1)})
		}
		shards[s] = recs
	}
	f := newFeed(shards)
	f.release(100)
	out := &outside{commits: map[uint64]bool{}}
	dir := t.TempDir()
	db, err := state.Open(dir, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	g := sumGraph(f, out)
	g.Sources[0].IdleTimeout = -1 // no shard goes idle before the crash
	ctx, cancel := context.WithCancel(context.Background())
	j, err := Start(ctx, g, Options{Parallelism: 3, BatchSize: 8, State: db})
	if err != nil {
		t.Fatal(err)
	}
	waitRead(t, j, f, 100, nil)
	waitWatermark(t, j, 9)
	ck, err := j.Checkpoint(ctx, CheckpointOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := ck.Snapshot.MaxEventTimes["in/b"]; got != 99 {
		t.Fatalf("checkpoint holds max event time %d for shard b, want 99", got)
	}
	cancel() // crash
	j.Wait()
	db.Close()

	db, snap := restoreLatest(t, dir)
	g = sumGraph(f, out)
	g.Sources[0].IdleTimeout = 20 * time.Millisecond
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	j, err = Start(ctx, g, Options{Parallelism: 3, BatchSize: 8, State: db, Restore: snap})
	if err != nil {
		t.Fatal(err)
	}
	// Both shards are caught up and go idle: the watermark is the
	// largest of theirs, as it would have been without the crash.
	waitWatermark(t, j, 99)
	stopCtx, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	if err := j.Stop(stopCtx); err != nil {
		t.Fatal(err)
	}
}

// waitWatermark waits until the job's watermark is at least wm. Nothing
// here is timed: the deadline only keeps a broken job from hanging the
// test.
func waitWatermark(t *testing.T, j *Job, wm int64) {
	t.Helper()
	if testutil.Within(20*time.Second, func() bool {
		st := j.Status()
		return st.Watermark >= wm && st.Watermark != EndOfTime
	}) {
		return
	}
	st := j.Status()
	t.Fatalf("watermark %d, want %d (shards %+v)", st.Watermark, wm, st.Shards)
}

// restoreLatest opens the job state in dir at its latest checkpoint and
// parses the engine's snapshot in it; the state is closed when the test
// ends.
func restoreLatest(t testing.TB, dir string) (*state.DB, *Snapshot) {
	t.Helper()
	db, snap := restoreIfAny(t, dir, state.Options{})
	if db == nil {
		t.Fatalf("%s: %v", dir, state.ErrNoCheckpoint)
	}
	t.Cleanup(func() { db.Close() })
	return db, snap
}

// restoreIfAny opens the job state in dir at its latest checkpoint with
// opts and parses the engine's snapshot in it; it returns nil, nil when
// dir holds no complete checkpoint.
func restoreIfAny(t testing.TB, dir string, opts state.Options) (*state.DB, *Snapshot) {
	t.Helper()
	db, _, meta, err := state.Restore(dir, state.Latest, opts)
	if errors.Is(err, state.ErrNoCheckpoint) {
		return nil, nil
	}
	if err != nil {
		t.Fatal(err)
	}
	snap, err := ParseSnapshot(meta)
	if err != nil {
		t.Fatal(err)
	}
	return db, snap
}
