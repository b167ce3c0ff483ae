package web

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/runnel-dev/runnel/web/auth"
)

// slotsEnv is a loopback server with auth on, caps lim, a running job
// "live" whose dashboard "board" fills slowly, and admin tokens a1..a3.
type slotsEnv struct {
	ts     *httptest.Server
	srv    *Server
	tokens map[string]string
}

const slowBoardJob = "name: live\nsource:\n  generator: {rate: 1, keys: 2}\n  event_time: \"r => r.ts\"\noperators:\n" +
	"  - id: w\n    window: {key: \"r => r.page\", tumbling: 1s, aggregate: {n: count}}\nsinks:\n  - {id: board, dashboard: {}}\n"

// heldPreviewAt returns a job file whose preview runs until the preview
// timeout or until its client goes away, using no CPU: its Kafka source's
// broker takes connections and never answers.
func heldPreviewAt(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		var held []net.Conn
		defer func() {
			for _, c := range held {
				c.Close()
			}
		}()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c)
		}
	}()
	return "name: held\nsource:\n  kafka: {brokers: [\"" + ln.Addr().String() + "\"], topics: [in]}\nsinks:\n  - {id: l, input: source, log: {}}\n"
}

// quickPreview is a job file whose preview ends at once.
const quickPreview = "name: quick\nsource: {generator: {rate: max, count: 5}}\nsinks:\n  - {id: l, input: source, log: {}}\n"

func newSlotsEnv(t *testing.T, lim Limits) *slotsEnv {
	t.Helper()
	dir := t.TempDir()
	st := openStore(t, dir)
	mgr := openJobs(t, st, dir)
	if _, err := mgr.Submit([]byte(slowBoardJob)); err != nil {
		t.Fatal(err)
	}
	tokens, err := auth.Open(dir + "/auth")
	if err != nil {
		t.Fatal(err)
	}
	e := &slotsEnv{tokens: map[string]string{}}
	for _, name := range []string{"a1", "a2", "a3"} {
		c, err := tokens.Create(name, auth.Admin, nil, false)
		if err != nil {
			t.Fatal(err)
		}
		e.tokens[name] = c.Secret
	}
	e.srv = New(Config{Store: st, Logger: quietLog, Jobs: mgr, Security: Security{Auth: true, Tokens: tokens}, Limits: lim})
	e.ts = httptest.NewServer(e.srv)
	t.Cleanup(e.ts.Close)
	return e
}

// request sends method path as token with body (a job file) under ctx.
func (e *slotsEnv) request(ctx context.Context, token, method, path, body string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.ts.URL+path, strings.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.tokens[token])
	if body != "" {
		req.Header.Set("Content-Type", "application/yaml")
	}
	return http.DefaultClient.Do(req)
}

// hold sends a request in the background; cancel ends it (the client goes
// away) and done receives its status (0 when cancelled).
func (e *slotsEnv) hold(t *testing.T, token, method, path, body string) (cancel func(), done <-chan int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := make(chan int, 1)
	go func() {
		resp, err := e.request(ctx, token, method, path, body)
		if err != nil {
			out <- 0
			return
		}
		defer resp.Body.Close()
		_, err = io.Copy(io.Discard, resp.Body)
		if err != nil && !errors.Is(err, context.Canceled) && ctx.Err() == nil {
			t.Errorf("%s %s: reading the answer: %v", method, path, err)
		}
		out <- resp.StatusCode
	}()
	t.Cleanup(cancel)
	return cancel, out
}

// waitInUse waits until s has n slots taken.
func waitInUse(t *testing.T, s *slots, n int) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for s.inUse() != n {
		if time.Now().After(deadline) {
			t.Fatalf("%s in use: %d, want %d", s.what, s.inUse(), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantTooMany sends a request that must be refused with 429 naming flag
// (and, when not "", saying about).
func (e *slotsEnv) wantTooMany(t *testing.T, token, method, path, body, flag, about string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := e.request(ctx, token, method, path, body)
	if err != nil {
		t.Fatalf("%s %s as %s: %v (want an immediate 429)", method, path, token, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	var got struct {
		Error apiError `json:"error"`
	}
	_ = json.Unmarshal(b, &got)
	if resp.StatusCode != http.StatusTooManyRequests || got.Error.Code != "too_many_requests" || got.Error.Limit != flag ||
		!strings.Contains(got.Error.Message, flag) || !strings.Contains(got.Error.Message, about) || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%s %s as %s: %d %s (Retry-After %q), want 429 too_many_requests with limit %s saying %q",
			method, path, token, resp.StatusCode, strconv.QuoteToASCII(string(b)), resp.Header.Get("Retry-After"), flag, about)
	}
}

// TestPreviewsCapped: previews run a job graph each, so at most
// MaxPreviews run at once and a token at most half of them; past either a
// preview gets 429 naming --max-previews at once. A slot is freed when its
// preview's client goes away, when the preview ends, and when it times
// out.
func TestPreviewsCapped(t *testing.T) {
	e := newSlotsEnv(t, Limits{MaxPreviews: 2})
	heldPreview := heldPreviewAt(t)
	const path = "/api/v1/jobs/preview"
	cancel1, done1 := e.hold(t, "a1", "POST", path, heldPreview)
	waitInUse(t, e.srv.previews, 1)
	e.wantTooMany(t, "a1", "POST", path, quickPreview, "--max-previews", `token "a1" has 1 previews under way`)
	_, done2 := e.hold(t, "a2", "POST", path, heldPreview)
	waitInUse(t, e.srv.previews, 2)
	e.wantTooMany(t, "a3", "POST", path, quickPreview, "--max-previews", "2 previews under way, the server's limit")

	// a1's client goes away: its slot is free again.
	cancel1()
	if st := <-done1; st != 0 {
		t.Errorf("the cancelled preview answered %d", st)
	}
	waitInUse(t, e.srv.previews, 1)
	resp, err := e.request(context.Background(), "a3", "POST", path, quickPreview)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("a preview with a slot free: %d %s", resp.StatusCode, b)
	}
	waitInUse(t, e.srv.previews, 1) // the quick one's slot is back
	// a2's preview times out, and frees its slot.
	if st := <-done2; st != 200 {
		t.Errorf("the preview that timed out answered %d, want 200 (timed_out)", st)
	}
	waitInUse(t, e.srv.previews, 0)
	if n := e.srv.previews.refused.Load(); n != 2 {
		t.Errorf("previews refused: %d, want 2", n)
	}
}

// TestLiveResultsCapped: each live result stream holds a dashboard
// subscription for as long as its client reads, so at most MaxLiveResults
// are open at once and a token holds at most half of them; past either one
// gets 429 naming --max-live-results. Closing a stream frees its slot.
func TestLiveResultsCapped(t *testing.T) {
	e := newSlotsEnv(t, Limits{MaxLiveResults: 2})
	const path = "/api/v1/jobs/live/results/live?sink=board"
	cancel1, done1 := e.hold(t, "a1", "GET", path, "")
	waitInUse(t, e.srv.live, 1)
	e.wantTooMany(t, "a1", "GET", path, "", "--max-live-results", `token "a1" has 1 live results under way`)
	_, _ = e.hold(t, "a2", "GET", path, "")
	waitInUse(t, e.srv.live, 2)
	e.wantTooMany(t, "a3", "GET", path, "", "--max-live-results", "2 live results under way, the server's limit")
	cancel1()
	<-done1
	waitInUse(t, e.srv.live, 1)
	_, _ = e.hold(t, "a3", "GET", path, "")
	waitInUse(t, e.srv.live, 2)
}

// TestMetricsScrapesCapped: a scrape walks every shard and job; at most
// maxScrapes run at once, and one more gets 503 at once.
func TestMetricsScrapesCapped(t *testing.T) {
	e := newSlotsEnv(t, Limits{})
	block := make(chan struct{})
	entered := make(chan struct{}, maxScrapes)
	e.srv.reg.MustRegister(blockingCollector{entered: entered, block: block})
	for range maxScrapes {
		e.hold(t, "a1", "GET", "/metrics", "")
	}
	for range maxScrapes {
		<-entered
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	resp, err := e.request(ctx, "a2", "GET", "/metrics", "")
	close(block)
	if err != nil {
		t.Fatalf("a scrape past %d under way: %v (want an immediate 503)", maxScrapes, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("a scrape past %d under way: %d %s, want 503", maxScrapes, resp.StatusCode, b)
	}
}

// blockingCollector is a metrics collector whose Collect says it began
// on entered and then waits for block to close.
type blockingCollector struct {
	entered chan<- struct{}
	block   <-chan struct{}
}

func (blockingCollector) Describe(chan<- *prometheus.Desc) {}

func (c blockingCollector) Collect(chan<- prometheus.Metric) {
	c.entered <- struct{}{}
	<-c.block
}
