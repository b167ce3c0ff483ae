package web

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
)

// TestServeHTTPLimitFlags: runnel serve's flags for the HTTP limits reach
// the server: --max-header-bytes (431 past it), --idle-timeout (an idle
// keep-alive connection is closed), --write-timeout (a client that stops
// reading has its answer cut), --max-conn-streams (HTTP/2's
// SETTINGS_MAX_CONCURRENT_STREAMS), --max-previews and --max-live-results
// (the caps in /metrics); and nonsense values are refused at start with an
// error naming the flag.
func TestServeHTTPLimitFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("starts runnel serve")
	}
	t.Run("nonsense", func(t *testing.T) {
		for _, c := range [][]string{
			{"--max-header-bytes", "10"}, {"--max-header-bytes", "1TiB"}, {"--max-header-bytes", "lots"},
			{"--write-timeout", "0s"}, {"--write-timeout", "10ms"}, {"--idle-timeout", "-1s"},
			{"--max-conn-streams", "0"}, {"--max-conn-streams", "5000"},
			{"--max-previews", "0"}, {"--max-live-results", "-1"},
		} {
			args := append([]string{"serve", "--data", t.TempDir(), "--addr", testbin.FreeAddr(t)}, c...)
			_, stderr, code := testbin.Run(t, "", nil, args...)
			if code == 0 || !strings.Contains(stderr, c[0]) {
				t.Errorf("serve %s %s: exit %d, stderr %q; want a usage error naming %s", c[0], c[1], code, stderr, c[0])
			}
		}
	})

	// No keep-alive: with --idle-timeout 1s the server may close an idle
	// connection just as a client sends on it again.
	noKeepAlive := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 60 * time.Second}
	srv := testbin.Start(t, testbin.Options{Client: noKeepAlive, Flags: []string{"--max-header-bytes", "8KiB", "--idle-timeout", "1s", "--write-timeout", "1s",
		"--max-conn-streams", "7", "--max-previews", "1", "--max-live-results", "3"}})
	addr := strings.TrimPrefix(srv.URL, "http://")

	t.Run("max-header-bytes", func(t *testing.T) {
		for _, c := range []struct{ size, want int }{{12 << 10, http.StatusRequestHeaderFieldsTooLarge}, {4 << 10, http.StatusOK}} {
			req := srv.Request("GET", "/healthz", "", nil)
			req.Header.Set("X-Pad", strings.Repeat("a", c.size))
			if st, _, b := srv.Send(req); st != c.want {
				t.Errorf("a %d KiB header with --max-header-bytes 8KiB: %d %s, want %d", c.size>>10, st, b, c.want)
			}
		}
	})

	t.Run("idle-timeout", func(t *testing.T) {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		br := bufio.NewReader(c)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		// With the default of 2 min the connection would still be open.
		_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
		if _, err := br.ReadByte(); !errors.Is(err, io.EOF) {
			t.Errorf("an idle keep-alive connection with --idle-timeout 1s, 30 s later: %v, want it closed (EOF)", err)
		}
	})

	t.Run("write-timeout", func(t *testing.T) {
		srv.CreateStream("big", 1)
		rec := `{"key":"k","data":"` + strings.Repeat("x", 1000) + `"}`
		batch := `{"records":[` + strings.TrimSuffix(strings.Repeat(rec+",", 500), ",") + `]}`
		for range 20 {
			if st, b := srv.Do("POST", "/api/v1/streams/big/records", "application/json", batch); st != 200 {
				t.Fatalf("put: %d %s", st, b)
			}
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.(*net.TCPConn).SetReadBuffer(4096)
		fmt.Fprintf(c, "GET /api/v1/streams/big/records?shard=shardId-000000000000&limit=10000 HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		// Read nothing: the server's writes of the 10 MiB answer stall.
		// Within --write-timeout 1s of a stalled write it must give the
		// connection up (with the default of 2 min it would hold it, and
		// its --max-conns slot, that long). Each scrape comes on a
		// connection of its own, so the count is the stalled one and the
		// scrape's.
		conns := func() float64 {
			resp, err := noKeepAlive.Get(srv.URL + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			for _, l := range strings.Split(string(b), "\n") {
				if v, ok := strings.CutPrefix(l, "runnel_http_connections "); ok {
					f, _ := strconv.ParseFloat(v, 64)
					return f
				}
			}
			t.Fatalf("/metrics lacks runnel_http_connections")
			return 0
		}
		// The answer has begun once its header arrives; then nothing more
		// is read.
		if _, err := http.ReadResponse(bufio.NewReaderSize(c, 16), nil); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(60 * time.Second)
		for conns() != 1 {
			if time.Now().After(deadline) {
				t.Fatalf("runnel_http_connections %v, want 1 (the scrape's): a connection whose client reads nothing was not given up (--write-timeout 1s)", conns())
			}
			time.Sleep(50 * time.Millisecond)
		}
	})

	t.Run("max-conn-streams", func(t *testing.T) {
		if c := dialH2(t, addr, false); c.maxStreams != 7 {
			t.Errorf("SETTINGS_MAX_CONCURRENT_STREAMS %d, want 7 (--max-conn-streams)", c.maxStreams)
		}
	})

	t.Run("slots", func(t *testing.T) {
		_, b := srv.Do("GET", "/metrics", "", "")
		for kind, want := range map[string]int{"previews": 1, "live_results": 3} {
			line := `runnel_http_slots_limit{kind="` + kind + `"} ` + strconv.Itoa(want)
			if !strings.Contains(string(b), line+"\n") {
				t.Errorf("/metrics lacks %q", line)
			}
		}
	})
}
