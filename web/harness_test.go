package web

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/runnel-dev/runnel/consumergroups"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/streams"
)

// quietLog is the logger of the parts the tests start: their logs would
// only bury the test's own output.
var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))

// openStore opens a stream store in dir, closed when the test ends.
func openStore(t testing.TB, dir string) *streams.Store {
	t.Helper()
	st, err := streams.Open(dir, streams.Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// openJobs opens a jobs manager over st, keeping its jobs in dir/jobs,
// closed when the test ends (before the store).
func openJobs(t testing.TB, st *streams.Store, dir string) *jobs.Manager {
	t.Helper()
	mgr, err := jobs.NewManager(jobs.ManagerConfig{Store: st, Dir: dir + "/jobs", Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	<-mgr.Booted() // its jobs start in the background
	t.Cleanup(mgr.Close)
	return mgr
}

// openGroups opens the consumer groups over st, kept in
// dir/consumer-groups.
func openGroups(t testing.TB, st *streams.Store, dir string) *consumergroups.Manager {
	t.Helper()
	g, err := consumergroups.Open(dir+"/consumer-groups", st, consumergroups.Options{Logger: quietLog})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

// serveAPI serves cfg's API on a loopback port until the test ends
// (closed before the parts it serves); cfg's logger is quietLog.
func serveAPI(t testing.TB, cfg Config) *httptest.Server {
	t.Helper()
	cfg.Logger = quietLog
	ts := httptest.NewServer(New(cfg))
	t.Cleanup(ts.Close)
	return ts
}

// roundTrip sends method url with body and the header fields in hdr (a
// "Host" entry sets the request's host; an empty value is left out) and
// returns the answer with its body, read and closed.
func roundTrip(t testing.TB, method, url, body string, hdr map[string]string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		switch {
		case v == "":
		case k == "Host":
			req.Host = v
		default:
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading the answer: %v", method, url, err)
	}
	return resp, b
}

// bodyType is the Content-Type of a request body: JSON when it starts as
// a JSON object, YAML otherwise, none when there is no body.
func bodyType(body string) string {
	switch {
	case body == "":
		return ""
	case strings.HasPrefix(body, "{"):
		return "application/json"
	}
	return "application/yaml"
}

// viewsJob is the job of several tests: views per page of stream in 10 s
// tumbling windows to a dashboard, checkpointed every 200ms, after the
// operators ops (YAML list items, or none).
func viewsJob(name, stream string, shards int, ops string) string {
	return fmt.Sprintf(`name: %s
source:
  stream: %s
  shards: %d
  event_time: "r => r.ts"
operators:
%s  - id: per-page
    window:
      key: "r => r.page"
      tumbling: 10s
      aggregate:
        views: count
sinks:
  - {id: board, dashboard: {title: Views}}
checkpoint: {every: 200ms}
`, name, stream, shards, ops)
}
