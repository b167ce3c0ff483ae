package main

import (
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

// s3Example is the example job the S3 crash test runs, with its endpoint
// replaced by the test's versitygw.
const s3Example = "../../examples/stream-to-s3-parquet.yaml"

// TestS3ExactlyOnceKill9 runs s3Example — a windowed job writing zstd
// Parquet to versitygw — on the real binary while records are put into
// its input stream, and SIGKILLs the server at random moments at least 5
// times (and, at random, versitygw with it). Then it reads every
// published object back with pqarrow and compares the windows with a
// batch computation over the input stream: nothing missing, nothing
// twice, nothing wrong, no staged object left and no row in the error
// output.
func TestS3ExactlyOnceKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary and versitygw; skipped in -short mode")
	}
	seed := int64(testutil.Seed(t))
	rng := rand.New(rand.NewSource(seed))
	gw := testsrv.StartS3(t, "lake")
	srv := newSupervised(t, gw.Env()...)
	srv.start()
	defer srv.Kill()
	base := srv.URL
	hc := &http.Client{Timeout: 5 * time.Second}
	// Random object names: an object made visible before its checkpoint
	// then shows as a duplicate, where a deterministic name could be
	// overwritten by the replay (the sink's unit tests cover those).
	job := exampleJob(t, s3Example, "http://127.0.0.1:9000", gw.Endpoint, "format: parquet", "format: parquet\n      suffix: random")
	if !strings.Contains(job, "suffix: random") || !strings.Contains(job, gw.Endpoint) {
		t.Fatalf("the example changed; this test no longer knows how to point it at versitygw:\n%s", job)
	}
	if !postJSONStatus(t, hc, base+"/api/v1/jobs", job, http.StatusCreated) {
		t.Fatalf("submit failed\n%s", srv.AllLogs())
	}

	var produced atomic.Int64
	done := make(chan struct{})
	go produceCrashRecords(hc, base, seed, 30_000, &produced, done)
	kills, gwKills := 0, 0
	for producing := true; producing || kills < 5; {
		select {
		case <-done:
			producing, done = false, nil
		case <-srv.Exited():
			t.Fatalf("the server died by itself:\n%s", testutil.Tail(srv.AllLogs(), 4000))
		case <-time.After(time.Duration(300+rng.Intn(1500)) * time.Millisecond):
			srv.Kill()
			if rng.Intn(2) == 0 {
				gw.Kill()
				gw.Start()
				gwKills++
			}
			srv.start()
			kills++
		}
	}
	t.Logf("produced %d records; %d SIGKILLs of the server, %d of versitygw with it", produced.Load(), kills, gwKills)

	putEndRecords(t, hc, base)
	// Wait for every window to be published (which windows exist follows
	// from the seed; their values, from the input stream as it is), stop
	// the job cleanly, then compare.
	windows := producedWindows(seed, 30_000)
	testutil.Within(90*time.Second, func() bool { return countWindows(s3Windows(t, gw)) >= windows })
	stopJob(t, &http.Client{Timeout: time.Minute}, base, "s3-lake")
	compareWindows(t, "published Parquet objects", expectedWindows(t, hc, base), s3Windows(t, gw))
	if staged := gw.Objects(t, "lake", s3sink.DefaultStagingPrefix); len(staged) > 0 {
		t.Errorf("%d staged objects left after a clean stop: %v", len(staged), staged[:min(5, len(staged))])
	}
	if errs := gw.Objects(t, "lake", s3sink.DefaultErrorPrefix); len(errs) > 0 {
		t.Errorf("rows went to the error output: %v", errs)
	}
}

// s3Windows reads the window rows of every published object.
func s3Windows(t *testing.T, gw *testsrv.S3Process) map[windowKey][]windowVal {
	t.Helper()
	got := map[windowKey][]windowVal{}
	for _, key := range gw.Objects(t, "lake", "per-key/") {
		rows, err := s3sink.ReadObject(key, gw.Get(t, "lake", key))
		if err != nil {
			t.Fatalf("object %s: %v", key, err)
		}
		for _, r := range rows {
			k := windowKey{fmt.Sprint(r["key"]), wholeNumber(r["window_start"])}
			got[k] = append(got[k], windowVal{wholeNumber(r["n"]), wholeNumber(r["total"])})
		}
	}
	return got
}

// wholeNumber is a Parquet column's integer or float value as an int64
// (-1 for anything else, which then shows as a wrong window).
func wholeNumber(v any) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return -1
}

// producedWindows is the number of windows of the records
// produceCrashRecords puts with seed.
func producedWindows(seed int64, total int) int {
	rng := rand.New(rand.NewSource(seed))
	seen := map[windowKey]bool{}
	for k := range total {
		key := fmt.Sprintf("k%02d", rng.Intn(20))
		ts := crashBase + int64(k)*2
		seen[windowKey{key, ts / 10000 * 10000}] = true
	}
	return len(seen)
}

func countWindows(got map[windowKey][]windowVal) int {
	n := 0
	for k := range got {
		if k.Key != "end" {
			n++
		}
	}
	return n
}

// postJSONStatus posts body and reports whether the answer had status.
func postJSONStatus(t *testing.T, hc *http.Client, url, body string, status int) bool {
	t.Helper()
	resp, err := hc.Post(url, "application/yaml", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode == status
}
