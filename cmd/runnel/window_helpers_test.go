package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
)

// perKeyJob is the job file of the windowed crash tests: 10 s event-time
// tumbling windows per key r.k over source (the lines under "source:",
// indented; event time r.ts with the bound watermark), counting and
// summing v, into sinks (the lines under "sinks:", indented),
// checkpointed every every.
func perKeyJob(name, source, watermark, sinks, every string) string {
	return fmt.Sprintf(`name: %s
source:
%s
  event_time: "r => r.ts"
  watermark: %s
operators:
  - id: per-key
    window:
      key: "r => r.k"
      tumbling: 10s
      aggregate:
        n: count
        total: sum(v)
sinks:
%s
checkpoint: {every: %s}
`, name, source, watermark, sinks, every)
}

// eventBatch is the body of a put of records from to to (to excluded)
// of the windowed crash tests' input stream: each under a key k00–k19
// drawn from rng, with v its index mod 7 and an event time gap ms after
// the previous one's (from crashBase, increasing with the index).
func eventBatch(rng *rand.Rand, from, to int, gap int64) string {
	var recs []string
	for k := from; k < to; k++ {
		key := fmt.Sprintf("k%02d", rng.Intn(20))
		recs = append(recs, fmt.Sprintf(`{"key":%q,"json":{"k":%q,"v":%d,"ts":%d}}`, key, key, k%7, crashBase+int64(k)*gap))
	}
	return `{"records":[` + strings.Join(recs, ",") + `]}`
}

// putUntilAcked puts body into the stream events, again every 50 ms
// until the server acknowledges it (a retry may duplicate a put whose
// outcome was unknown).
func putUntilAcked(hc *http.Client, base, body string) {
	for !postJSON(hc, base+"/api/v1/streams/events/records", body) {
		time.Sleep(50 * time.Millisecond)
	}
}

// kafkaWindows reads topic results with read_committed until n windows
// (end windows aside) arrived, then appends a sentinel and reads up to
// it, to see any duplicate behind.
func kafkaWindows(t *testing.T, addr string, n int) map[windowKey][]windowVal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c := testsrv.ReadCommitted(t, "results", addr)
	defer c.Close()
	got := map[windowKey][]windowVal{}
	count, sentinel := 0, false
	for {
		if !sentinel && count >= n {
			p, err := kgo.NewClient(kgo.SeedBrokers(addr))
			if err != nil {
				t.Fatal(err)
			}
			if err := p.ProduceSync(ctx, &kgo.Record{Topic: "results", Key: []byte("sentinel")}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			p.Close()
			sentinel = true
		}
		fs := c.PollFetches(ctx)
		if err := fs.Err(); err != nil {
			t.Fatalf("read the result topic (%d windows of %d read): %v", count, n, err)
		}
		for _, r := range fs.Records() {
			if string(r.Key) == "sentinel" {
				return got
			}
			var v struct {
				Key         string `json:"key"`
				WindowStart int64  `json:"window_start"`
				N           int64  `json:"n"`
				Total       int64  `json:"total"`
			}
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatalf("result record %s: %v", r.Value, err)
			}
			k := windowKey{v.Key, v.WindowStart}
			if v.Key != "end" {
				count++
			}
			got[k] = append(got[k], windowVal{v.N, v.Total})
		}
	}
}
