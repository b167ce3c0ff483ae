package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Attacks with request headers, which the server holds in memory while
// they arrive.

// TestAttackLargeHeaders: a request header past 64 KiB gets 431 at once,
// and a connection past --max-conns that sends an endless header is cut
// after as much, instead of the server holding all it sends (it had read
// the header of such a connection without a limit, for 2 s).
func TestAttackLargeHeaders(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	const maxConns = 4
	srv := newLimited(t, t.TempDir(), "--max-conns", strconv.Itoa(maxConns))
	srv.Start()
	big := strings.Repeat("a", 100<<10)
	req := srv.Request("GET", "/healthz", "", nil)
	req.Header.Set("X-Big", big)
	if st, _, b := srv.Send(req); st != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 100 KiB request header: %d %s, want 431", st, b)
	}
	req = srv.Request("GET", "/healthz", "", nil)
	req.Header.Set("X-Fine", big[:32<<10])
	if st, _, b := srv.Send(req); st != 200 {
		t.Errorf("a 32 KiB request header: %d %s, want 200", st, b)
	}

	// Hold every connection slot, then send endless headers on more.
	for range maxConns {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	time.Sleep(200 * time.Millisecond) // let the server accept them
	rss0 := rssMiB(t, srv.Pid())
	const bombs, perBomb = 8, 64 << 20
	sent := make([]int, bombs)
	var wg sync.WaitGroup
	for i := range bombs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", srv.Addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			_ = c.SetWriteDeadline(time.Now().Add(30 * time.Second))
			if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: %s\r\nX-Endless: ", srv.Addr); err != nil {
				return
			}
			chunk := []byte(strings.Repeat("a", 1<<20))
			for sent[i] < perBomb {
				n, err := c.Write(chunk)
				sent[i] += n
				if err != nil {
					break
				}
			}
		}()
	}
	wg.Wait()
	rss1 := rssMiB(t, srv.Pid())
	t.Logf("bytes each endless header got through before the server cut it: %v; server RSS %d MiB -> %d MiB", sent, rss0, rss1)
	for i, n := range sent {
		if n >= perBomb {
			t.Errorf("connection %d past the cap sent a %d MiB header without being cut", i, n>>20)
		}
	}
	if rss1-rss0 > 128 {
		t.Errorf("server RSS grew by %d MiB under endless headers on connections past the cap", rss1-rss0)
	}
	if !srv.Healthy() {
		t.Fatalf("server unhealthy after the attack; logs:\n%s", srv.Logs())
	}
}

// rssMiB is a process's resident set size in MiB.
func rssMiB(t *testing.T, pid int) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				t.Fatal(err)
			}
			return kb >> 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}
