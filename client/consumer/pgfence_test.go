package consumer

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/client/internal/testserver"
	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestPostgresFencedCommit checks the lease fencing a worker's commit
// relies on, against a real PostgreSQL and a real server's shard list: a
// worker whose lease was taken over (it paused past the expiry) has its
// fenced commit and its plain checkpoint refused, without its commit
// running and without the new owner's checkpoint changing; a commit that
// fails stores nothing; and while a fenced commit is in progress no Sync
// of the group can take a lease over (it waits on the group's lock and
// goes on once the commit is done).
func TestPostgresFencedCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a server")
	}
	pg := testsrv.StartPostgres(t)
	srv := testserver.Start(t)
	srv.CreateStream("s", 2)
	ctx := context.Background()
	pool := pg.Pool(t)
	defer pool.Close()
	store, err := PostgresLeases(ctx, pool, srv.Client(), "s", "g",
		consumergroups.Config{LeaseDuration: consumergroups.MinLeaseDuration}, PostgresOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fc, ok := store.(FencedCommitter)
	if !ok {
		t.Fatalf("the PostgreSQL lease store %T does not implement FencedCommitter", store)
	}
	checkpoints := func() []string {
		t.Helper()
		rows, err := pool.Query(ctx, `SELECT shard, sequence_number FROM runnel_consumer_leases WHERE stream = 's' AND group_name = 'g' ORDER BY shard`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var shard, seq string
			if err := rows.Scan(&shard, &seq); err != nil {
				t.Fatal(err)
			}
			out = append(out, shard+"="+seq)
		}
		return out
	}
	fenced := func(leases []consumergroups.Lease, seq string) []FencedCheckpoint {
		var cps []FencedCheckpoint
		for _, l := range leases {
			cps = append(cps, FencedCheckpoint{Shard: l.Shard, Epoch: l.Epoch, Checkpoint: consumergroups.Checkpoint{SequenceNumber: seq}})
		}
		return cps
	}

	// a alone takes both shards and commits a checkpoint for both.
	resA, err := store.Sync(ctx, "a")
	if err != nil || len(resA.Leases) != 2 {
		t.Fatalf("a's first sync: %d leases, %v; want 2", len(resA.Leases), err)
	}
	slices.SortFunc(resA.Leases, func(x, y consumergroups.Lease) int { return strings.Compare(x.Shard, y.Shard) })
	both := func(seq string) []string {
		return []string{resA.Leases[0].Shard + "=" + seq, resA.Leases[1].Shard + "=" + seq}
	}
	calls := 0
	count := func(context.Context) error { calls++; return nil }
	if err := fc.CommitFenced(ctx, "a", fenced(resA.Leases, "100"), count); err != nil || calls != 1 {
		t.Fatalf("a's fenced commit: %v, commit called %d times; want nil, 1", err, calls)
	}
	want := both("100")
	if d := testutil.Diff(want, checkpoints()); d != "" {
		t.Fatalf("checkpoints after a's commit (-want +got):\n%s", d)
	}

	// A failing commit stores nothing.
	boom := errors.New("kafka said no")
	if err := fc.CommitFenced(ctx, "a", fenced(resA.Leases, "150"), func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("fenced commit whose commit fails: %v, want %v", err, boom)
	}
	if d := testutil.Diff(want, checkpoints()); d != "" {
		t.Fatalf("checkpoints after a failed commit (-want +got):\n%s", d)
	}

	// a pauses; b takes its leases over once they expire by the
	// database's clock, and commits.
	var resB SyncResult
	testutil.Eventually(t, 60*time.Second, func() bool {
		resB, err = store.Sync(ctx, "b")
		return err == nil && len(resB.Leases) == 2
	}, "b never took a's two leases over: %d leases, %v", len(resB.Leases), err)
	if err := fc.CommitFenced(ctx, "b", fenced(resB.Leases, "200"), count); err != nil || calls != 2 {
		t.Fatalf("b's fenced commit: %v, commit called %d times in all; want nil, 2", err, calls)
	}
	want = both("200")

	// a wakes up: its writes with its old epoch are refused.
	err = fc.CommitFenced(ctx, "a", fenced(resA.Leases, "300"), count)
	if !errors.Is(err, consumergroups.ErrLeaseLost) || calls != 2 {
		t.Fatalf("stale a's fenced commit: %v, commit called %d times in all; want ErrLeaseLost, 2", err, calls)
	}
	err = store.Checkpoint(ctx, resA.Leases[0].Shard, "a", resA.Leases[0].Epoch, consumergroups.Checkpoint{SequenceNumber: "300"})
	if !errors.Is(err, consumergroups.ErrLeaseLost) {
		t.Fatalf("stale a's checkpoint: %v, want ErrLeaseLost", err)
	}
	// A lease-only entry fences as well and stores no checkpoint: a's is
	// refused, b's commits and leaves the checkpoints as they were.
	leaseOnly := func(leases []consumergroups.Lease) []FencedCheckpoint {
		cps := fenced(leases, "")
		for i := range cps {
			cps[i].LeaseOnly = true
		}
		return cps
	}
	err = fc.CommitFenced(ctx, "a", leaseOnly(resA.Leases), count)
	if !errors.Is(err, consumergroups.ErrLeaseLost) || calls != 2 {
		t.Fatalf("stale a's lease-only fenced commit: %v, commit called %d times in all; want ErrLeaseLost, 2", err, calls)
	}
	if d := testutil.Diff(want, checkpoints()); d != "" {
		t.Fatalf("checkpoints after stale a's writes (-want +got):\n%s", d)
	}
	if err := fc.CommitFenced(ctx, "b", leaseOnly(resB.Leases), count); err != nil || calls != 3 {
		t.Fatalf("b's lease-only fenced commit: %v, commit called %d times in all; want nil, 3", err, calls)
	}
	if d := testutil.Diff(want, checkpoints()); d != "" {
		t.Fatalf("checkpoints after b's lease-only commit (-want +got):\n%s", d)
	}

	// While b's commit is in progress, c's Sync waits for it.
	inCommit, release := make(chan struct{}), make(chan struct{})
	commitDone := make(chan error, 1)
	go func() {
		commitDone <- fc.CommitFenced(ctx, "b", fenced(resB.Leases, "400"), func(context.Context) error {
			close(inCommit)
			<-release
			return nil
		})
	}()
	<-inCommit
	syncDone := make(chan error, 1)
	go func() {
		_, err := store.Sync(ctx, "c")
		syncDone <- err
	}()
	testutil.Eventually(t, 60*time.Second, func() bool {
		var waiting int
		err := pool.QueryRow(ctx, `SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted`).Scan(&waiting)
		return err == nil && waiting == 1
	}, "c's sync is not waiting for the group's lock during b's commit")
	select {
	case err := <-syncDone:
		t.Fatalf("c's sync returned (%v) while b's commit was in progress", err)
	default:
	}
	close(release)
	if err := <-commitDone; err != nil {
		t.Fatalf("b's second fenced commit: %v", err)
	}
	if err := <-syncDone; err != nil {
		t.Fatalf("c's sync after b's commit: %v", err)
	}
	want = both("400")
	if d := testutil.Diff(want, checkpoints()); d != "" {
		t.Fatalf("checkpoints after b's second commit (-want +got):\n%s", d)
	}
}
