package web

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
)

// callInto sends method path with body and decodes the JSON answer into out
// (when not nil); it returns the status and the raw body.
// serverWithJob is jobsServer with the job file src submitted.
func serverWithJob(t *testing.T, src string) *httptest.Server {
	t.Helper()
	ts, _ := jobsServer(t)
	if code, b := callInto(t, "POST", ts.URL+"/api/v1/jobs", src, nil); code != 201 {
		t.Fatalf("submit: %d %s", code, b)
	}
	return ts
}

func callInto(t *testing.T, method, url, body string, out any) (int, string) {
	t.Helper()
	resp, b := roundTrip(t, method, url, body, map[string]string{"Content-Type": bodyType(body)})
	if out != nil && resp.StatusCode < 300 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, url, err, b)
		}
	}
	return resp.StatusCode, string(b)
}

// putJSON appends n JSON records to a stream over REST; every fifth lacks
// a page.
func putJSON(t *testing.T, base, stream string, n int) {
	t.Helper()
	var recs []string
	for i := range n {
		if i%5 == 4 {
			recs = append(recs, fmt.Sprintf(`{"key":"k%d","json":{"ts":%d}}`, i, 1700000000000+int64(i)*1000))
			continue
		}
		recs = append(recs, fmt.Sprintf(`{"key":"k%d","json":{"page":"/p/%d","ts":%d}}`, i, i%3, 1700000000000+int64(i)*1000))
	}
	for len(recs) > 0 {
		k := min(len(recs), 100)
		if code, b := callInto(t, "POST", base+"/api/v1/streams/"+stream+"/records", `{"records":[`+strings.Join(recs[:k], ",")+`]}`, nil); code != 200 {
			t.Fatalf("put: %d %s", code, b)
		}
		recs = recs[k:]
	}
}

const previewFile = `name: pv
source:
  stream: clicks
  event_time: "r => r.ts"
operators:
  - id: up
    map: "r => ({page: r.page.toUpperCase()})"
  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 1m
      aggregate: {views: count}
sinks:
  - {id: out, stream: {name: out}}
`

// TestPreviewRoute: POST /api/v1/jobs/preview answers each operator's
// rows and errors over the last N records (every fifth record lacks the
// page the map reads), and nothing is created.
func TestPreviewRoute(t *testing.T) {
	ts, mgr := jobsServer(t)
	if code, b := callInto(t, "POST", ts.URL+"/api/v1/streams", `{"name":"clicks","shards":2}`, nil); code != 200 && code != 201 {
		t.Fatalf("create: %d %s", code, b)
	}
	putJSON(t, ts.URL, "clicks", 200)
	var res struct {
		RecordsRead int64 `json:"records_read"`
		ElapsedMS   float64
		Operators   []struct {
			ID       string            `json:"id"`
			Kind     string            `json:"kind"`
			Rows     []json.RawMessage `json:"rows"`
			RowCount int64             `json:"row_count"`
			Flushed  bool              `json:"flushed"`
			Errors   []struct {
				Message string          `json:"message"`
				Record  json.RawMessage `json:"record"`
				Origin  struct{ Stream, Shard, Sequence string }
			} `json:"errors"`
		} `json:"operators"`
	}
	if code, b := callInto(t, "POST", ts.URL+"/api/v1/jobs/preview?records=50", previewFile, &res); code != 200 {
		t.Fatalf("preview: %d %s", code, b)
	}
	if res.RecordsRead != 50 || len(res.Operators) != 4 {
		t.Fatalf("preview: %+v", res)
	}
	up, win := res.Operators[1], res.Operators[2]
	if up.ID != "up" || up.Kind != "map" || up.RowCount+int64(len(up.Errors)) != 50 || len(up.Errors) == 0 {
		t.Fatalf("map: %s %s %d rows %d errors", up.ID, up.Kind, up.RowCount, len(up.Errors))
	}
	e := up.Errors[0]
	if !strings.Contains(e.Message, "TypeError") || strings.Contains(e.Message, "<eval>") || e.Origin.Stream != "clicks" || e.Origin.Sequence == "" || !strings.Contains(string(e.Record), `"ts"`) {
		t.Fatalf("error %+v", e)
	}
	if win.Kind != "window" || !win.Flushed || win.RowCount == 0 || !strings.Contains(string(win.Rows[0]), `"views"`) {
		t.Fatalf("window %+v", win)
	}
	if code, _ := callInto(t, "GET", ts.URL+"/api/v1/streams/out", "", nil); code != 404 {
		t.Fatalf("the preview created the sink's stream (GET answered %d)", code)
	}
	if len(mgr.List()) != 0 {
		t.Fatal("the preview left a job")
	}
	for _, c := range []struct{ url, body, want string }{
		{"/api/v1/jobs/preview?records=0", previewFile, `"field":"records"`},
		{"/api/v1/jobs/preview?records=100001", previewFile, `"field":"records"`},
		{"/api/v1/jobs/preview", "name: x\nsource: {stream: s}\noperators:\n  - id: m\n    map: \"r =>\"\n", `"line":5`},
	} {
		if code, b := callInto(t, "POST", ts.URL+c.url, c.body, nil); code != 400 || !strings.Contains(b, c.want) {
			t.Errorf("POST %s: %d %s, want 400 with %s", c.url, code, b, c.want)
		}
	}
}
