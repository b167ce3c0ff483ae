package consumer

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/client/internal/testserver"
	"github.com/runnel-dev/runnel/client/producer"
	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams/kpl"
)

var (
	serverKillFor = flag.Duration("serverkill.for", 12*time.Second, "how long TestClientsWhileServerDies kills and pauses the server")
	serverKillLog = flag.Bool("serverkill.log", false, "TestClientsWhileServerDies logs the workers' warnings and the producer's log even when it passes")
)

// TestClientsWhileServerDies runs the producer and a group of consumer
// workers in this process against a real `runnel serve` (fsync on every
// acknowledgement, a data directory on disk) that is SIGKILLed and
// restarted, and SIGSTOPped for up to a few lease durations, at random
// (-seed, -serverkill.for). Then, after a last restart, it checks:
//
//   - the producer: every record it acknowledged is in the stream; the
//     stream holds no record that was not put; a record is there at most
//     once per attempt its result reports (so once when acknowledged at
//     its first attempt); the first copies of each key's records are in
//     put order (a repeat may land behind later ones: a call the producer
//     gave up on is carried out when the paused server resumes);
//   - the consumers: every record in the stream is handed at least once
//     and none that is not; the group catches up to each shard's end (its
//     checkpoints reach the last record); a checkpoint the server shows
//     never moves back, across restarts too; no shard is handed by two
//     workers at once; no worker's Run returns while the server is away;
//     and each worker logs a failed Sync during every pause of two lease
//     durations or more.
//
// The producer and the workers are told one address, so the server
// restarts on the same one.
func TestClientsWhileServerDies(t *testing.T) {
	if testing.Short() {
		t.Skip("kills the real server for several seconds")
	}
	seed := testutil.Seed(t)
	rng := rand.New(rand.NewPCG(seed, 16))
	k := &serverKill{t: t, start: time.Now(), srv: testserver.Start(t), acked: map[string]producer.Result{},
		failed: map[string]bool{}, attempts: map[string]int{}, syncFailed: map[string][]time.Time{}, handedBy: map[string]string{}, delivered: map[string]int{}, maxCP: map[string]checkpoint{}}
	shards := 1 + rng.IntN(3)
	k.srv.CreateStream("sk", shards)
	aggregate := rng.IntN(2) == 0
	// A request timeout below the longest pause gives up calls the server
	// carries out after it resumes.
	reqTimeout := []time.Duration{time.Second, 5 * time.Second}[rng.IntN(2)]
	k.action("stream sk with %d shards; producer aggregates: %v, request timeout %v", shards, aggregate, reqTimeout)

	// The producer.
	var plogs testutil.Buffer
	p, err := producer.New(context.Background(), producer.Runnel(k.srv.URL, "sk", ""), producer.Options{
		Aggregate: aggregate, Linger: 20 * time.Millisecond, RecordTTL: 5 * time.Minute, RequestTimeout: reqTimeout,
		BackoffMax: time.Second, NoRateLimit: true, OnResult: k.onResult,
		Logger: slog.New(slog.NewTextHandler(&plogs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		t.Fatal(err)
	}
	const putters, keysEach = 3, 3
	k.next = make([][]int, putters)
	stopPut := make(chan struct{})
	var putWG sync.WaitGroup
	for i := range putters {
		k.next[i] = make([]int, keysEach)
		prng := rand.New(rand.NewPCG(seed, uint64(100+i)))
		putWG.Add(1)
		go func() {
			defer putWG.Done()
			for {
				select {
				case <-stopPut:
					return
				default:
				}
				j := prng.IntN(keysEach)
				k.mu.Lock()
				n := k.next[i][j]
				k.next[i][j]++
				k.mu.Unlock()
				key := fmt.Sprintf("k%d-%d", i, j)
				if err := p.Put(context.Background(), key, []byte(fmt.Sprintf("%s/%d", key, n))); err != nil {
					t.Errorf("put %s/%d: %v", key, n, err)
					return
				}
				time.Sleep(time.Duration(prng.IntN(4)) * time.Millisecond)
			}
		}()
	}

	// The consumer workers.
	const workers = 3
	var wlogs testutil.Buffer
	wctx, stopWorkers := context.WithCancel(context.Background())
	defer stopWorkers()
	runDone := make(chan string, workers)
	for i := range workers {
		g := Runnel(k.srv.URL, "sk", "g", "", consumergroups.Config{LeaseDuration: time.Second})
		g.Worker = fmt.Sprintf("w%d", i)
		g.IdleTimeBetweenReads = 50 * time.Millisecond
		g.ShutdownTimeout = 10 * time.Second
		g.Logger = slog.New(syncTap{slog.NewTextHandler(&wlogs, &slog.HandlerOptions{Level: slog.LevelInfo}), k, g.Worker})
		go func() {
			err := Run(wctx, g, k.handler(g.Worker))
			if wctx.Err() == nil {
				k.problem("worker %s: Run returned while the test ran: %v", g.Worker, err)
			}
			runDone <- g.Worker
		}()
	}

	// The checkpoint watcher.
	stopWatch := make(chan struct{})
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		for {
			select {
			case <-stopWatch:
				return
			case <-time.After(20 * time.Millisecond):
			}
			k.watch()
		}
	}()

	// The faults.
	kills, pauses := 0, 0
	for end := time.Now().Add(*serverKillFor); time.Now().Before(end); {
		time.Sleep(time.Duration(100+rng.IntN(900)) * time.Millisecond)
		switch rng.IntN(3) {
		case 0, 1:
			down := time.Duration(rng.IntN(1500)) * time.Millisecond
			k.action("SIGKILL; restart after %v", down)
			k.srv.Kill()
			time.Sleep(down)
			k.srv.Start()
			k.action("restarted")
			kills++
		case 2:
			d := time.Duration(200+rng.IntN(2800)) * time.Millisecond
			k.action("SIGSTOP for %v", d)
			from := time.Now()
			k.srv.Signal(syscall.SIGSTOP)
			time.Sleep(d)
			k.srv.Signal(syscall.SIGCONT)
			k.action("SIGCONT")
			if d >= 2*time.Second {
				k.mu.Lock()
				k.pauses = append(k.pauses, [2]time.Time{from, time.Now()})
				k.mu.Unlock()
			}
			pauses++
		}
	}
	close(stopPut)
	putWG.Wait()
	k.action("last restart")
	k.srv.Kill()
	k.srv.Start()
	fctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := p.Close(fctx); err != nil {
		k.problem("producer close: %v", err)
	}
	k.action("producer closed")

	stored := k.readStream()
	k.action("stream read: %d user records", len(stored))
	k.checkProducer(stored)

	// The group catches up: every stored record handed, each shard's
	// checkpoint at its last record.
	last := map[string]checkpoint{}
	for _, r := range stored {
		last[r.shard] = r.pos()
	}
	caughtUp := testutil.Within(time.Minute, func() bool {
		k.watch()
		k.mu.Lock()
		defer k.mu.Unlock()
		for _, r := range stored {
			if k.delivered[r.id()] == 0 {
				return false
			}
		}
		for shard, pos := range last {
			if cmpPos(k.maxCP[shard], pos) < 0 {
				return false
			}
		}
		return true
	})
	k.action("caught up: %v", caughtUp)
	close(stopWatch)
	<-watchDone
	stopWorkers()
	for range workers {
		<-runDone
	}
	k.checkConsumers(stored, last, caughtUp)

	k.checkSaidSo(workers)
	retries := strings.Count(wlogs.String(), "retrying")
	t.Logf("seed %d: %d kills, %d pauses (%d of 2 s or more); %d records put, %d acknowledged, %d failed, %d in the stream; %d handed (%d again); workers logged %d retries",
		seed, kills, pauses, len(k.pauses), k.putCount(), len(k.acked), len(k.failed), len(stored), k.handed, k.handed-len(k.delivered), retries)
	if kills+pauses > 0 && retries == 0 {
		k.problem("no worker said it was retrying while the server was away")
	}
	t.Logf("actions:\n%s", strings.Join(k.actions, "\n"))
	if *serverKillLog {
		t.Logf("workers' warnings:\n%s\nproducer's log:\n%s", warnings(wlogs.String()), plogs.String())
	}
	if len(k.problems) > 0 {
		t.Errorf("seed %d: %d problems:\n%s\n\nworkers' warnings (tail):\n%s\nproducer's log (tail):\n%s",
			seed, len(k.problems), strings.Join(k.problems[:min(len(k.problems), 40)], "\n"),
			testutil.Tail(warnings(wlogs.String()), 4000), testutil.Tail(plogs.String(), 2000))
	}
}

// serverKill is one run of TestClientsWhileServerDies.
type serverKill struct {
	t     *testing.T
	start time.Time
	srv   *testserver.Server

	mu       sync.Mutex
	actions  []string
	problems []string
	next     [][]int // putter → key → next number
	// The producer's results, by record id (key/n).
	acked    map[string]producer.Result
	failed   map[string]bool
	attempts map[string]int
	// The consumers' deliveries.
	handedBy  map[string]string // shard → worker whose handler runs on it
	delivered map[string]int    // record id → times handed
	handed    int
	// maxCP is the furthest checkpoint the server showed, by shard.
	maxCP map[string]checkpoint
	// pauses are the server's pauses of two lease durations or more;
	// syncFailed the times each worker logged a failed Sync.
	pauses     [][2]time.Time
	syncFailed map[string][]time.Time
}

// syncTap notes when its worker logs a failed Sync.
type syncTap struct {
	slog.Handler
	k      *serverKill
	worker string
}

func (s syncTap) Handle(ctx context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn && strings.Contains(r.Message, "sync failed") {
		s.k.mu.Lock()
		s.k.syncFailed[s.worker] = append(s.k.syncFailed[s.worker], time.Now())
		s.k.mu.Unlock()
	}
	return s.Handler.Handle(ctx, r)
}

func (s syncTap) WithAttrs(as []slog.Attr) slog.Handler {
	return syncTap{s.Handler.WithAttrs(as), s.k, s.worker}
}

func (s syncTap) WithGroup(name string) slog.Handler {
	return syncTap{s.Handler.WithGroup(name), s.k, s.worker}
}

// checkSaidSo checks that each worker logged a failed Sync during each
// pause of two lease durations or more: its Syncs got no answer for that
// long.
func (k *serverKill) checkSaidSo(workers int) {
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, p := range k.pauses {
		for i := range workers {
			w := fmt.Sprintf("w%d", i)
			if !slices.ContainsFunc(k.syncFailed[w], func(at time.Time) bool { return !at.Before(p[0]) && !at.After(p[1]) }) {
				k.problems = append(k.problems, fmt.Sprintf("%8.3fs worker %s said nothing while the server was paused for %v",
					p[0].Sub(k.start).Seconds(), w, p[1].Sub(p[0]).Round(time.Millisecond)))
			}
		}
	}
}

func (k *serverKill) action(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.actions = append(k.actions, fmt.Sprintf("%8.3fs %s", time.Since(k.start).Seconds(), fmt.Sprintf(format, args...)))
}

func (k *serverKill) problem(format string, args ...any) {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.problems = append(k.problems, fmt.Sprintf("%8.3fs %s", time.Since(k.start).Seconds(), fmt.Sprintf(format, args...)))
}

func (k *serverKill) putCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 0
	for _, keys := range k.next {
		for _, c := range keys {
			n += c
		}
	}
	return n
}

func (k *serverKill) onResult(r producer.Result) {
	id := string(r.Data)
	k.mu.Lock()
	defer k.mu.Unlock()
	_, dupA := k.acked[id]
	if dupA || k.failed[id] {
		k.problems = append(k.problems, fmt.Sprintf("record %s reported twice", id))
	}
	k.attempts[id] = r.Attempts
	if r.Err != nil {
		k.failed[id] = true
		return
	}
	k.acked[id] = r
}

// handler notes each batch and that no other worker's handler runs on
// the shard meanwhile.
func (k *serverKill) handler(worker string) Handler {
	return func(ctx context.Context, b Batch) error {
		k.mu.Lock()
		if other := k.handedBy[b.ShardID]; other != "" {
			k.problems = append(k.problems, fmt.Sprintf("%8.3fs %s handed %s while %s's handler ran on it",
				time.Since(k.start).Seconds(), worker, b.ShardID, other))
		}
		k.handedBy[b.ShardID] = worker
		for _, r := range b.Records {
			k.delivered[string(r.Data)]++
			k.handed++
		}
		k.mu.Unlock()
		time.Sleep(time.Millisecond) // a handler takes a while
		k.mu.Lock()
		if k.handedBy[b.ShardID] == worker {
			delete(k.handedBy, b.ShardID)
		}
		k.mu.Unlock()
		return nil
	}
}

// watch reads the group's checkpoints from the server and notes any that
// moved back.
func (k *serverKill) watch() {
	hc := http.Client{Timeout: time.Second}
	resp, err := hc.Get(k.srv.URL + "/api/v1/streams/sk/consumer-groups/g")
	if err != nil {
		return // the server is down or paused
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return
	}
	var g struct {
		Leases []struct {
			Shard string `json:"shard"`
			Seq   string `json:"sequence_number"`
			Sub   uint64 `json:"sub_sequence_number"`
		} `json:"leases"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&g); err != nil {
		return // cut short by a kill
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, l := range g.Leases {
		cp := checkpoint{SequenceNumber: l.Seq, SubSequenceNumber: l.Sub}
		if prev := k.maxCP[l.Shard]; cmpPos(cp, prev) < 0 {
			k.problems = append(k.problems, fmt.Sprintf("%8.3fs checkpoint of %s moved back from %s to %s",
				time.Since(k.start).Seconds(), l.Shard, posString(prev), posString(cp)))
		} else {
			k.maxCP[l.Shard] = cp
		}
	}
}

// readStream reads the stream back, user records unpacked, in shard order.
func (k *serverKill) readStream() []chaosRec {
	var out []chaosRec
	for _, kr := range k.srv.ReadAll(k.t, "sk") {
		users, ok, err := kpl.Deaggregate(kr.Data)
		if err != nil {
			k.problem("record %s/%s: %v", kr.Shard, kr.Seq, err)
			continue
		}
		if !ok {
			users = []kpl.UserRecord{{PartitionKey: kr.Key, Data: kr.Data}}
		}
		for i, u := range users {
			key, n, found := parseChaosData(string(u.Data))
			if !found || key != u.PartitionKey {
				k.problem("record %s/%s: user record %q under key %q was never put", kr.Shard, kr.Seq, u.Data, u.PartitionKey)
				continue
			}
			r := chaosRec{key: key, n: n, shard: kr.Shard, seq: kr.Seq}
			if ok {
				r.sub = uint64(i)
			}
			out = append(out, r)
		}
	}
	return out
}

// checkProducer checks the producer's contract on the stream read back.
func (k *serverKill) checkProducer(stored []chaosRec) {
	k.mu.Lock()
	defer k.mu.Unlock()
	count := map[string]int{}
	perKey := map[string][]int{}
	for _, r := range stored {
		count[r.id()]++
		perKey[r.key] = append(perKey[r.key], r.n)
	}
	// unknown counts the attempts that may have written a record without
	// the producer knowing: every attempt but an acknowledged one.
	dups, unknown, lateRepeats := 0, 0, 0
	for id, n := range k.attempts {
		if _, acked := k.acked[id]; acked {
			n--
		}
		unknown += n
	}
	for i, keys := range k.next {
		for j, next := range keys {
			key := fmt.Sprintf("k%d-%d", i, j)
			for n := range next {
				id := fmt.Sprintf("%s/%d", key, n)
				_, acked := k.acked[id]
				switch c := count[id]; {
				case acked && c == 0:
					k.problems = append(k.problems, fmt.Sprintf("record %s was acknowledged (%s) but is not in the stream", id, k.acked[id].SequenceNumber))
				case !acked && !k.failed[id]:
					k.problems = append(k.problems, fmt.Sprintf("record %s was put but never reported", id))
				case c > 1:
					dups += c - 1
					if c > k.attempts[id] {
						k.problems = append(k.problems, fmt.Sprintf("record %s is in the stream %d times, more than its %d attempts (acknowledged: %v)", id, c, k.attempts[id], acked))
					}
				}
				delete(count, id)
			}
			// Put order: the first copies of a key's records are in put
			// order. A repeat (a call given up without an answer that the
			// server carried out after the retry) may land later.
			var got []int
			seen := map[int]bool{}
			for _, n := range perKey[key] {
				if !seen[n] {
					seen[n] = true
					got = append(got, n)
				} else if n < got[len(got)-1] {
					lateRepeats++
				}
			}
			if !slices.IsSorted(got) {
				want := slices.Clone(got)
				sort.Ints(want)
				k.problems = append(k.problems, fmt.Sprintf("key %s: the first copies are out of put order in the stream:\n%s", key, testutil.Diff(want, got)))
			}
		}
	}
	for id := range count {
		k.problems = append(k.problems, fmt.Sprintf("the stream holds %s, which was never put", id))
	}
	if dups > unknown {
		k.problems = append(k.problems, fmt.Sprintf("%d repeats, more than the %d attempts without a known outcome", dups, unknown))
	}
	k.actions = append(k.actions, fmt.Sprintf("producer: %d repeats in the stream (%d behind later records of their key), %d attempts without a known outcome", dups, lateRepeats, unknown))
}

// checkConsumers checks what the group handed against the stream.
func (k *serverKill) checkConsumers(stored []chaosRec, last map[string]checkpoint, caughtUp bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	inStream := map[string]bool{}
	var missing []string
	for _, r := range stored {
		inStream[r.id()] = true
		if k.delivered[r.id()] == 0 {
			missing = append(missing, r.id())
		}
	}
	if len(missing) > 0 {
		k.problems = append(k.problems, fmt.Sprintf("%d records in the stream never handed (first %v)", len(missing), missing[:min(len(missing), 20)]))
	}
	for id := range k.delivered {
		if !inStream[id] {
			k.problems = append(k.problems, fmt.Sprintf("%s handed but not in the stream", id))
		}
	}
	if !caughtUp {
		var want, got []string
		for shard, pos := range last {
			want = append(want, shard+" "+posString(pos))
			got = append(got, shard+" "+posString(k.maxCP[shard]))
		}
		sort.Strings(want)
		sort.Strings(got)
		k.problems = append(k.problems, "the group did not catch up within a minute of the last restart; checkpoints:\n"+testutil.Diff(want, got))
	}
}

// warnings keeps the lines of a text log at WARN and above.
func warnings(log string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(log, "\n") {
		if !strings.Contains(l, "level=INFO") {
			b.WriteString(l)
		}
	}
	return b.String()
}
