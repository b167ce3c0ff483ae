package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/streams"
)

// The job of the exactly-once crash test: event-time tumbling windows
// over a 4-shard stream, results to a stream sink and a dashboard,
// checkpoints every 300 ms.
var crashJob = windowJob("exactly", "\n  shards: 4", "5s", "300ms")

// windowJob is the job file name of the crash and restore tests: 10 s
// event-time tumbling windows per key r.k over the stream events (with
// the source lines extra), counting and summing v, with the results to
// the stream results and a dashboard, checkpointed every every.
func windowJob(name, extra, watermark, every string) string {
	return perKeyJob(name, "  stream: events"+extra, watermark,
		"  - {id: out, input: per-key, stream: {name: results}}\n"+
			"  - {id: board, input: per-key, dashboard: {title: Per key, rows: 100000}}", every)
}

const crashBase = int64(1_700_000_000_000)

type windowKey struct {
	Key   string
	Start int64
}

type windowVal struct{ N, Total int64 }

// supervised is a server whose own deaths (failpoints) are noticed.
type supervised struct {
	*testbin.Server
	t *testing.T
}

func newSupervised(t *testing.T, env ...string) *supervised {
	return &supervised{Server: testbin.New(t, testbin.Options{Env: env, Client: &http.Client{Timeout: 5 * time.Second}}), t: t}
}

// start starts the server, and again when it dies before it is ready: a
// failpoint can fire during a restore's first checkpoint.
func (s *supervised) start() {
	s.t.Helper()
	for {
		err := s.TryStart()
		if err == nil {
			return
		}
		if !errors.Is(err, testbin.ErrExited) {
			s.t.Fatal(err)
		}
	}
}

// killWhileProducing kills the server with -9 and starts it again at
// random moments (rng) until the producer reports on produced and the
// server was killed at least minKills times; it returns the kills. A
// producer's error fails the test.
func (s *supervised) killWhileProducing(rng *rand.Rand, produced <-chan error, minKills int) (kills int) {
	s.t.Helper()
	for done := false; !done || kills < minKills; {
		select {
		case err := <-produced:
			if err != nil {
				s.t.Fatal(err)
			}
			done, produced = true, nil
		case <-time.After(time.Duration(300+rng.Intn(1500)) * time.Millisecond):
			s.Kill()
			s.start()
			kills++
		}
	}
	return kills
}

// crashUntil SIGKILLs the server at random moments, and restarts it after
// those and after the failpoints kill it, until done is closed, the test
// killed it at least 3 times and the failpoints at least twice.
func (s *supervised) crashUntil(done <-chan struct{}) (kills, selfKills int) {
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for producing := true; producing || kills < 3 || selfKills < 2; {
		select {
		case <-done:
			producing = false
			done = nil
		case <-s.Exited():
			selfKills++
			s.start()
		case <-time.After(time.Duration(300+rng.Intn(2500)) * time.Millisecond):
			s.Kill()
			kills++
			s.start()
		}
	}
	return kills, selfKills
}

// finishCrashJob puts end records far ahead in event time on every shard
// (the watermark then passes every window), waits for the dashboard to
// hold every window of the input, stops the job cleanly and the server,
// and compares the dashboard and the result stream with a batch
// computation over the input stream.
func finishCrashJob(t *testing.T, srv *supervised, hc *http.Client, base string) {
	t.Helper()
	putEndRecords(t, hc, base)
	want := expectedWindows(t, hc, base)
	board := waitDashboard(t, base, len(want))
	stopJob(t, hc, base, "exactly")
	srv.Kill()
	compareWindows(t, "dashboard", want, boardWindows(board))
	compareWindows(t, "result stream", want, streamWindows(t, srv.Data))
}

// TestCrashJobExactlyOnce produces 100,000 records into a 4-shard stream
// while a job windows them; the server is SIGKILLed at random moments and
// kills itself at checkpoint steps (RUNNEL_FAILPOINTS), at least 5 times
// in all, and every restart resumes the job by itself. At the end the
// result stream and the dashboard must each hold exactly the windows a
// batch computation over the input stream gives: none missing, none
// twice, none wrong.
func TestCrashJobExactlyOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("exactly-once crash test skipped in -short mode: it runs the real binary for about a minute")
	}
	srv, base, hc := startCrashJob(t)

	const total = 100_000
	var produced atomic.Int64
	done := make(chan struct{})
	go produceCrashRecords(hc, base, 1, total, &produced, done)

	kills, selfKills := srv.crashUntil(done)
	t.Logf("produced %d records; %d SIGKILLs by the test, %d by failpoints", produced.Load(), kills, selfKills)
	if kills+selfKills < 5 {
		t.Fatalf("only %d crashes", kills+selfKills)
	}
	// A last restart without failpoints; end records far ahead in event
	// time on every shard let the watermark pass every window.
	srv.Kill()
	srv.Env = nil
	srv.start()
	finishCrashJob(t, srv, hc, base)
}

// startCrashJob starts the server with the crash failpoints armed and
// submits crashJob.
func startCrashJob(t *testing.T) (*supervised, string, *http.Client) {
	t.Helper()
	srv := newSupervised(t, "RUNNEL_FAILPOINTS=aligned=0.01,before-snapshot=0.01,after-snapshot=0.01,before-manifest=0.01,after-manifest=0.02,before-commit=0.02,after-commit=0.01")
	srv.start()
	base := srv.URL
	hc := &http.Client{Timeout: 5 * time.Second}
	if st, b := srv.Do("POST", "/api/v1/jobs", "application/yaml", crashJob); st != 201 {
		t.Fatalf("submit: %d %s", st, b)
	}
	return srv, base, hc
}

func dashboardRows(t *testing.T, base string) []map[string]any {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/jobs/exactly/results?sink=board&format=json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rows []map[string]any
	if resp.StatusCode == 200 {
		json.NewDecoder(resp.Body).Decode(&rows)
	}
	return rows
}

// readStream returns every record of a stream from a stopped server's
// data directory.
func readStream(t *testing.T, data, name string) [][]byte {
	t.Helper()
	st, err := streams.Open(data, streams.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	info, err := st.DescribeStream(name)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, sh := range info.Shards {
		var from uint64
		for {
			res, err := st.Read(name, sh.ID, from, streams.MaxReadRecords, 0)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res.Records {
				out = append(out, r.Data)
			}
			if len(res.Records) == 0 {
				break
			}
			from = res.Next
		}
	}
	return out
}

// expectedWindows is the batch computation over the input stream as the
// running server serves it (records a retry duplicated included). It
// reads through the server's API, not the files: the server writes to its
// data directory all the while, so a copy of it may be torn.
func expectedWindows(t *testing.T, hc *http.Client, base string) map[windowKey]windowVal {
	t.Helper()
	want := map[windowKey]windowVal{}
	for _, d := range readStreamAPI(t, hc, base, "events") {
		var r struct {
			K  string `json:"k"`
			V  int64  `json:"v"`
			TS int64  `json:"ts"`
		}
		if err := json.Unmarshal(d, &r); err != nil {
			t.Fatal(err)
		}
		if r.K == "end" {
			continue
		}
		k := windowKey{r.K, r.TS / 10000 * 10000}
		w := want[k]
		want[k] = windowVal{w.N + 1, w.Total + r.V}
	}
	return want
}

// readStreamAPI reads every shard of a stream, open or closed, from its
// start to where it ends or is caught up, through the server's API.
func readStreamAPI(t *testing.T, hc *http.Client, base, name string) [][]byte {
	t.Helper()
	getJSON := func(url string, v any) {
		t.Helper()
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET %s: %s %s", url, resp.Status, b)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
	}
	var info struct {
		Shards []struct {
			ID string `json:"id"`
		} `json:"shards"`
	}
	getJSON(base+"/api/v1/streams/"+name, &info)
	var out [][]byte
	for _, sh := range info.Shards {
		q := "from=trim_horizon"
		for {
			var res struct {
				Records []struct {
					Data string `json:"data"`
				} `json:"records"`
				Next uint64 `json:"next_position"`
			}
			getJSON(fmt.Sprintf("%s/api/v1/streams/%s/records?shard=%s&%s", base, name, sh.ID, q), &res)
			if len(res.Records) == 0 {
				break
			}
			for _, r := range res.Records {
				out = append(out, []byte(r.Data))
			}
			q = fmt.Sprintf("position=%d", res.Next)
		}
	}
	return out
}

func streamWindows(t *testing.T, data string) map[windowKey][]windowVal {
	t.Helper()
	got := map[windowKey][]windowVal{}
	for _, d := range readStream(t, data, "results") {
		var r struct {
			Key   string `json:"key"`
			Start any    `json:"window_start"`
			N     int64  `json:"n"`
			Total int64  `json:"total"`
		}
		if err := json.Unmarshal(d, &r); err != nil {
			t.Fatalf("result record %s: %v", d, err)
		}
		var start int64
		switch v := r.Start.(type) {
		case float64:
			start = int64(v)
		case string:
			ts, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				t.Fatalf("result record %s: window_start: %v", d, err)
			}
			start = ts.UnixMilli()
		default:
			t.Fatalf("result record %s: window_start is %T", d, v)
		}
		k := windowKey{r.Key, start}
		got[k] = append(got[k], windowVal{r.N, r.Total})
	}
	return got
}

func compareWindows(t *testing.T, what string, want map[windowKey]windowVal, got map[windowKey][]windowVal) {
	t.Helper()
	missing, dup, wrong := 0, 0, 0
	var examples []string
	note := func(s string) {
		if len(examples) < 8 {
			examples = append(examples, s)
		}
	}
	for k, w := range want {
		g := got[k]
		switch {
		case len(g) == 0:
			missing++
			note(fmt.Sprintf("missing %v", k))
		case len(g) > 1:
			dup++
			note(fmt.Sprintf("%v %d times: %v", k, len(g), g))
		case g[0] != w:
			wrong++
			note(fmt.Sprintf("%v = %v, want %v", k, g[0], w))
		}
	}
	extra := 0
	for k := range got {
		if _, ok := want[k]; !ok && k.Key != "end" {
			extra++
			note(fmt.Sprintf("unexpected window %v", k))
		}
	}
	sort.Strings(examples)
	t.Logf("%s: %d windows expected; %d missing, %d duplicated, %d wrong, %d unexpected", what, len(want), missing, dup, wrong, extra)
	if missing+dup+wrong+extra > 0 {
		t.Errorf("%s is not exactly once: %s", what, strings.Join(examples, "; "))
	}
}
