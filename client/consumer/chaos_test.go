package consumer

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kinesis"
	"github.com/aws/aws-sdk-go-v2/service/kinesis/types"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/runnel-dev/runnel/client/internal/testserver"
	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/kinesisconn"
	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
)

var (
	chaosSteps = flag.Int("chaos.steps", 30, "random actions of TestConsumerChaos (per lease store)")
	chaosLog   = flag.Bool("chaos.log", false, "TestConsumerChaos writes its whole log to a file even when it passes")
)

const (
	chaosLease     = time.Second // the group's lease duration
	chaosKeys      = 12          // partition keys k0..k11
	chaosMaxOpen   = 8           // reshards keep at most this many open shards
	chaosMaxLive   = 4           // joins keep at most this many live workers
	chaosGroupName = "g"
)

// TestConsumerChaos runs workers of one group in this process against a
// real server while a random sequence of actions (-seed, -chaos.steps)
// puts records, reshards the stream through the Kinesis API (SplitShard,
// MergeShards, UpdateShardCount), starts workers, stops them gracefully,
// kills them (cancelled without a release, cut off from the lease store),
// cuts workers off from the lease store for more than a lease duration
// (with or without a handler stalled past the expiry), stalls and fails
// handlers, restarts the whole group from its checkpoints, and restarts
// the server (SIGKILL). Records carry a partition key and a per-key
// sequence number. Then it checks the package's contract on the log of
// what happened: every record put is handed at least once; each worker
// and, by first delivery, the group hand each key's records in put order;
// a record is handed again only when its batch was not checkpointed and
// something in the log explains it (its worker was killed or cut off, the
// handler failed it, or its checkpoint or release failed); stored
// checkpoints never go back; and once a shard was handed at an epoch no
// worker hands it at an older one (a worker hands nothing after its lease
// ran out). It runs with the server's lease store and, when PostgreSQL is
// installed, with PostgresLeases.
func TestConsumerChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a server")
	}
	t.Run("server", func(t *testing.T) { runChaos(t, *chaosSteps, false) })
	t.Run("postgres", func(t *testing.T) {
		if bins, _ := filepath.Glob("/usr/lib/postgresql/*/bin/pg_ctl"); len(bins) == 0 {
			t.Skip("PostgreSQL is not installed")
		}
		runChaos(t, max(*chaosSteps/2, 1), true)
	})
}

// chaos is one run: the server, the workers, and the log of everything
// that happened.
type chaos struct {
	t        *testing.T
	rng      *rand.Rand
	srv      *testserver.Server
	kc       *kinesis.Client
	newStore func() LeaseStore
	logs     *testutil.Buffer // the workers' slog output
	start    time.Time
	pool     *pgxpool.Pool // the PostgreSQL lease store's, if used

	seen     map[string]storedLease // the stored leases at the last look
	problems []string               // found while running

	mu       sync.Mutex
	events   []chaosEvent
	inflight map[string]int               // worker|shard → handler calls running
	overlaps []string                     // a worker's handler calls of one shard at once
	epochs   map[string]map[string]uint64 // worker → shard → epoch, by its last Sync
	calls    int

	workers []*chaosWorker // every worker started, in order
	put     []chaosRec     // records put, in put order
	next    map[string]int // key → next per-key sequence number
}

// chaosEvent is one line of the log.
type chaosEvent struct {
	at            time.Duration // since the run started
	kind          string        // action, sync, deliver, handler-error, checkpoint, release
	worker, shard string
	epoch         uint64
	call          int         // the handler call, for deliver and handler-error
	recs          []chaosRec  // deliver: the batch
	pos           *checkpoint // checkpoint and release: the position stored (or not)
	err           string      // checkpoint and release: why it failed
	lost          bool        // checkpoint and release: refused for a lost lease
	fault         string      // action: kill, cut (and zombie) on worker
	text          string
}

type checkpoint = consumergroups.Checkpoint

// chaosRec is a record: its key and per-key number, and once read, where
// it lies.
type chaosRec struct {
	key   string
	n     int
	shard string
	seq   string
	sub   uint64
}

func (r chaosRec) id() string { return fmt.Sprintf("%s/%d", r.key, r.n) }

func (e chaosEvent) String() string {
	return fmt.Sprintf("%6.3fs %s", e.at.Seconds(), e.describe())
}

func (e chaosEvent) describe() string {
	switch e.kind {
	case "action":
		return "ACTION " + e.text
	case "sync":
		return fmt.Sprintf("sync %s holds %s", e.worker, e.text)
	case "deliver":
		ids := make([]string, len(e.recs))
		for i, r := range e.recs {
			ids[i] = r.id()
		}
		return fmt.Sprintf("deliver #%d %s %s@%d [%s]", e.call, e.worker, e.shard, e.epoch, strings.Join(ids, " "))
	case "handler-error":
		return fmt.Sprintf("handler-error #%d %s %s", e.call, e.worker, e.shard)
	default:
		pos := "-"
		if e.pos != nil {
			pos = fmt.Sprintf("%s/%d", e.pos.SequenceNumber, e.pos.SubSequenceNumber)
		}
		res := "ok"
		if e.err != "" {
			res = "FAILED: " + e.err
		}
		return fmt.Sprintf("%s %s %s@%d %s %s", e.kind, e.worker, e.shard, e.epoch, pos, res)
	}
}

func (c *chaos) note(e chaosEvent) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	e.at = time.Since(c.start)
	c.events = append(c.events, e)
	return len(c.events) - 1
}

func (c *chaos) action(format string, args ...any) {
	c.note(chaosEvent{kind: "action", text: fmt.Sprintf(format, args...)})
}

// chaosWorker is one worker's Run and the faults the actions put on it.
type chaosWorker struct {
	name      string
	cancel    context.CancelFunc
	ended     chan struct{} // closed when Run has returned, with err
	err       error
	stopped   bool        // Run's context was cancelled (by the driver)
	dead      atomic.Bool // killed: its store calls fail, its handler hands nothing
	cutUntil  atomic.Int64
	failNext  atomic.Int32 // handler calls left to fail
	stallNext atomic.Int64 // the next handler call sleeps this long (nanos)
}

var errCut = errors.New("chaos: cut off from the lease store")

// chaosStore is a worker's lease store: it fails every call while the
// worker is cut off or dead, and logs Syncs, checkpoints and releases.
type chaosStore struct {
	inner LeaseStore
	c     *chaos
	w     *chaosWorker
}

func (s *chaosStore) cut() bool {
	return s.w.dead.Load() || time.Now().UnixNano() < s.w.cutUntil.Load()
}

func (s *chaosStore) Sync(ctx context.Context, worker string) (SyncResult, error) {
	if s.cut() {
		return SyncResult{}, errCut
	}
	res, err := s.inner.Sync(ctx, worker)
	if err != nil {
		return res, err
	}
	held := map[string]uint64{}
	var desc []string
	for _, l := range res.Leases {
		held[l.Shard] = l.Epoch
		desc = append(desc, fmt.Sprintf("%s@%d", l.Shard, l.Epoch))
	}
	sort.Strings(desc)
	s.c.mu.Lock()
	changed := len(held) != len(s.c.epochs[worker])
	for id, e := range held {
		if s.c.epochs[worker][id] != e {
			changed = true
		}
	}
	s.c.epochs[worker] = held
	if changed {
		s.c.events = append(s.c.events, chaosEvent{at: time.Since(s.c.start), kind: "sync", worker: worker, text: "[" + strings.Join(desc, " ") + "]"})
	}
	s.c.mu.Unlock()
	return res, nil
}

func (s *chaosStore) Checkpoint(ctx context.Context, shard, worker string, epoch uint64, cp consumergroups.Checkpoint) error {
	err := errCut
	if !s.cut() {
		err = s.inner.Checkpoint(ctx, shard, worker, epoch, cp)
	}
	s.c.noteStore("checkpoint", shard, worker, epoch, &cp, err)
	return err
}

func (s *chaosStore) Release(ctx context.Context, shard, worker string, epoch uint64, cp *consumergroups.Checkpoint) error {
	err := errCut
	if !s.cut() {
		err = s.inner.Release(ctx, shard, worker, epoch, cp)
	}
	s.c.noteStore("release", shard, worker, epoch, cp, err)
	return err
}

func (s *chaosStore) Leave(ctx context.Context, worker string) error {
	if s.cut() {
		return errCut
	}
	return s.inner.Leave(ctx, worker)
}

func (c *chaos) noteStore(kind, shard, worker string, epoch uint64, cp *checkpoint, err error) {
	e := chaosEvent{kind: kind, worker: worker, shard: shard, epoch: epoch}
	if cp != nil {
		v := *cp
		e.pos = &v
	}
	if err != nil {
		e.err, e.lost = err.Error(), isLost(err)
	}
	c.note(e)
}

// handler is worker w's handler: it logs each batch it is handed, with
// the epoch of the shard's lease by w's last Sync, and applies w's faults.
func (c *chaos) handler(w *chaosWorker) Handler {
	return func(ctx context.Context, b Batch) error {
		if w.dead.Load() { // a dead process hands nothing
			<-ctx.Done()
			return ctx.Err()
		}
		e := chaosEvent{kind: "deliver", worker: w.name, shard: b.ShardID}
		for _, r := range b.Records {
			key, n, ok := parseChaosData(string(r.Data))
			if !ok || key != r.PartitionKey {
				c.t.Errorf("worker %s was handed a record it was not put: key %q data %q", w.name, r.PartitionKey, r.Data)
			}
			e.recs = append(e.recs, chaosRec{key: key, n: n, shard: b.ShardID, seq: r.SequenceNumber, sub: r.SubSequenceNumber})
		}
		c.mu.Lock()
		c.calls++
		e.call = c.calls
		e.epoch = c.epochs[w.name][b.ShardID]
		e.at = time.Since(c.start)
		c.events = append(c.events, e)
		running := w.name + "|" + b.ShardID
		if c.inflight[running]++; c.inflight[running] > 1 {
			c.overlaps = append(c.overlaps, fmt.Sprintf("event %d: %s handed %s while its handler was still running on it", len(c.events)-1, w.name, b.ShardID))
		}
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.inflight[running]--
			c.mu.Unlock()
		}()
		if d := w.stallNext.Swap(0); d > 0 {
			time.Sleep(time.Duration(d)) // stalled: deaf to ctx too
		}
		for {
			n := w.failNext.Load()
			if n <= 0 {
				return nil
			}
			if w.failNext.CompareAndSwap(n, n-1) {
				c.note(chaosEvent{kind: "handler-error", worker: w.name, shard: b.ShardID, call: e.call})
				return errors.New("chaos: handler failed")
			}
		}
	}
}

func parseChaosData(s string) (key string, n int, ok bool) {
	key, num, found := strings.Cut(s, "/")
	if !found {
		return "", 0, false
	}
	_, err := fmt.Sscanf(num, "%d", &n)
	return key, n, err == nil
}

func runChaos(t *testing.T, steps int, postgres bool) {
	c := &chaos{t: t, rng: testutil.Rand(t, 1), epochs: map[string]map[string]uint64{}, inflight: map[string]int{}, next: map[string]int{}, logs: &testutil.Buffer{}}
	c.srv = testserver.Start(t, "--log-level", "info")
	c.srv.CreateStream("s", 1+c.rng.IntN(3))
	c.start = time.Now()
	c.kc = c.client()
	cfg := consumergroups.Config{LeaseDuration: chaosLease}
	if postgres {
		pg := testsrv.StartPostgres(t)
		pool := pg.Pool(t)
		t.Cleanup(pool.Close)
		c.pool = pool
		store, err := PostgresLeases(context.Background(), pool, c.kc, "s", chaosGroupName, cfg, PostgresOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c.newStore = func() LeaseStore { return store }
	} else {
		c.newStore = func() LeaseStore { return ServerLeases(c.srv.URL, "s", chaosGroupName, "", cfg) }
	}
	t.Cleanup(func() {
		for _, w := range c.workers {
			if !w.stopped {
				w.dead.Store(true)
				w.cancel()
			}
		}
		for _, w := range c.workers {
			<-w.ended
		}
	})

	c.join()
	for i := 0; i < steps; i++ {
		c.step()
		c.observe()
		time.Sleep(time.Duration(c.rng.IntN(150)) * time.Millisecond)
	}
	c.settle()
	c.observe()
	c.check()
}

// step runs one random action.
func (c *chaos) step() {
	live := c.live()
	switch p := c.rng.IntN(100); {
	case p < 30:
		c.putRecords(1 + c.rng.IntN(40))
	case p < 38:
		if len(live) < chaosMaxLive {
			c.join()
		}
	case p < 44:
		if len(live) > 0 {
			c.leave(live[c.rng.IntN(len(live))])
		}
	case p < 50:
		if len(live) > 0 {
			c.kill(live[c.rng.IntN(len(live))])
		}
	case p < 56:
		if len(live) > 0 {
			w := live[c.rng.IntN(len(live))]
			d := chaosLease*3/2 + time.Duration(c.rng.IntN(int(chaosLease)))
			c.note(chaosEvent{kind: "action", worker: w.name, fault: "cut", text: fmt.Sprintf("cut %s off the lease store for %v", w.name, d)})
			w.cutUntil.Store(time.Now().Add(d).UnixNano())
		}
	case p < 61:
		if len(live) > 0 {
			w := live[c.rng.IntN(len(live))]
			c.note(chaosEvent{kind: "action", worker: w.name, fault: "cut",
				text: fmt.Sprintf("zombie %s: cut off for %v, its next handler call stalled for %v", w.name, 2*chaosLease, 2*chaosLease)})
			w.stallNext.Store(int64(2 * chaosLease))
			w.cutUntil.Store(time.Now().Add(2 * chaosLease).UnixNano())
		}
	case p < 69:
		if len(live) > 0 {
			w := live[c.rng.IntN(len(live))]
			n := 1 + c.rng.IntN(3)
			c.action("fail the next %d handler calls of %s", n, w.name)
			w.failNext.Add(int32(n))
		}
	case p < 73:
		if len(live) > 0 {
			w := live[c.rng.IntN(len(live))]
			d := chaosLease*3/2 + time.Duration(c.rng.IntN(int(chaosLease)))
			c.action("stall the next handler call of %s for %v", w.name, d)
			w.stallNext.Store(int64(d))
		}
	case p < 79:
		c.split()
	case p < 85:
		c.merge()
	case p < 89:
		c.updateShardCount()
	case p < 91:
		c.action("restart the group: stop every worker, start new ones")
		for _, w := range live {
			c.leave(w)
		}
		for n := 1 + c.rng.IntN(3); n > 0; n-- {
			c.join()
		}
	case p < 93:
		c.action("restart the server (SIGKILL)")
		c.srv.Restart()
		c.kc = c.client() // no connection to the old process
	default:
		d := time.Duration(c.rng.IntN(int(chaosLease)))
		c.action("sleep %v", d)
		time.Sleep(d)
	}
}

// live returns the workers neither stopped nor killed.
func (c *chaos) live() []*chaosWorker {
	var out []*chaosWorker
	for _, w := range c.workers {
		if !w.stopped {
			out = append(out, w)
		}
	}
	return out
}

func (c *chaos) join() {
	w := &chaosWorker{name: fmt.Sprintf("w%d", len(c.workers)), ended: make(chan struct{})}
	g := Group{Stream: "s", Kinesis: c.srv.Client(), Leases: &chaosStore{inner: c.newStore(), c: c, w: w}}
	g.Options = Options{Worker: w.name, MaxRecords: 1 + c.rng.IntN(20), IdleTimeBetweenReads: 20 * time.Millisecond,
		RetryBackoff: 20 * time.Millisecond, ShutdownTimeout: 3 * chaosLease,
		Logger: slog.New(slog.NewTextHandler(c.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	c.action("join %s (MaxRecords %d)", w.name, g.MaxRecords)
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	c.workers = append(c.workers, w)
	go func() { w.err = Run(ctx, g, c.handler(w)); close(w.ended) }()
}

// leave stops w gracefully and waits for its Run.
func (c *chaos) leave(w *chaosWorker) {
	c.action("stop %s gracefully", w.name)
	w.stopped = true
	w.cancel()
	<-w.ended
	err := w.err
	if err != nil && !errors.Is(err, errCut) { // a worker cut off cannot leave
		c.problems = append(c.problems, fmt.Sprintf("%s's Run after a graceful stop: %v", w.name, err))
	}
	c.action("%s stopped (Run: %v)", w.name, err)
}

// kill makes w a dead process: its store calls fail and its handler hands
// nothing from now on; its Run ends in the background without releasing.
func (c *chaos) kill(w *chaosWorker) {
	c.note(chaosEvent{kind: "action", worker: w.name, fault: "kill", text: "kill " + w.name})
	w.stopped = true
	w.dead.Store(true)
	w.cancel()
}

// putRecords puts n records of random keys in one PutRecords call.
func (c *chaos) putRecords(n int) {
	var entries []types.PutRecordsRequestEntry
	var recs []chaosRec
	for range n {
		key := fmt.Sprintf("k%d", c.rng.IntN(chaosKeys))
		r := chaosRec{key: key, n: c.next[key]}
		c.next[key]++
		recs = append(recs, r)
		entries = append(entries, types.PutRecordsRequestEntry{PartitionKey: aws.String(key), Data: []byte(r.id())})
	}
	out, err := c.kc.PutRecords(context.Background(), &kinesis.PutRecordsInput{StreamName: aws.String("s"), Records: entries})
	if err != nil {
		c.fail(fmt.Sprintf("put: %v", err))
	}
	if n := aws.ToInt32(out.FailedRecordCount); n > 0 {
		c.fail(fmt.Sprintf("put: %d records failed: %+v", n, out.Records))
	}
	c.put = append(c.put, recs...)
	c.action("put %d records", n)
}

// client returns a Kinesis client of the server for the test's own puts
// and reshards, which hands net/http request bodies the SDK cannot close
// (see client/producer/body.go: else a call can fail although the server
// did it, and a put sent again would put its records twice).
func (c *chaos) client() *kinesis.Client {
	return kinesis.New(c.srv.Client().Options(), func(o *kinesis.Options) { o.HTTPClient = ownBodyClient{o.HTTPClient} })
}

type ownBodyClient struct{ next kinesis.HTTPClient }

func (c ownBodyClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return c.next.Do(r)
	}
	b, err := io.ReadAll(r.Body)
	r.Body.Close()
	if err != nil {
		return nil, err
	}
	own := *r
	own.Body = io.NopCloser(bytes.NewReader(b))
	own.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	own.ContentLength = int64(len(b))
	return c.next.Do(&own)
}

// openShards lists the stream's open shards by starting hash key.
func (c *chaos) openShards() []types.Shard {
	out, err := c.kc.ListShards(context.Background(), &kinesis.ListShardsInput{StreamName: aws.String("s")})
	if err != nil {
		c.fail(fmt.Sprintf("list shards: %v", err))
	}
	var open []types.Shard
	for _, s := range out.Shards {
		if s.SequenceNumberRange == nil || s.SequenceNumberRange.EndingSequenceNumber == nil {
			open = append(open, s)
		}
	}
	slices.SortFunc(open, func(a, b types.Shard) int {
		return bigKey(a.HashKeyRange.StartingHashKey).Cmp(bigKey(b.HashKeyRange.StartingHashKey))
	})
	return open
}

func bigKey(s *string) *big.Int {
	v, _ := new(big.Int).SetString(aws.ToString(s), 10)
	return v
}

// reshard runs a resharding call, again while the stream is still
// updating from the previous one.
func (c *chaos) reshard(what string, call func() error) {
	for range 200 {
		err := call()
		if err == nil {
			c.action("%s", what)
			return
		}
		if kinesisconn.Code(err) != "ResourceInUseException" {
			c.fail(fmt.Sprintf("%s: %v", what, err))
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.fail(fmt.Sprintf("%s: the stream stayed UPDATING", what))
}

func (c *chaos) split() {
	open := c.openShards()
	if len(open) >= chaosMaxOpen {
		return
	}
	s := open[c.rng.IntN(len(open))]
	lo, hi := bigKey(s.HashKeyRange.StartingHashKey), bigKey(s.HashKeyRange.EndingHashKey)
	mid := new(big.Int).Add(lo, new(big.Int).Rsh(new(big.Int).Sub(hi, lo), 1))
	mid.Add(mid, big.NewInt(1))
	c.reshard(fmt.Sprintf("split %s at %s", aws.ToString(s.ShardId), mid), func() error {
		_, err := c.kc.SplitShard(context.Background(), &kinesis.SplitShardInput{StreamName: aws.String("s"),
			ShardToSplit: s.ShardId, NewStartingHashKey: aws.String(mid.String())})
		return err
	})
}

func (c *chaos) merge() {
	open := c.openShards()
	var pairs [][2]types.Shard
	for i := 0; i+1 < len(open); i++ {
		end := bigKey(open[i].HashKeyRange.EndingHashKey)
		if end.Add(end, big.NewInt(1)).Cmp(bigKey(open[i+1].HashKeyRange.StartingHashKey)) == 0 {
			pairs = append(pairs, [2]types.Shard{open[i], open[i+1]})
		}
	}
	if len(pairs) == 0 {
		return
	}
	p := pairs[c.rng.IntN(len(pairs))]
	if c.rng.IntN(2) == 0 {
		p[0], p[1] = p[1], p[0] // either order, as AWS allows
	}
	c.reshard(fmt.Sprintf("merge %s and %s", aws.ToString(p[0].ShardId), aws.ToString(p[1].ShardId)), func() error {
		_, err := c.kc.MergeShards(context.Background(), &kinesis.MergeShardsInput{StreamName: aws.String("s"),
			ShardToMerge: p[0].ShardId, AdjacentShardToMerge: p[1].ShardId})
		return err
	})
}

func (c *chaos) updateShardCount() {
	n := len(c.openShards())
	lo, hi := (n+1)/2, min(2*n, chaosMaxOpen)
	var targets []int
	for k := lo; k <= hi; k++ {
		if k != n {
			targets = append(targets, k)
		}
	}
	if len(targets) == 0 {
		return
	}
	k := targets[c.rng.IntN(len(targets))]
	c.reshard(fmt.Sprintf("update shard count %d -> %d", n, k), func() error {
		_, err := c.kc.UpdateShardCount(context.Background(), &kinesis.UpdateShardCountInput{StreamName: aws.String("s"),
			TargetShardCount: aws.Int32(int32(k)), ScalingType: types.ScalingTypeUniformScaling})
		return err
	})
}

// settle lifts every fault, makes sure a worker runs, waits until every
// record put was handed, and stops every worker gracefully.
func (c *chaos) settle() {
	c.action("settle: lift faults, wait for every record")
	for _, w := range c.workers {
		w.cutUntil.Store(0)
		w.stallNext.Store(0)
		w.failNext.Store(0)
	}
	if len(c.live()) == 0 {
		c.join()
	}
	handled := func() map[string]bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		got := map[string]bool{}
		for _, e := range c.events {
			for _, r := range e.recs {
				got[r.id()] = true
			}
		}
		return got
	}
	if !testutil.Within(90*time.Second, func() bool { return len(handled()) >= len(c.put) }) {
		got := handled()
		var missing []string
		for _, r := range c.put {
			if !got[r.id()] {
				missing = append(missing, r.id())
			}
		}
		c.fail(fmt.Sprintf("%d of %d records put were never handed: %s", len(missing), len(c.put), strings.Join(missing, " ")))
	}
	for _, w := range c.live() {
		c.leave(w)
	}
	for _, w := range c.workers {
		<-w.ended
	}
}

// writeLog writes the whole log (events and the workers' slog output)
// to a file and returns its name, and the action log (actions, handler
// errors, failed store calls).
func (c *chaos) writeLog() (file, actions string) {
	c.mu.Lock()
	events := slices.Clone(c.events)
	c.mu.Unlock()
	var act, all strings.Builder
	for i, e := range events {
		fmt.Fprintf(&all, "%5d %s\n", i, e)
		if e.kind == "action" || e.kind == "handler-error" || e.err != "" {
			fmt.Fprintf(&act, "%5d %s\n", i, e)
		}
	}
	f, err := os.CreateTemp("", "consumerchaos-*.log")
	if err != nil {
		return "(not written: " + err.Error() + ")", act.String()
	}
	fmt.Fprintf(f, "%s\n--- worker logs\n%s\n--- server logs\n%s", all.String(), c.logs.String(), c.srv.AllLogs())
	f.Close()
	return f.Name(), act.String()
}

// fail reports the problems found, with the seed, the action log, and the
// file with the whole log.
func (c *chaos) fail(problems ...string) {
	c.t.Helper()
	file, actions := c.writeLog()
	c.t.Fatalf("seed %d: %d problems:\n%s\naction log (event numbers as in the whole log, %s):\n%s",
		testutil.Seed(c.t), len(problems), strings.Join(problems, "\n"), file, actions)
}
