package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/client/internal/testserver"
	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestBalanceAndHandOff runs workers in this process against a real
// server, with a lease duration far beyond the test's waits, so that only
// hand-offs can move a lease: a worker alone takes all four shards; a
// second joins and gets two through the first's hand-off; the first stops
// and its Run returns having released its leases, which the second takes.
// Every record is handled exactly once (hand-offs checkpoint first), and
// Run leaves no goroutine behind.
func TestBalanceAndHandOff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := testserver.Start(t)
	srv.CreateStream("s", 4)
	base := runtime.NumGoroutine()

	var handled tally
	waitHandled := func(n int) {
		t.Helper()
		testutil.Eventually(t, 60*time.Second, func() bool { return handled.distinct() == n }, "not all %d records handled", n)
	}
	owners := func() map[string]int {
		resp, err := http.Get(srv.URL + "/api/v1/streams/s/consumer-groups/g")
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var g struct {
			Leases []struct {
				Owner string `json:"owner"`
			} `json:"leases"`
		}
		json.NewDecoder(resp.Body).Decode(&g)
		out := map[string]int{}
		for _, l := range g.Leases {
			out[l.Owner]++
		}
		return out
	}
	run := func(worker string) (stop func() error) {
		g := Runnel(srv.URL, "s", "g", "", consumergroups.Config{LeaseDuration: time.Hour})
		g.Options = Options{Worker: worker, SyncInterval: 100 * time.Millisecond, IdleTimeBetweenReads: 20 * time.Millisecond}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, g, handled.handle) }()
		return func() error { cancel(); return <-done }
	}

	stopA := run("a")
	postNumbered(t, srv, 0, 200)
	waitHandled(200)
	testutil.Eventually(t, 30*time.Second, func() bool { return owners()["a"] == 4 }, "a alone does not hold 4 leases: %v", lazy(func() string { return fmt.Sprint(owners()) }))
	stopB := run("b")
	testutil.Eventually(t, 60*time.Second, func() bool { o := owners(); return o["a"] == 2 && o["b"] == 2 }, "no balance: %v", lazy(func() string { return fmt.Sprint(owners()) }))
	postNumbered(t, srv, 200, 400)
	waitHandled(400)
	if err := stopA(); err != nil {
		t.Fatalf("a's Run: %v", err)
	}
	if o := owners(); o["a"] != 0 {
		t.Fatalf("after a's Run returned it still holds %d leases", o["a"])
	}
	testutil.Eventually(t, 30*time.Second, func() bool { return owners()["b"] == 4 }, "b did not take a's leases: %v", lazy(func() string { return fmt.Sprint(owners()) }))
	postNumbered(t, srv, 400, 500)
	waitHandled(500)
	if err := stopB(); err != nil {
		t.Fatalf("b's Run: %v", err)
	}
	for d, n := range handled.counts() {
		if n != 1 {
			t.Errorf("record %s handled %d times", d, n)
		}
	}
	http.DefaultTransport.(*http.Transport).CloseIdleConnections()
	testutil.WaitGoroutines(t, base)
}

// lazy formats as what its function returns when printed.
type lazy func() string

func (l lazy) String() string { return l() }

// TestStopBeforeFirstSync stops a worker before its first Sync, so the
// group was never created: leaving it leaves nothing, and Run returns
// nil.
func TestStopBeforeFirstSync(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := testserver.Start(t)
	srv.CreateStream("s", 1)
	g := Runnel(srv.URL, "s", "g", "", consumergroups.Config{LeaseDuration: time.Second})
	g.Options = Options{Worker: "a"}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Run(ctx, g, func(context.Context, Batch) error { return nil }); err != nil {
		t.Fatalf("Run stopped before its first Sync: %v", err)
	}
}

// cutStore is a lease store whose calls fail while cut is set: the worker
// is cut off from it.
type cutStore struct {
	LeaseStore
	cut atomic.Bool
}

func (s *cutStore) Sync(ctx context.Context, worker string) (SyncResult, error) {
	if s.cut.Load() {
		return SyncResult{}, errCut
	}
	return s.LeaseStore.Sync(ctx, worker)
}

// TestRetakenShardWaitsForStalledHandler: a worker whose handler stalls
// while the worker is cut off from the lease store for longer than a
// lease duration stops reading the shard, and reads it again once a Sync
// lists the lease again. The shard's new reader must not hand a batch
// while the stalled call of the old one is still running: a worker hands
// a shard's batches one at a time.
func TestRetakenShardWaitsForStalledHandler(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := testserver.Start(t)
	srv.CreateStream("s", 1)
	postRecords(t, srv, `{"key":"k","data":"r"}`)
	const lease = 500 * time.Millisecond
	store := &cutStore{LeaseStore: ServerLeases(srv.URL, "s", "g", "", consumergroups.Config{LeaseDuration: lease})}
	g := Runnel(srv.URL, "s", "g", "", consumergroups.Config{})
	g.Leases = store
	g.Options = Options{Worker: "a", IdleTimeBetweenReads: 20 * time.Millisecond}
	var mu sync.Mutex
	running, calls, overlapped := 0, 0, false
	first, release := make(chan struct{}), make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, g, func(context.Context, Batch) error {
			mu.Lock()
			calls++
			n := calls
			running++
			overlapped = overlapped || running > 1
			mu.Unlock()
			if n == 1 {
				close(first)
				<-release // stalled, deaf to its context
			}
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		})
	}()
	<-first
	store.cut.Store(true)
	time.Sleep(3 * lease) // the worker stops its readers meanwhile
	store.cut.Store(false)
	// Give a new reader that does not wait the time to hand the record
	// again (it would within a Sync interval); one that waits hands
	// nothing.
	testutil.Within(5*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return calls > 1 })
	close(release)
	testutil.Eventually(t, 30*time.Second, func() bool { mu.Lock(); defer mu.Unlock(); return calls > 1 }, "the record was not handed again")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if overlapped {
		t.Fatal("the shard's new reader handed a batch while the old reader's handler call was still running")
	}
}

// TestGracefulStopKeepsLeaseOfBatchInHand: a worker asked to stop while
// its handler holds a batch for longer than a lease duration keeps the
// lease until the batch is done and checkpointed, so the worker that
// takes the shard next goes on after it instead of handing it again.
func TestGracefulStopKeepsLeaseOfBatchInHand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	srv := testserver.Start(t)
	srv.CreateStream("s", 1)
	put := func(data string) { postRecords(t, srv, `{"key":"k","data":"`+data+`"}`) }
	put("r1")
	const lease = 500 * time.Millisecond
	group := func(worker string) Group {
		g := Runnel(srv.URL, "s", "g", "", consumergroups.Config{LeaseDuration: lease})
		g.Options = Options{Worker: worker, IdleTimeBetweenReads: 20 * time.Millisecond}
		return g
	}
	var mu sync.Mutex
	handed := map[string][]string{} // worker → data handed, in order
	record := func(worker string, b Batch) {
		mu.Lock()
		defer mu.Unlock()
		for _, r := range b.Records {
			handed[worker] = append(handed[worker], string(r.Data))
		}
	}
	first, release := make(chan struct{}), make(chan struct{})
	actx, stopA := context.WithCancel(context.Background())
	aDone := make(chan error, 1)
	go func() {
		aDone <- Run(actx, group("a"), func(_ context.Context, b Batch) error {
			record("a", b)
			if len(b.Records) > 0 {
				select {
				case <-first:
				default:
					close(first)
					<-release // a long batch, past the lease duration
				}
			}
			return nil
		})
	}()
	<-first
	bctx, stopB := context.WithCancel(context.Background())
	bDone := make(chan error, 1)
	go func() {
		bDone <- Run(bctx, group("b"), func(_ context.Context, b Batch) error { record("b", b); return nil })
	}()
	stopA() // a graceful stop while the batch is in hand
	time.Sleep(4 * lease)
	close(release)
	if err := <-aDone; err != nil {
		t.Fatalf("a's Run: %v", err)
	}
	put("r2")
	testutil.Eventually(t, 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handed["b"]) > 0 && handed["b"][len(handed["b"])-1] == "r2"
	}, "b did not go on with r2")
	stopB()
	if err := <-bDone; err != nil {
		t.Fatalf("b's Run: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(handed["a"]) != "[r1]" || fmt.Sprint(handed["b"]) != "[r2]" {
		t.Fatalf("handed: a %v, b %v; want a [r1], b [r2] (r1 checkpointed by a before b took the shard)", handed["a"], handed["b"])
	}
}
