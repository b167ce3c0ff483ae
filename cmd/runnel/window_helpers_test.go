package main

import (
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"time"
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
