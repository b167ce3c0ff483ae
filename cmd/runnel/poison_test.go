package main

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// Poison records against the real binary: records that are not JSON or
// nest deeper than 64 levels obey the source's on_error, and format
// bytes hands JS the bytes.

// putRecords puts records (as the REST API takes them) into stream.
func (n *node) putRecords(stream string, recs []map[string]any) {
	n.t.Helper()
	body, _ := json.Marshal(map[string]any{"records": recs})
	if code, b := n.Do("POST", "/api/v1/streams/"+stream+"/records", "application/json", string(body)); code != 200 {
		n.t.Fatalf("put into %s: %d %s", stream, code, b)
	}
}

// results returns a dashboard sink's rows.
func (n *node) results(job, sink string) []map[string]any {
	n.t.Helper()
	code, b := n.Do("GET", "/api/v1/jobs/"+job+"/results?sink="+sink+"&format=json", "", "")
	if code != 200 {
		return nil
	}
	var rows []map[string]any
	if err := json.Unmarshal(b, &rows); err != nil {
		n.t.Fatalf("results of %s: %v: %s", job, err, b)
	}
	return rows
}

// streamRecords returns the data of every record of stream, in shard
// order.
func (n *node) streamRecords(stream string) [][]byte {
	n.t.Helper()
	code, b := n.Do("GET", "/api/v1/streams/"+stream+"/records?shard=shardId-000000000000&from=trim_horizon&limit=1000", "", "")
	if code != 200 {
		n.t.Fatalf("read %s: %d %s", stream, code, b)
	}
	var out struct {
		Records []struct {
			Data       *string         `json:"data"`
			DataBase64 *string         `json:"data_base64"`
			JSON       json.RawMessage `json:"json"`
		} `json:"records"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		n.t.Fatalf("read %s: %v: %s", stream, err, b)
	}
	var recs [][]byte
	for _, r := range out.Records {
		switch {
		case r.JSON != nil:
			recs = append(recs, r.JSON)
		case r.Data != nil:
			recs = append(recs, []byte(*r.Data))
		case r.DataBase64 != nil:
			d, _ := base64.StdEncoding.DecodeString(*r.DataBase64)
			recs = append(recs, d)
		}
	}
	return recs
}

func nested(depth int) string {
	return strings.Repeat(`{"a":`, depth) + "1" + strings.Repeat("}", depth)
}

// poisonInput is 10 good records (ts 1000..10000), a record that is not
// JSON, one nested 70 deep and one without ts, in that order on one
// shard.
func poisonInput(n *node) {
	n.t.Helper()
	var recs []map[string]any
	for i := 1; i <= 10; i++ {
		recs = append(recs, map[string]any{"key": "k", "json": map[string]any{"page": fmt.Sprintf("/p/%d", i%3), "ts": i * 1000}})
		if i == 4 {
			recs = append(recs, map[string]any{"key": "k", "data": `{"page": "/p/1", "ts": 4500`}) // cut short
		}
		if i == 6 {
			recs = append(recs, map[string]any{"key": "k", "data": nested(70)})
		}
	}
	recs = append(recs, map[string]any{"key": "k", "json": map[string]any{"page": "/p/9"}}) // no ts
	n.putRecords("in", recs)
}

const poisonJobs = `name: %s
source:
  stream: in
  event_time: "r => r.ts"
  on_error: %s
operators:
%s
sinks:
  - {id: board, input: count, dashboard: {}}
`

// A map first makes the source hand JSON on undecoded (the JS chain reads
// it); a window first makes it decode in Go. Both must apply the policy.
const (
	viaMap    = "  - {id: pick, map: \"r => ({page: r.page})\"}\n  - {id: count, input: pick, window: {key: \"r => r.page\", tumbling: 1h, aggregate: {n: count}}}"
	viaWindow = "  - {id: count, window: {key: \"r => r.page\", tumbling: 1h, aggregate: {n: count}}}"
)

// windowTotal sums the counts of a dashboard's window rows.
func windowTotal(rows []map[string]any) int {
	total := 0
	for _, r := range rows {
		if v, ok := r["n"].(float64); ok {
			total += int(v)
		}
	}
	return total
}

// TestPoisonRecordsObeySourceOnError puts records that are not JSON, nest
// 70 deep or lack their event time between good ones, and runs four
// jobs over them: on_error skip and dead_letter, each with the source
// decoding in Go and handing raw JSON to a JS map. Each job must keep
// running, count the 10 good records in its windows, and skip (or
// dead-letter) the 3 bad ones — also after a restart.
func TestPoisonRecordsObeySourceOnError(t *testing.T) {
	n := startedNode(t, "poison record test")
	n.CreateStream("in", 1)
	poisonInput(n)
	// An end record far ahead, so every window fires.
	n.putRecords("in", []map[string]any{{"key": "k", "json": map[string]any{"page": "end", "ts": 100_000_000}}})
	jobs := map[string]string{
		"skip-map":    fmt.Sprintf(poisonJobs, "skip-map", "skip", viaMap),
		"skip-window": fmt.Sprintf(poisonJobs, "skip-window", "skip", viaWindow),
		"dead-map":    fmt.Sprintf(poisonJobs, "dead-map", "{dead_letter: bad-map}", viaMap),
		"dead-window": fmt.Sprintf(poisonJobs, "dead-window", "{dead_letter: bad-window}", viaWindow),
	}
	names := []string{"dead-map", "dead-window", "skip-map", "skip-window"}
	for _, id := range names {
		n.submit(jobs[id])
	}
	check := func(when string) {
		t.Helper()
		for _, id := range names {
			testutil.Within(30*time.Second, func() bool {
				if windowTotal(n.results(id, "board")) >= 10 {
					return true
				}
				if v := n.job(id); v.State != "running" {
					t.Fatalf("%s: job %s is %s: %s", when, id, v.State, v.Reason)
				}
				return false
			})
			if got := windowTotal(n.results(id, "board")); got != 10 {
				t.Fatalf("%s: job %s counted %d records, want the 10 good ones", when, id, got)
			}
			v := n.job(id)
			if v.State != "running" {
				t.Fatalf("%s: job %s is %s: %s", when, id, v.State, v.Reason)
			}
			src := v.Operators[0]
			bad := src.Skipped
			if strings.HasPrefix(id, "dead") {
				bad = src.DeadLettered
			}
			if src.ID != "source" || bad != 3 {
				t.Fatalf("%s: job %s source node %+v, want 3 bad records skipped or dead-lettered", when, id, src)
			}
		}
	}
	check("first run")
	for _, stream := range []string{"bad-map", "bad-window"} {
		letters := n.streamRecords(stream)
		if len(letters) != 3 {
			t.Fatalf("%s holds %d dead letters, want 3: %q", stream, len(letters), letters)
		}
		var origins []string
		for _, l := range letters {
			var d struct {
				Error, Job, Operator, Origin string
				Record                       json.RawMessage
			}
			if err := json.Unmarshal(l, &d); err != nil {
				t.Fatalf("dead letter %s: %v", l, err)
			}
			if d.Error == "" || d.Operator != "source" || !strings.HasPrefix(d.Job, "dead-") ||
				!strings.HasPrefix(d.Origin, "source/shardId-000000000000@") || len(d.Record) == 0 {
				t.Fatalf("dead letter %s lacks error, job, operator source, origin or record", l)
			}
			origins = append(origins, d.Origin)
		}
		if distinct := slices.Compact(slices.Sorted(slices.Values(origins))); len(distinct) != 3 {
			t.Fatalf("%s: dead letters for %d distinct records, want 3: %v", stream, len(distinct), origins)
		}
	}
	// A restart replays from the last checkpoint: the jobs run on.
	n.Kill()
	n.Start()
	for _, id := range names {
		n.waitJob(id, "running", func(v jobView) bool { return v.State == "running" })
	}
	time.Sleep(time.Second)
	for _, id := range names {
		if v := n.job(id); v.State != "running" {
			t.Fatalf("after a restart: job %s is %s: %s", id, v.State, v.Reason)
		}
	}
	n.stop()
}

// TestEventTimeFallbackArrival: with event_time_fallback: arrival, the
// record without ts is counted (at its arrival time); the records that do
// not decode are still skipped.
func TestEventTimeFallbackArrival(t *testing.T) {
	n := startedNode(t, "event-time fallback test")
	n.CreateStream("in", 1)
	poisonInput(n)
	n.submit(`name: fallback
source:
  stream: in
  event_time: "r => r.ts"
  event_time_fallback: arrival
  on_error: skip
operators:
  - {id: pick, map: "r => ({page: r.page})"}
sinks:
  - {id: board, input: pick, dashboard: {}}
`)
	testutil.Within(30*time.Second, func() bool { return len(n.results("fallback", "board")) >= 11 })
	rows := n.results("fallback", "board")
	v := n.job("fallback")
	if len(rows) != 11 || v.State != "running" || v.Operators[0].Skipped != 2 {
		t.Fatalf("fallback job: %d rows (want 11: 10 good and the one without ts), state %s (%s), source %+v (want 2 skipped)",
			len(rows), v.State, v.Reason, v.Operators[0])
	}
	if rows[len(rows)-1]["page"] != "/p/9" {
		t.Fatalf("the record without ts is not last: %v", rows)
	}
	n.stop()
}

// TestFormatBytesHandsRawBytes reads records in format bytes — JSON and
// not — and maps each to its length and first byte: JS must see the
// bytes, not a decoded value.
func TestFormatBytesHandsRawBytes(t *testing.T) {
	n := startedNode(t, "format bytes test")
	n.CreateStream("raw", 1)
	inputs := [][]byte{[]byte(`{"a":1}`), []byte("not json at all"), {0xff, 0x00, 0x41}, []byte(`[1,2,3]`)}
	var recs []map[string]any
	for _, d := range inputs {
		recs = append(recs, map[string]any{"key": "k", "data_base64": base64.StdEncoding.EncodeToString(d)})
	}
	n.putRecords("raw", recs)
	n.submit(`name: bytes
source:
  stream: raw
  format: bytes
operators:
  - {id: size, map: "r => ({n: r.length, first: r[0], last: r[r.length - 1]})"}
sinks:
  - {id: board, input: size, dashboard: {}}
`)
	testutil.Within(30*time.Second, func() bool {
		if len(n.results("bytes", "board")) >= len(inputs) {
			return true
		}
		if v := n.job("bytes"); v.State != "running" {
			t.Fatalf("bytes job is %s: %s", v.State, v.Reason)
		}
		return false
	})
	rows := n.results("bytes", "board")
	if len(rows) != len(inputs) {
		t.Fatalf("%d rows, want %d: %v (job %+v)", len(rows), len(inputs), rows, n.job("bytes"))
	}
	for i, d := range inputs {
		want := map[string]any{"n": float64(len(d)), "first": float64(d[0]), "last": float64(d[len(d)-1])}
		for k, w := range want {
			if rows[i][k] != w {
				t.Fatalf("record %d (%q): %s = %v, want %v (row %v)", i, d, k, rows[i][k], w, rows[i])
			}
		}
	}
	n.stop()
}
