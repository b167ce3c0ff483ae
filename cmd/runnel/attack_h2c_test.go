package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// Attacks over cleartext HTTP/2 (h2c), which the server speaks for
// SubscribeToShard: each HTTP/2 stream is a request, and must be held to
// the same limits as an HTTP/1.1 request.

// h2cClient speaks HTTP/2 with prior knowledge to an http:// server, as
// the SDKs do for SubscribeToShard.
func h2cClient() *http.Client {
	return &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(_ context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		}}}
}

// stalledBody sends head at once, then nothing until release is closed,
// then the rest.
func stalledBody(head, rest string, release <-chan struct{}) io.Reader {
	pr, pw := io.Pipe()
	go func() {
		if _, err := pw.Write([]byte(head)); err != nil {
			return
		}
		<-release
		_, _ = pw.Write([]byte(rest))
		pw.Close()
	}()
	return pr
}

type h2cAnswer struct {
	proto  string
	status int
	header http.Header
	body   string
	err    error
}

// h2cSend sends a request with body over c and returns its answer on a
// channel.
func h2cSend(c *http.Client, method, url string, body io.Reader, length int64) <-chan h2cAnswer {
	out := make(chan h2cAnswer, 1)
	go func() {
		req, err := http.NewRequest(method, url, body)
		if err != nil {
			out <- h2cAnswer{err: err}
			return
		}
		req.Header.Set("Content-Type", "application/json")
		req.ContentLength = length
		resp, err := c.Do(req)
		if err != nil {
			out <- h2cAnswer{err: err}
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		out <- h2cAnswer{proto: resp.Proto, status: resp.StatusCode, header: resp.Header, body: string(b)}
	}()
	return out
}

// TestAttackH2CSlowBody trickles a request body over h2c: the server must
// end it at --body-timeout, as it ends an HTTP/1.1 one, instead of holding
// the stream for as long as the client likes.
func TestAttackH2CSlowBody(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	srv := newLimited(t, t.TempDir(), "--body-timeout", "2s")
	srv.Start()
	release := make(chan struct{})
	defer close(release)
	const body = `{"name":"slow-h2c","shards":1}`
	ans := h2cSend(h2cClient(), "POST", srv.URL+"/api/v1/streams", stalledBody(body[:8], body[8:], release), int64(len(body)))
	select {
	case a := <-ans:
		if a.err != nil {
			t.Fatalf("h2c request: %v", a.err)
		}
		if a.proto != "HTTP/2.0" {
			t.Fatalf("the request went over %s, not HTTP/2", a.proto)
		}
		if a.status != 400 || !strings.Contains(a.body, "did not arrive in time") {
			t.Fatalf("a body stalled past --body-timeout 2s over h2c: got %d %s, want 400 naming the body timeout", a.status, a.body)
		}
	case <-time.After(45 * time.Second):
		t.Fatal("a body stalled over h2c was still held 45 s later (--body-timeout 2s)")
	}
	if st, _, b := srv.do("GET", "/api/v1/streams/slow-h2c", nil); st != 404 {
		t.Errorf("the stream of the timed-out request: %d %s, want 404", st, b)
	}
}

// TestAttackH2CInFlightBytes holds a request body over h2c that reserves
// all of --max-inflight: a second request with a body, over h2c or
// HTTP/1.1, must be refused at once with 503 and Retry-After (a Kinesis
// call with its throttling error), as when the first came over HTTP/1.1.
func TestAttackH2CInFlightBytes(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	srv := newLimited(t, t.TempDir(), "--max-inflight", "1MiB", "--body-timeout", "60s")
	srv.Start()
	srv.CreateStream("held", 1)
	release := make(chan struct{})
	hc := h2cClient()
	const size = 1 << 20
	head := `{"records":[{"key":"k","data":"`
	rest := strings.Repeat("x", size-len(head)-4) + `"}]}`
	held := h2cSend(hc, "POST", srv.URL+"/api/v1/streams/held/records", stalledBody(head, rest, release), size)
	// The held request's reservation shows in the metric once its
	// handler runs.
	deadline := time.Now().Add(30 * time.Second)
	for srv.metric("runnel_http_inflight_bytes") < size {
		if time.Now().After(deadline) {
			close(release)
			t.Fatalf("a 1 MiB body held over h2c is not counted in flight: runnel_http_inflight_bytes %v", srv.metric("runnel_http_inflight_bytes"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	const small = `{"records":[{"key":"k","data":"y"}]}`
	for _, c := range []struct {
		name   string
		client *http.Client
	}{{"h2c", hc}, {"HTTP/1.1", http.DefaultClient}} {
		a := <-h2cSend(c.client, "POST", srv.URL+"/api/v1/streams/held/records", strings.NewReader(small), int64(len(small)))
		if a.err != nil {
			t.Fatalf("%s: %v", c.name, a.err)
		}
		if a.status != 503 || a.header.Get("Retry-After") == "" || !strings.Contains(a.body, "--max-inflight") {
			t.Errorf("%s put while 1 MiB (all of --max-inflight) was held over h2c: %d %s (Retry-After %q), want 503 with Retry-After naming --max-inflight",
				c.name, a.status, a.body, a.header.Get("Retry-After"))
		}
	}
	close(release)
	a := <-held
	if a.err != nil || a.status != 200 {
		t.Fatalf("the held put, once its body arrived: %d %s %v", a.status, a.body, a.err)
	}
	if got := srv.metric("runnel_http_inflight_bytes"); got != 0 {
		t.Errorf("bytes in flight after the held request ended: %v, want 0", got)
	}
}

// metric returns the value of the unlabelled metric name (-1 when
// /metrics does not have it).
func (s *limited) metric(name string) float64 {
	s.t.Helper()
	_, _, b := s.do("GET", "/metrics", nil)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				s.t.Fatalf("/metrics: %q: %v", l, err)
			}
			return f
		}
	}
	return -1
}
