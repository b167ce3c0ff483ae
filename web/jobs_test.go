package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/jobs"
)

func jobsServer(t *testing.T) (*httptest.Server, *jobs.Manager) {
	t.Helper()
	dir := t.TempDir()
	st := openStore(t, dir)
	mgr := openJobs(t, st, dir)
	return serveAPI(t, Config{Store: st, Jobs: mgr}), mgr
}

const e2eJob = `name: views
source:
  stream: clicks
  shards: 3
  event_time: "r => r.ts"
operators:
  - id: parse
    map: "r => ({page: r.page, ms: r.ms, ts: r.ts, bot: r.user.startsWith('bot')})"
  - id: humans
    filter: "r => !r.bot"
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 10s
      aggregate:
        views: count
        total_ms: sum(ms)
sinks:
  - {id: board, dashboard: {title: Views}}
`

// TestJobEndToEnd: create a stream, submit a job over HTTP, put records
// over REST, and read the window results as Arrow (decoded with arrow-go)
// and as JSON; they must equal a batch computation.
func TestJobEndToEnd(t *testing.T) {
	ts, _ := jobsServer(t)
	resp, err := http.Post(ts.URL+"/api/v1/jobs", "application/yaml", strings.NewReader(e2eJob))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 201 || !strings.Contains(string(body), `"id":"views"`) {
		t.Fatalf("submit: %d %s", resp.StatusCode, body)
	}
	type key struct {
		page  string
		start int64
	}
	want := map[key][2]int64{}
	pages := []string{"/", "/cart", "/search", "/p/1"}
	var recs []string
	for i := 0; i < 400; i++ {
		page := pages[i%len(pages)]
		ts := int64(1_700_000_000_000) + int64(i)*250 // 100 s of event time
		user := fmt.Sprintf("u%d", i%7)
		if i%13 == 0 {
			user = "bot-1"
		}
		recs = append(recs, fmt.Sprintf(`{"key":%q,"json":{"page":%q,"ms":%d,"ts":%d,"user":%q}}`, user, page, i%50, ts, user))
		if !strings.HasPrefix(user, "bot") {
			k := key{page, ts / 10000 * 10000}
			w := want[k]
			want[k] = [2]int64{w[0] + 1, w[1] + int64(i%50)}
		}
	}
	// A last record far ahead moves the watermark past every window above.
	recs = append(recs, `{"key":"u1","json":{"page":"/end","ms":0,"ts":1700000200000,"user":"u1"}}`)
	for i := 0; i < len(recs); i += 100 {
		end := min(i+100, len(recs))
		b := `{"records":[` + strings.Join(recs[i:end], ",") + `]}`
		resp, err := http.Post(ts.URL+"/api/v1/streams/clicks/records", "application/json", strings.NewReader(b))
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("put: %v %v", err, resp)
		}
		resp.Body.Close()
	}
	// Wait for every expected window in the JSON results.
	var rows []map[string]any
	testutil.Within(30*time.Second, func() bool {
		resp, err := http.Get(ts.URL + "/api/v1/jobs/views/results?sink=board&format=json")
		if err != nil {
			t.Fatal(err)
		}
		rows = nil
		json.NewDecoder(resp.Body).Decode(&rows)
		resp.Body.Close()
		return len(rows) >= len(want)
	})
	got := map[key][2]int64{}
	for _, r := range rows {
		got[key{r["key"].(string), int64(r["window_start"].(float64))}] = [2]int64{int64(r["views"].(float64)), int64(r["total_ms"].(float64))}
	}
	if len(got) != len(want) {
		t.Fatalf("got %d windows, want %d: %v", len(got), len(want), rows)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("window %v: got views,total %v want %v", k, got[k], w)
		}
	}
	// The same results as Arrow IPC.
	rd := getArrow(t, ts.URL+"/api/v1/jobs/views/results?sink=board")
	names := []string{}
	for _, f := range rd.Schema().Fields() {
		names = append(names, f.Name)
	}
	if strings.Join(names[:3], ",") != "window_start,window_end,key" {
		t.Fatalf("arrow columns %v", names)
	}
	n := 0
	for rd.Next() {
		rec := rd.RecordBatch()
		keys := rec.Column(2).(*array.String)
		starts := rec.Column(0).(*array.Timestamp)
		views := rec.Column(int(rec.Schema().FieldIndices("views")[0]))
		for i := 0; i < int(rec.NumRows()); i++ {
			k := key{keys.Value(i), int64(starts.Value(i))}
			var v int64
			switch c := views.(type) {
			case *array.Int64:
				v = c.Value(i)
			case *array.Float64:
				v = int64(c.Value(i))
			}
			if want[k][0] != v {
				t.Errorf("arrow row %v: views %d want %d", k, v, want[k][0])
			}
			n++
		}
	}
	if n != len(want) {
		t.Fatalf("arrow rows %d, want %d", n, len(want))
	}
	// Job status names the operators and their counters.
	var info jobs.Info
	resp2, _ := http.Get(ts.URL + "/api/v1/jobs/views")
	json.NewDecoder(resp2.Body).Decode(&info)
	resp2.Body.Close()
	if info.State != "running" || len(info.Operators) == 0 || info.Spec == "" || len(info.Graph) != 5 {
		t.Fatalf("job info %+v", info)
	}
	for _, o := range info.Operators {
		if (o.ID == "per-page" || o.ID == "parse") && (o.Backpressure == nil || *o.Backpressure < 0 || *o.Backpressure > 1) {
			t.Errorf("operator %s: backpressure %v, want a fill in [0, 1] of the inbox it sends to", o.ID, o.Backpressure)
		}
		// parse's functions are simple enough to run natively.
		if o.ID == "parse" && (o.NativeBatches == 0 || o.GojaBatches != 0) {
			t.Errorf("operator parse: %d native and %d goja batches, want all native", o.NativeBatches, o.GojaBatches)
		}
	}
	// The list shows it; DELETE stops it and answers the stopped job.
	var list struct{ Jobs []jobs.Info }
	respL, _ := http.Get(ts.URL + "/api/v1/jobs")
	json.NewDecoder(respL.Body).Decode(&list)
	respL.Body.Close()
	if len(list.Jobs) != 1 || list.Jobs[0].ID != "views" || list.Jobs[0].State != "running" {
		t.Fatalf("job list %+v", list.Jobs)
	}
	defer func() {
		req, _ := http.NewRequest("DELETE", ts.URL+"/api/v1/jobs/views", nil)
		respD, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var stopped jobs.Info
		json.NewDecoder(respD.Body).Decode(&stopped)
		respD.Body.Close()
		if respD.StatusCode != 200 || stopped.State != jobs.StateStopped {
			t.Fatalf("DELETE: %d %+v", respD.StatusCode, stopped)
		}
	}()
	// Prometheus metrics carry the shards and the job's operators.
	resp3, err := http.Get(ts.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp3.Body)
	resp3.Body.Close()
	for _, want := range []string{
		`runnel_shard_records_total{shard="shardId-000000000000",stream="clicks"}`,
		`runnel_shard_incoming_bytes_total{shard="shardId-000000000000",stream="clicks"}`,
		`runnel_shard_records_read_total{shard="shardId-000000000000",stream="clicks"}`,
		`runnel_shard_iterator_age_seconds{shard="shardId-000000000000",stream="clicks"}`,
		`runnel_operator_records_in_total{job="views",kind="operator",operator="per-page"}`,
		`runnel_operator_dead_lettered_total{job="views",kind="operator",operator="per-page"}`,
		`runnel_job_watermark_lag_seconds{job="views"}`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func TestJobAPIErrors(t *testing.T) {
	ts, _ := jobsServer(t)
	bad := "name: bad\nsource: {stream: s}\noperators:\n  - id: w\n    window:\n      tumbling: 10x\nsinks:\n  - {id: out, log: {}}\n"
	resp, err := http.Post(ts.URL+"/api/v1/jobs", "application/yaml", strings.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	var out struct {
		Error struct {
			Code     string
			Line     int
			Field    string
			Problems []jobs.Problem
		}
	}
	json.NewDecoder(resp.Body).Decode(&out)
	resp.Body.Close()
	if resp.StatusCode != 400 || out.Error.Code != "invalid_job" || out.Error.Line == 0 || len(out.Error.Problems) < 2 {
		t.Fatalf("bad job: %d %+v", resp.StatusCode, out)
	}
	found := false
	for _, p := range out.Error.Problems {
		if p.Line == 6 && p.Field == "operators[0].window.tumbling" {
			found = true
		}
	}
	if !found {
		t.Fatalf("no problem at line 6 operators[0].window.tumbling: %+v", out.Error.Problems)
	}
	// JS that compiles but is no function is refused at submit and at
	// preview, at its line, and leaves no job behind.
	fieldKey := "name: fieldkey\nsource: {stream: s}\noperators:\n  - id: w\n    window: {tumbling: 5s, key: page, aggregate: {n: count}}\nsinks:\n  - {id: out, log: {}}\n"
	for _, path := range []string{"/api/v1/jobs", "/api/v1/jobs/preview"} {
		resp, err := http.Post(ts.URL+path, "application/yaml", strings.NewReader(fieldKey))
		if err != nil {
			t.Fatal(err)
		}
		out.Error.Problems = nil
		json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 400 || out.Error.Code != "invalid_job" || len(out.Error.Problems) != 1 ||
			out.Error.Problems[0].Code != jobs.CodeJSError || out.Error.Problems[0].Line != 5 || out.Error.Field != "operators[0].window.key" {
			t.Fatalf("POST %s of a key naming no function: %d %+v", path, resp.StatusCode, out)
		}
	}
	if resp, err := http.Get(ts.URL + "/api/v1/jobs/fieldkey"); err != nil || resp.StatusCode != 404 {
		t.Fatalf("the refused job exists: %v %v", resp.StatusCode, err)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/jobs/nope"}, {"DELETE", "/api/v1/jobs/nope"}, {"GET", "/api/v1/jobs/nope/results"},
	} {
		req, _ := http.NewRequest(c.method, ts.URL+c.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 404 {
			t.Errorf("%s %s: %d", c.method, c.path, resp.StatusCode)
		}
	}
	big := bytes.Repeat([]byte("#"), 2<<20)
	resp, _ = http.Post(ts.URL+"/api/v1/jobs", "application/yaml", bytes.NewReader(big))
	resp.Body.Close()
	if resp.StatusCode != 413 {
		t.Errorf("2 MiB job file: %d", resp.StatusCode)
	}
}

// TestLiveResults reads the live endpoint as a stream: batches arrive
// while the job runs, decoded one by one with arrow-go.
func TestLiveResults(t *testing.T) {
	ts, _ := jobsServer(t)
	job := "name: live\nsource:\n  generator: {rate: 2000, keys: 4}\n  event_time: \"r => r.ts\"\noperators:\n  - id: w\n    window: {key: \"r => r.page\", tumbling: 200ms, aggregate: {n: count}}\nsinks:\n  - {id: board, dashboard: {}}\n"
	resp, err := http.Post(ts.URL+"/api/v1/jobs", "application/yaml", strings.NewReader(job))
	if err != nil || resp.StatusCode != 201 {
		t.Fatalf("submit: %v %v", err, resp)
	}
	resp.Body.Close()
	rd := getArrow(t, ts.URL+"/api/v1/jobs/live/results/live?sink=board")
	if got := rd.Schema().Field(3).Name; got != "n" {
		t.Fatalf("schema %v", rd.Schema())
	}
	ends := map[int64]bool{}
	for len(ends) < 5 && rd.Next() {
		rec := rd.RecordBatch()
		endCol := rec.Column(1).(*array.Timestamp)
		for i := 0; i < int(rec.NumRows()); i++ {
			ends[int64(endCol.Value(i))] = true
		}
	}
	if len(ends) < 5 {
		t.Fatalf("live stream ended after %d windows: %v", len(ends), rd.Err())
	}
}

// getArrow GETs url, which must answer an Arrow IPC stream, and returns
// its reader; the test's cleanup releases it and closes the body.
func getArrow(t *testing.T, url string) *ipc.Reader {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "application/vnd.apache.arrow.stream" {
		t.Fatalf("content type %q", ct)
	}
	rd, err := ipc.NewReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rd.Release)
	return rd
}
