package web

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
)

// Attacks on the listener's HTTP/2 without TLS (h2c): idle connections and
// control-frame floods must not hold the server's connection slots or
// memory.

// serveGuarded runs ListenAndServeGuarded with lim on a free loopback port
// until the test ends and returns its address.
//
// Its handler answers with the request's protocol, after up to 20 ms (until
// the request is cancelled), and counts in peak the most requests it had
// under way at once.
func serveGuarded(t *testing.T, lim Limits, peak *atomic.Int64) string {
	t.Helper()
	var active atomic.Int64
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		defer active.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Millisecond):
		}
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, r.Proto)
	})
	return serveGuardedWith(t, lim, h)
}

// serveGuardedWith runs ListenAndServeGuarded with lim and h on a free
// loopback port until the test ends and returns its address.
func serveGuardedWith(t *testing.T, lim Limits, h http.Handler) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- ListenAndServeGuarded(ctx, "127.0.0.1:0", h, time.Second, func(a net.Addr) { addrc <- a.String() }, NewGuard(lim, nil), nil)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ListenAndServeGuarded: %v", err)
		}
	})
	select {
	case a := <-addrc:
		return a
	case err := <-done:
		t.Fatalf("ListenAndServeGuarded: %v", err)
	}
	return ""
}

// h2cConn opens a connection and starts HTTP/2 on it with prior knowledge.
func h2cConn(t *testing.T, addr string) (net.Conn, *http2.Framer) {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

// untilClosed reads frames until the server closes the connection and
// reports whether it did before limit; it answers the server's SETTINGS.
func untilClosed(c net.Conn, fr *http2.Framer, limit time.Duration) (closed, goaway bool) {
	_ = c.SetReadDeadline(time.Now().Add(limit))
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			var ne net.Error
			return !(errors.As(err, &ne) && ne.Timeout()), goaway
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = fr.WriteSettingsAck()
			}
		case *http2.GoAwayFrame:
			goaway = true
		}
	}
}

// TestH2CIdleConnectionClosed: an h2c connection with no stream open is
// closed after the idle timeout, as an idle HTTP/1.1 keep-alive connection
// is; otherwise --max-conns idle connections would lock everyone out.
func TestH2CIdleConnectionClosed(t *testing.T) {
	addr := serveGuarded(t, Limits{IdleTimeout: time.Second}, new(atomic.Int64))
	// A request over h2c works.
	hc := &http.Client{Transport: &http2.Transport{AllowHTTP: true,
		DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
			return net.Dial(network, addr)
		}}}
	resp, err := hc.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "HTTP/2.0" {
		t.Fatalf("h2c request served as %q", b)
	}
	c, fr := h2cConn(t, addr)
	closed, goaway := untilClosed(c, fr, 30*time.Second)
	if !closed {
		t.Fatal("an idle h2c connection was still open 30 s later (idle timeout 1 s)")
	}
	if !goaway {
		t.Error("the idle h2c connection was closed without a GOAWAY")
	}
}

// TestH2CControlFrameFlood: a client that sends PING frames without
// reading the acknowledgements gets its connection closed instead
// of making the server queue answers without bound; one that opens streams
// and resets them at once (the "rapid reset" attack) does not make the
// server run more handlers at once than a connection's stream limit. The
// server goes on answering others.
func TestH2CControlFrameFlood(t *testing.T) {
	var peak atomic.Int64
	addr := serveGuarded(t, Limits{}, &peak)
	t.Run("pings", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		// A small receive buffer, never read: the server's answers back up.
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		_ = c.SetWriteDeadline(time.Now().Add(60 * time.Second))
		bw := bufio.NewWriterSize(c, 64<<10)
		fr := http2.NewFramer(bw, c)
		_, werr := io.WriteString(bw, http2.ClientPreface)
		if werr == nil {
			werr = fr.WriteSettings()
		}
		const pings = 2_000_000
		for i := 0; i < pings && werr == nil; i++ {
			werr = fr.WritePing(false, [8]byte{byte(i), byte(i >> 8), byte(i >> 16)})
			if i%1000 == 999 {
				werr = errors.Join(werr, bw.Flush())
			}
		}
		werr = errors.Join(werr, bw.Flush())
		if werr == nil {
			if closed, _ := untilClosed(c, http2.NewFramer(io.Discard, c), 30*time.Second); !closed {
				t.Fatalf("%d PING frames whose answers were never read: the connection is still open", pings)
			}
		}
		t.Logf("flood ended by: %v", werr)
	})
	t.Run("rapid-reset", func(t *testing.T) {
		c, fr := h2cConn(t, addr)
		_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
		var werr error
		for id := uint32(1); id < 2*100_000 && werr == nil; id += 2 {
			werr = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: rapidResetHeaders, EndHeaders: true, EndStream: true})
			if werr == nil {
				werr = fr.WriteRSTStream(id, http2.ErrCodeCancel)
			}
		}
		t.Logf("flood ended by: %v", werr)
		// Go's HTTP/2 server runs at most MaxConcurrentStreams
		// (Limits.MaxConnStreams) handlers of a connection at once,
		// however fast streams are reset, and closes a connection that
		// queues too many more.
		if p := peak.Load(); p > DefaultMaxConnStreams {
			t.Errorf("%d handlers of one connection ran at once during the rapid-reset flood, want at most %d", p, DefaultMaxConnStreams)
		}
	})
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("after the floods: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("after the floods: %s", resp.Status)
	}
}

// rapidResetHeaders is the HPACK block of GET http://x/ (static table
// entries: :method GET, :scheme http, :path /, and :authority x).
var rapidResetHeaders = []byte{0x82, 0x86, 0x84, 0x41, 0x01, 'x'}

// TestPathTricksKeepTheRule: spellings of a path that a router or a proxy
// might treat as another route reach either the route they clean to, under
// that route's rule, or no route. A reader may not list tokens and a token
// limited to other-* may not read stream s however the path is written,
// and a method-override header changes nothing.
func TestPathTricksKeepTheRule(t *testing.T) {
	e := newAuthEnv(t, Security{Auth: true})
	addr := strings.TrimPrefix(e.ts.URL, "http://")
	// send writes the request line with the path exactly as given.
	send := func(method, rawPath, who string, hdr map[string]string) (int, string) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n",
			method, rawPath, addr, e.tokens[who].Secret)
		for k, v := range hdr {
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
		b.WriteString("\r\n{}")
		if _, err := io.WriteString(c, b.String()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	for _, c := range []struct {
		who, path string
		want      int
		location  string
	}{
		{"reader", "/api/v1/tokens", 403, ""},
		{"reader", "//api/v1/tokens", 307, "/api/v1/tokens"},
		{"reader", "/api/v1//tokens", 307, "/api/v1/tokens"},
		{"reader", "/./api/v1/tokens", 307, "/api/v1/tokens"},
		{"reader", "/api/v1/streams/../tokens", 307, "/api/v1/tokens"},
		{"reader", "/api/v1/%74okens", 403, ""},
		{"reader", "/api/v1/streams/%2e%2e/tokens", 404, ""},
		{"reader", "/api/v1/tokens/", 404, ""},
		{"reader", "/API/v1/tokens", 404, ""},
		{"limited-admin", "/api/v1/streams/s", 403, ""},
		{"limited-admin", "/api/v1/streams/%73", 403, ""},
		{"limited-admin", "/api/v1/streams/S", 403, ""},
		{"limited-admin", "/api/v1/streams/other-x%2f..%2fs", 403, ""},
		{"limited-admin", "/api/v1/streams/other-x/../s", 307, "/api/v1/streams/s"},
		{"limited-admin", "/api/v1/jobs/j", 403, ""},
		{"limited-admin", "/api/v1/jobs/other-x%2f..%2fj", 404, ""},
	} {
		st, loc := send("GET", c.path, c.who, nil)
		if st != c.want || !strings.HasSuffix(loc, c.location) {
			t.Errorf("%s GET %s: %d (Location %q), want %d %s", c.who, c.path, st, loc, c.want, c.location)
		}
	}
	for _, h := range []string{"X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"} {
		if st, _ := send("POST", "/api/v1/streams/s", "limited-admin", map[string]string{h: "DELETE"}); st == 200 || st == 204 {
			t.Errorf("POST with %s: DELETE: %d", h, st)
		}
		if st, _ := send("POST", "/api/v1/streams/s", "admin", map[string]string{h: "DELETE"}); st == 200 || st == 204 {
			t.Errorf("admin POST with %s: DELETE: %d", h, st)
		}
	}
	if _, err := e.srv.store.DescribeStream("s"); err != nil {
		t.Fatalf("stream s after the tricks: %v", err)
	}
}

// TestStalledReaderReleased: a client that asks for a large answer and
// stops reading it must not hold the handler and its connection for ever
// (a reader could otherwise take every --max-conns slot with answers it
// never reads, and keep them past the idle timeout): the handler's write
// fails after the write timeout, over HTTP/1.1 and over h2c. A client that
// reads slowly but steadily is not cut.
func TestStalledReaderReleased(t *testing.T) {
	const chunk = 64 << 10
	// Each path's handler says how it ended on its own channel.
	ends := map[string]chan error{"/": make(chan error, 1), "/h1": make(chan error, 1), "/small": make(chan error, 1)}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, chunk)
		n := 2048 // 128 MiB: far more than socket buffers hold
		if r.URL.Path == "/small" {
			n = 64 // 4 MiB
		}
		for range n {
			if _, err := w.Write(buf); err != nil {
				ends[r.URL.Path] <- err
				return
			}
		}
		ends[r.URL.Path] <- nil
	})
	addr := serveGuardedWith(t, Limits{WriteTimeout: time.Second}, h)
	stall := func(t *testing.T, ended chan error, request func(c net.Conn)) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		request(c) // and read nothing
		select {
		case err := <-ended:
			if err == nil {
				t.Fatal("128 MiB written to a client that read none of it")
			}
		case <-time.After(60 * time.Second):
			t.Fatal("the handler writing to a client that stopped reading was still blocked 60 s later (write timeout 1 s)")
		}
	}
	t.Run("http1", func(t *testing.T) {
		stall(t, ends["/h1"], func(c net.Conn) { fmt.Fprintf(c, "GET /h1 HTTP/1.1\r\nHost: %s\r\n\r\n", addr) })
	})
	t.Run("h2c", func(t *testing.T) {
		stall(t, ends["/"], func(c net.Conn) {
			bw := bufio.NewWriter(c)
			io.WriteString(bw, http2.ClientPreface)
			fr := http2.NewFramer(bw, nil)
			fr.WriteSettings()
			fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: rapidResetHeaders, EndHeaders: true, EndStream: true})
			// Let the server send far more than the default window.
			fr.WriteWindowUpdate(0, 1<<30)
			fr.WriteWindowUpdate(1, 1<<30)
			bw.Flush()
		})
	})
	t.Run("slow steady reader", func(t *testing.T) {
		resp, err := http.Get("http://" + addr + "/small")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		// 4 MiB taken 256 KiB at a time with pauses shorter than the
		// write timeout.
		buf := make([]byte, 256<<10)
		total := 0
		for {
			n, err := io.ReadFull(resp.Body, buf)
			total += n
			if err != nil {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if total != 64*chunk {
			t.Fatalf("slow reader got %d bytes, want %d", total, 64*chunk)
		}
		if err := <-ends["/small"]; err != nil {
			t.Fatalf("the handler of a slow but steady reader: %v", err)
		}
	})
}
