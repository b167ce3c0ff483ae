package main

import (
	"bytes"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// postJSON posts body and reports whether the server answered 200.
func postJSON(hc *http.Client, url, body string) bool {
	resp, err := hc.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == 200
}

// produceCrashRecords puts total records into the crash job's input
// stream in batches of 250, event times 2 ms apart and increasing with
// the put order, each batch retried until acknowledged (a retry may
// duplicate a batch whose outcome was unknown: 500 ms of event time at
// most, far within the job's 5 s watermark bound, so never late).
func produceCrashRecords(hc *http.Client, base string, seed int64, total int, produced *atomic.Int64, done chan<- struct{}) {
	produceEvents(hc, base, seed, total, 250, 2, 8*time.Millisecond, produced, done)
}

// produceEvents puts total records (eventBatch's, from seed, event times
// gap ms apart) into the stream events in batches of batch, pause apart,
// each retried until acknowledged; it counts them in produced and closes
// done when it is through.
func produceEvents(hc *http.Client, base string, seed int64, total, batch int, gap int64, pause time.Duration, produced *atomic.Int64, done chan<- struct{}) {
	defer close(done)
	rng := rand.New(rand.NewSource(seed))
	for i := 0; i < total; i += batch {
		putUntilAcked(hc, base, eventBatch(rng, i, min(i+batch, total), gap))
		produced.Add(int64(min(batch, total-i)))
		time.Sleep(pause)
	}
}

// TestCrashReshardExactlyOnce is TestCrashJobExactlyOnce with the input
// stream resharded while records are produced and the server is killed:
// its shard count goes 4 → 8 → 4 → 8 … (every shard split in two, then
// the halves merged back), each reshard at a random moment and retried
// across crashes until the server acknowledges it. The job reads every
// child shard after its parents and resumes from checkpoints that record
// parents read to their end. At the end the result stream and the
// dashboard must each hold exactly the windows a batch computation over
// the input gives: none missing, none twice, none wrong. Event times
// increase with the put order, so every shard, child shards included,
// stays within the 5 s watermark bound and no record is late whatever
// the interleaving.
func TestCrashReshardExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("exactly-once reshard crash test skipped in -short mode: it runs the real binary for about a minute")
	}
	runCrashReshard(t, func(hc *http.Client, base string, rng *rand.Rand) (string, string) {
		// From what the stream has: a reshard whose answer a crash took
		// is not done twice.
		if len(openShards(hc, base)) == 8 {
			return "/shard-count", `{"target":4}`
		}
		return "/shard-count", `{"target":8}`
	})
}

// TestCrashReshardRandomExactlyOnce reshards with random splits of open
// shards and shard count updates to 2–8 (whose uneven boundaries split
// shards and merge pieces of different parents).
func TestCrashReshardRandomExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("exactly-once reshard crash test skipped in -short mode: it runs the real binary for about a minute")
	}
	runCrashReshard(t, func(hc *http.Client, base string, rng *rand.Rand) (string, string) {
		if rng.Intn(2) == 0 {
			if open := openShards(hc, base); len(open) > 0 && len(open) < 12 {
				return "/split", fmt.Sprintf(`{"shard":%q}`, open[rng.Intn(len(open))])
			}
		}
		return "/shard-count", fmt.Sprintf(`{"target":%d}`, 2+rng.Intn(7))
	})
}

// openShards lists the IDs of the open shards of the crash job's input
// stream (none when the server does not answer).
func openShards(hc *http.Client, base string) []string {
	ranges, err := openShardRanges(hc, base, "events")
	if err != nil {
		return nil
	}
	var out []string
	for _, r := range ranges {
		out = append(out, r.id)
	}
	return out
}

// runCrashReshard runs the crash job while producing and while next picks
// reshards (a path under the stream and a body), each after a random
// pause and tried again, with a new pick, until the server takes one.
func runCrashReshard(t *testing.T, next func(hc *http.Client, base string, rng *rand.Rand) (string, string)) {
	srv, base, hc := startCrashJob(t)

	const total = 60_000
	var produced atomic.Int64
	done := make(chan struct{})
	go produceCrashRecords(hc, base, 2, total, &produced, done)

	// The resharder, until the producer is done.
	var reshards atomic.Int64
	reshardDone := make(chan struct{})
	stopReshard := make(chan struct{})
	go func() {
		defer close(reshardDone)
		rng := rand.New(rand.NewSource(time.Now().UnixNano()))
		for {
			select {
			case <-stopReshard:
				return
			case <-time.After(time.Duration(200+rng.Intn(1500)) * time.Millisecond):
			}
			for {
				path, body := next(hc, base, rng)
				if postJSON(hc, base+"/api/v1/streams/events"+path, body) {
					break
				}
				select {
				case <-stopReshard:
					return
				case <-time.After(50 * time.Millisecond):
				}
			}
			reshards.Add(1)
		}
	}()

	// Crashes go on until the producer is done and at least 3 reshards
	// were taken, so that a fast producer still sees reshards and crashes
	// interleave.
	enough := make(chan struct{})
	go func() {
		defer close(enough)
		<-done
		testutil.Within(2*time.Minute, func() bool { return reshards.Load() >= 3 })
	}()
	kills, selfKills := srv.crashUntil(enough)
	close(stopReshard)
	<-reshardDone
	t.Logf("produced %d records; %d reshards; %d SIGKILLs by the test, %d by failpoints",
		produced.Load(), reshards.Load(), kills, selfKills)
	if kills+selfKills < 5 {
		t.Fatalf("only %d crashes", kills+selfKills)
	}
	if reshards.Load() < 3 {
		t.Fatalf("only %d reshards", reshards.Load())
	}
	// A last restart without failpoints; end records far ahead in event
	// time on every shard let the watermark pass every window.
	srv.Kill()
	srv.Env = nil
	srv.start()
	finishCrashJob(t, srv, hc, base)
}

// putEndRecords puts records far ahead in event time under 64 keys, so
// that every open shard gets one and the watermark passes every window.
func putEndRecords(t *testing.T, hc *http.Client, base string) {
	t.Helper()
	var ends []string
	for i := range 64 {
		ends = append(ends, fmt.Sprintf(`{"key":"end-%d","json":{"k":"end","v":0,"ts":%d}}`, i, crashBase+int64(10_000_000)))
	}
	resp, err := hc.Post(base+"/api/v1/streams/events/records", "application/json",
		bytes.NewReader([]byte(`{"records":[`+strings.Join(ends, ",")+`]}`)))
	if err != nil {
		t.Fatalf("put end records: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("put end records: %s", resp.Status)
	}
}

// waitDashboard waits until the dashboard holds n rows (and a little
// longer, to see any extra arrive) and returns its rows.
func waitDashboard(t *testing.T, base string, n int) []map[string]any {
	t.Helper()
	testutil.Within(90*time.Second, func() bool { return len(dashboardRows(t, base)) >= n })
	time.Sleep(1500 * time.Millisecond)
	return dashboardRows(t, base)
}

// stopJob stops job id cleanly, so that its last checkpoint commits (or
// publishes) what its sinks hold.
func stopJob(t *testing.T, hc *http.Client, base, id string) {
	t.Helper()
	req, _ := http.NewRequest("DELETE", base+"/api/v1/jobs/"+id, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("stop job: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("stop job: %s", resp.Status)
	}
}

func boardWindows(board []map[string]any) map[windowKey][]windowVal {
	got := map[windowKey][]windowVal{}
	for _, r := range board {
		k := windowKey{r["key"].(string), int64(r["window_start"].(float64))}
		got[k] = append(got[k], windowVal{int64(r["n"].(float64)), int64(r["total"].(float64))})
	}
	return got
}

// TestCrashBeforeFirstCheckpoint kills the server during the job's first
// checkpoint (before its manifest is written, so no checkpoint is
// complete) after the job read its whole input, and restarts it. The job
// has nothing to restore, so it starts over from the beginning of the
// stream; its results must still be exactly those of a batch computation.
func TestCrashBeforeFirstCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("crash before the first checkpoint skipped in -short mode: it runs the real binary")
	}
	srv := newSupervised(t)
	srv.start()
	base := srv.URL
	hc := &http.Client{Timeout: 5 * time.Second}
	srv.CreateStream("events", 4)
	var produced atomic.Int64
	done := make(chan struct{})
	produceCrashRecords(hc, base, 2, 5_000, &produced, done)

	// The first checkpoint (300 ms after the start) kills the server at
	// before-manifest: its prepare step and barrier wrote the window
	// state of every record read to the live store.
	srv.Kill()
	srv.Env = []string{"RUNNEL_FAILPOINTS=before-manifest=1"}
	srv.start()
	if st, b := srv.Do("POST", "/api/v1/jobs", "application/yaml", crashJob); st != 201 {
		t.Fatalf("submit: %d %s", st, b)
	}
	select {
	case <-srv.Exited():
	case <-time.After(30 * time.Second):
		t.Fatal("the failpoint did not kill the server at the first checkpoint")
	}
	srv.Env = nil
	srv.start()
	finishCrashJob(t, srv, hc, base)
}
