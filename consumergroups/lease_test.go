package consumergroups

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

const dur = 10 * time.Second

var t0 = time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)

func shardIDs(ls []Lease) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.Shard)
	}
	return out
}

func flat(n int) []Shard {
	var out []Shard
	for i := range n {
		out = append(out, Shard{ID: fmt.Sprintf("shardId-%012d", i)})
	}
	return out
}

// A worker that paused past its lease's expiry, whose lease was taken
// over meanwhile, cannot checkpoint or release it any more; the new owner
// can.
func TestStaleCheckpointRefused(t *testing.T) {
	st := NewState()
	shards := flat(1)
	a, _ := Sync(st, shards, "a", t0, dur)
	if len(a) != 1 || a[0].Epoch != 1 {
		t.Fatalf("a holds %+v, want shard 0 at epoch 1", a)
	}
	if err := st.Checkpoint(a[0].Shard, "a", 1, Checkpoint{SequenceNumber: "10"}); err != nil {
		t.Fatal(err)
	}
	// a stops syncing; b comes after a's lease expired.
	b, _ := Sync(st, shards, "b", t0.Add(dur+time.Millisecond), dur)
	if len(b) != 1 || b[0].Epoch != 2 || b[0].Checkpoint.SequenceNumber != "10" {
		t.Fatalf("b holds %+v, want shard 0 at epoch 2 from checkpoint 10", b)
	}
	for _, err := range []error{
		st.Checkpoint(a[0].Shard, "a", 1, Checkpoint{SequenceNumber: "20"}),
		st.Release(a[0].Shard, "a", 1, &Checkpoint{SequenceNumber: "20"}),
		st.Checkpoint(a[0].Shard, "b", 1, Checkpoint{SequenceNumber: "20"}), // right worker, old epoch
		st.Checkpoint(a[0].Shard, "a", 2, Checkpoint{SequenceNumber: "20"}), // right epoch, wrong worker
	} {
		if !errors.Is(err, ErrLeaseLost) {
			t.Errorf("stale checkpoint: got %v, want ErrLeaseLost", err)
		}
	}
	if got := st.Leases[a[0].Shard].Checkpoint.SequenceNumber; got != "10" {
		t.Fatalf("checkpoint after refused writes = %s, want 10", got)
	}
	if err := st.Checkpoint(a[0].Shard, "b", 2, Checkpoint{SequenceNumber: "30", SubSequenceNumber: 4}); err != nil {
		t.Fatal(err)
	}
	// a comes back: it gets nothing (b holds the only lease, 1 each is fair).
	if a, _ := Sync(st, shards, "a", t0.Add(dur+2*time.Millisecond), dur); len(a) != 0 {
		t.Fatalf("a came back holding %v", shardIDs(a))
	}
}

// Children are leased only once every parent is checkpointed at SHARD_END:
// 0 splits into 1 and 2, which merge into 3.
func TestChildrenAfterParents(t *testing.T) {
	shards := []Shard{
		{ID: "shardId-000000000000"},
		{ID: "shardId-000000000001", Parent: "shardId-000000000000"},
		{ID: "shardId-000000000002", Parent: "shardId-000000000000"},
		{ID: "shardId-000000000003", Parent: "shardId-000000000001", AdjacentParent: "shardId-000000000002"},
	}
	st := NewState()
	now := t0
	sync := func() []string {
		now = now.Add(time.Second)
		ls, _ := Sync(st, shards, "w", now, dur)
		return shardIDs(ls)
	}
	end := func(id string) {
		t.Helper()
		if err := st.Checkpoint(id, "w", st.Leases[id].Epoch, Checkpoint{SequenceNumber: ShardEnd}); err != nil {
			t.Fatal(err)
		}
	}
	steps := []struct {
		end  string
		want []string
	}{
		{"", []string{"shardId-000000000000"}},
		{"shardId-000000000000", []string{"shardId-000000000001", "shardId-000000000002"}},
		{"shardId-000000000001", []string{"shardId-000000000002"}},
		{"shardId-000000000002", []string{"shardId-000000000003"}},
		{"shardId-000000000003", nil},
	}
	for i, s := range steps {
		if s.end != "" {
			end(s.end)
		}
		if got := sync(); !slices.Equal(got, s.want) {
			t.Fatalf("step %d (after ending %q): leases %v, want %v", i, s.end, got, s.want)
		}
	}
	// A parent gone from the listing (past retention) no longer blocks.
	st = NewState()
	if got, _ := Sync(st, shards[1:], "w", now, dur); !slices.Equal(shardIDs(got), []string{"shardId-000000000001", "shardId-000000000002"}) {
		t.Fatalf("without parent 0 listed: %v", shardIDs(got))
	}
}

// A dead worker's leases go to the live ones once they expire, and the
// shards are balanced as workers join: the busiest worker is asked to hand
// one lease off, and the next Sync of the short worker takes it.
func TestTakeoverAndBalance(t *testing.T) {
	shards := flat(4)
	st := NewState()
	now := t0
	a, _ := Sync(st, shards, "a", now, dur)
	if len(a) != 4 {
		t.Fatalf("a alone holds %v, want all 4", shardIDs(a))
	}
	now = now.Add(time.Second)
	b, _ := Sync(st, shards, "b", now, dur)
	if len(b) != 0 {
		t.Fatalf("b took %v while a holds every lease", shardIDs(b))
	}
	a, _ = Sync(st, shards, "a", now, dur)
	var asked []Lease
	for _, l := range a {
		if l.ReleaseRequested {
			asked = append(asked, l)
		}
	}
	if len(asked) != 1 {
		t.Fatalf("a was asked to release %v, want one lease", shardIDs(asked))
	}
	if err := st.Release(asked[0].Shard, "a", asked[0].Epoch, &Checkpoint{SequenceNumber: "5"}); err != nil {
		t.Fatal(err)
	}
	b, _ = Sync(st, shards, "b", now, dur)
	if len(b) != 1 || b[0].Shard != asked[0].Shard || b[0].Checkpoint.SequenceNumber != "5" {
		t.Fatalf("b holds %+v, want %s from checkpoint 5", b, asked[0].Shard)
	}
	// One more round brings them to 2 and 2.
	Sync(st, shards, "b", now, dur)
	a, _ = Sync(st, shards, "a", now, dur)
	for _, l := range a {
		if l.ReleaseRequested {
			st.Release(l.Shard, "a", l.Epoch, nil)
		}
	}
	b, _ = Sync(st, shards, "b", now, dur)
	a, _ = Sync(st, shards, "a", now, dur)
	if len(a) != 2 || len(b) != 2 {
		t.Fatalf("a holds %v, b holds %v: want 2 and 2", shardIDs(a), shardIDs(b))
	}
	// a dies; after its leases expire b takes all four, each at a new epoch.
	now = now.Add(dur)
	b, _ = Sync(st, shards, "b", now, dur)
	if len(b) != 4 {
		t.Fatalf("after a died b holds %v, want 4", shardIDs(b))
	}
	for _, l := range b {
		if l.Epoch < 2 {
			t.Errorf("lease %s taken over at epoch %d", l.Shard, l.Epoch)
		}
	}
}

// TestProtocolRandomized runs random Syncs, checkpoints, releases, leaves
// and clock steps by four workers over a stream that splits and merges,
// checking after each step: no unfinished child is held while a parent
// is unfinished, each accepted checkpoint came from the lease's current
// owner and epoch, and epochs never go down.
func TestProtocolRandomized(t *testing.T) {
	rng := testutil.Rand(t, 1)
	shards := []Shard{
		{ID: "shardId-000000000000"}, {ID: "shardId-000000000001"},
		{ID: "shardId-000000000002", Parent: "shardId-000000000000"},
		{ID: "shardId-000000000003", Parent: "shardId-000000000000"},
		{ID: "shardId-000000000004", Parent: "shardId-000000000003", AdjacentParent: "shardId-000000000001"},
	}
	workers := []string{"a", "b", "c", "d"}
	st := NewState()
	now := t0
	view := map[string]map[string]uint64{} // what each worker believes it holds
	epochs := map[string]uint64{}
	var ops []string
	listed := 2 // the stream's shards appear in order, as splits and merges make them
	for step := range 3000 {
		w := workers[rng.IntN(len(workers))]
		switch rng.IntN(6) {
		case 0:
			now = now.Add(time.Duration(rng.IntN(4000)) * time.Millisecond)
			ops = append(ops, "clock")
		case 1, 2:
			if listed < len(shards) && rng.IntN(20) == 0 {
				listed++
			}
			ls, _ := Sync(st, shards[:listed], w, now, dur)
			view[w] = map[string]uint64{}
			for _, l := range ls {
				view[w][l.Shard] = l.Epoch
			}
			ops = append(ops, "sync "+w)
		case 3, 4:
			for sh, ep := range view[w] {
				cp := Checkpoint{SequenceNumber: fmt.Sprint(step)}
				if rng.IntN(3) == 0 {
					cp.SequenceNumber = ShardEnd
				}
				before := st.Leases[sh]
				current := before != nil && before.Owner == w && before.Epoch == ep
				err := st.Checkpoint(sh, w, ep, cp)
				if (err == nil) != current {
					t.Fatalf("step %d: checkpoint by %s at epoch %d of %s: err %v, current owner %v\nops: %v", step, w, ep, sh, err, current, ops)
				}
				ops = append(ops, fmt.Sprintf("checkpoint %s %s %s", w, sh, cp.SequenceNumber))
				break
			}
		case 5:
			st.Leave(w)
			delete(view, w)
			ops = append(ops, "leave "+w)
		}
		for id, l := range st.Leases {
			if l.Epoch < epochs[id] {
				t.Fatalf("step %d: epoch of %s went from %d to %d", step, id, epochs[id], l.Epoch)
			}
			epochs[id] = l.Epoch
			if l.held(now) && !st.eligible(l) {
				t.Fatalf("step %d: %s held by %s while a parent is unfinished\nops: %v", step, id, l.Owner, ops)
			}
		}
	}
}

// A worker that syncs after its lease expired, with no one taking it
// meanwhile, gets it back at a new epoch: a checkpoint it sent before the
// expiry that the store gets only afterwards (it was held up in the
// network or in a paused server) is refused, so it cannot land after a
// checkpoint of the reader that goes on from the later Sync. A Sync in
// time renews the lease at the same epoch.
func TestExpiredLeaseRetakenAtNewEpoch(t *testing.T) {
	st := NewState()
	shards := flat(1)
	a, _ := Sync(st, shards, "a", t0, dur)
	if len(a) != 1 || a[0].Epoch != 1 {
		t.Fatalf("a holds %+v, want shard 0 at epoch 1", a)
	}
	id := a[0].Shard
	a, ch := Sync(st, shards, "a", t0.Add(dur-time.Millisecond), dur)
	if len(a) != 1 || a[0].Epoch != 1 || ch.Any() {
		t.Fatalf("renewed in time: a holds %+v (changes %+v), want shard 0 at epoch 1, nothing changed", a, ch)
	}
	// a's next Sync comes after the expiry; no one else is in the group.
	late := t0.Add(2*dur + time.Millisecond)
	a, ch = Sync(st, shards, "a", late, dur)
	if len(a) != 1 || a[0].Epoch != 2 || !slices.Equal(ch.Updated, []string{id}) {
		t.Fatalf("after the expiry: a holds %+v (changes %+v), want shard 0 at epoch 2, its lease updated", a, ch)
	}
	if err := st.Checkpoint(id, "a", 2, Checkpoint{SequenceNumber: "30"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Checkpoint(id, "a", 1, Checkpoint{SequenceNumber: "20"}); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("checkpoint of the batch from before the expiry: got %v, want ErrLeaseLost", err)
	}
	if got := st.Leases[id].Checkpoint.SequenceNumber; got != "30" {
		t.Fatalf("checkpoint = %s, want 30", got)
	}
}
