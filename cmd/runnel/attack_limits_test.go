package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// Attacks on the server's resources, against the real binary: slow request
// bodies, many shards under a low open-file limit, a full disk.

// TestAttackSlowBodies opens more connections than --max-conns, each
// sending request headers that announce a body and then trickling it. The
// server must stay healthy (/healthz answers throughout), answer the
// connections past the cap with 503 and Retry-After (a Kinesis request with
// its throttling error), and end the slow bodies after --body-timeout
// instead of holding them forever.
func TestAttackSlowBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	const maxConns, conns = 60, 100
	srv := newLimited(t, t.TempDir(), "--max-conns", fmt.Sprint(maxConns), "--body-timeout", "3s")
	srv.Start()
	srv.CreateStream("slow", 1)
	res := slowBodies(t, srv, conns, 100_000, func() {
		// While the slow bodies are held: the health check answers, and a
		// Kinesis request gets Kinesis's throttling error.
		for range 5 {
			if !srv.Healthy() {
				t.Errorf("/healthz did not answer while %d slow connections were open", conns)
			}
			time.Sleep(200 * time.Millisecond)
		}
		_, _, mb := srv.do("GET", "/metrics", nil)
		for _, l := range strings.Split(string(mb), "\n") {
			if strings.HasPrefix(l, "runnel_http") {
				t.Log(l)
			}
		}
		// Fill any slot a closed health-check connection freed, then
		// try new connections, past the cap.
		for range 3 {
			if c, err := net.Dial("tcp", srv.Addr); err == nil {
				defer c.Close()
			}
		}
		time.Sleep(100 * time.Millisecond)
		srv.Client = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
		defer func() { srv.Client = nil }()
		if st, _, b := srv.do("GET", "/healthz", nil); st != 200 {
			t.Errorf("/healthz on a connection past the cap: %d %s", st, b)
		}
		if st, h, b := srv.do("GET", "/api/v1/streams", nil); st != 503 || h.Get("Retry-After") == "" {
			t.Errorf("REST request on a connection past the cap: %d %s (Retry-After %q), want 503 with Retry-After", st, b, h.Get("Retry-After"))
		}
		st, body := srv.kinesis("DescribeLimits", map[string]any{})
		if st != 400 || !strings.Contains(string(body), "ProvisionedThroughputExceededException") {
			t.Errorf("a Kinesis request past the connection cap: got %d %s, want 400 ProvisionedThroughputExceededException", st, body)
		}
	})
	if res.refused < conns-maxConns-5 {
		t.Errorf("only %d of %d connections past the cap of %d got 503", res.refused, conns, maxConns)
	}
	if res.held > 0 {
		t.Errorf("%d slow bodies were still held after 20 s (body timeout 3 s)", res.held)
	}
	if !srv.Healthy() {
		t.Fatalf("server unhealthy after the attack; logs:\n%s", srv.Logs())
	}
}

// TestAttackSlowLargeBodies announces 10 MB bodies on 40 connections and
// trickles them: the bytes they reserve are capped by --max-inflight, the
// connections past it get 503 at once, and the rest end at the body
// timeout.
func TestAttackSlowLargeBodies(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	srv := newLimited(t, t.TempDir(), "--max-inflight", "64MiB", "--body-timeout", "3s")
	srv.Start()
	srv.CreateStream("slow", 1)
	res := slowBodies(t, srv, 40, 10_000_000, func() {
		if !srv.Healthy() {
			t.Errorf("/healthz did not answer")
		}
	})
	if res.refused < 30 || res.held > 0 {
		t.Errorf("40 slow 10 MB bodies under a 64 MiB cap: %d refused, %d held; want at least 30 refused, none held", res.refused, res.held)
	}
}

type slowResult struct{ refused, ended, held int }

// slowBodies opens n connections, each sending headers for a body of
// length bytes and then a byte every 200 ms; during runs while they are
// open. It counts the connections refused with 503 (each must carry
// Retry-After), ended otherwise, and still held after 20 s.
func slowBodies(t *testing.T, srv *limited, n, length int, during func()) slowResult {
	head := fmt.Sprintf("POST /api/v1/streams/slow/records HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", srv.Addr, length)
	type answer struct{ status, retryAfter string }
	answers := make([]answer, n)
	var wg sync.WaitGroup
	for i := range n {
		c, err := net.Dial("tcp", srv.Addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		if _, err := io.WriteString(c, head); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer c.Close()
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tk := time.NewTicker(200 * time.Millisecond)
				defer tk.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tk.C:
						if _, err := c.Write([]byte("[")); err != nil {
							return
						}
					}
				}
			}()
			c.SetReadDeadline(time.Now().Add(20 * time.Second))
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			var ne net.Error
			switch {
			case err != nil && errors.As(err, &ne) && ne.Timeout():
				answers[i] = answer{status: "held"}
			case err != nil:
				answers[i] = answer{status: "closed"}
			default:
				resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				answers[i] = answer{status: resp.Status, retryAfter: resp.Header.Get("Retry-After")}
				_ = b
			}
		}()
	}
	during()
	wg.Wait()
	var r slowResult
	for i, a := range answers {
		switch {
		case strings.HasPrefix(a.status, "503"):
			r.refused++
			if a.retryAfter == "" {
				t.Errorf("connection %d: 503 without Retry-After", i)
			}
		case a.status == "held":
			r.held++
		default:
			r.ended++
		}
	}
	t.Logf("%d connections: %d refused (503), %d ended by the body timeout, %d held 20 s", n, r.refused, r.ended, r.held)
	return r
}

// TestAttackFileDescriptors creates more shards than the open-file limit
// of the server process (set with ulimit for the child), writes to every
// one and reads them back: the server keeps serving, creating past
// --max-shards fails with a clear error, the start warns about the low
// limit, and a restart does not open every segment.
func TestAttackFileDescriptors(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	const nofile, perStream, nStreams = 256, 64, 5 // 320 shards
	srv := newLimited(t, t.TempDir(), "--max-shards", "400")
	srv.NoFile = nofile
	srv.Start()
	if !strings.Contains(srv.Logs(), "open-file limit is too low") {
		t.Errorf("no warning about the low open-file limit at start; logs:\n%s", srv.Logs())
	}
	want := map[string]map[string]bool{}
	for s := range nStreams {
		name := fmt.Sprintf("fd%d", s)
		srv.CreateStream(name, perStream)
		want[name] = map[string]bool{}
		// 4 records per shard (explicit hash keys spread evenly), twice,
		// so each shard has a segment and a writer.
		for round := range 2 {
			var recs []map[string]any
			for i := range perStream * 4 {
				d := fmt.Sprintf("%s-%d-%d", name, round, i)
				want[name][d] = true
				hk := evenHashKey(i%perStream, perStream)
				recs = append(recs, map[string]any{"key": d, "explicit_hash_key": hk, "data": d})
			}
			st, _, b := srv.do("POST", "/api/v1/streams/"+name+"/records", map[string]any{"records": recs})
			if st != 200 {
				t.Fatalf("put to %s: %d %s\nlogs:\n%s", name, st, b, testutil.Tail(srv.Logs(), 3000))
			}
		}
	}
	if fds := srv.openFDs(); fds >= nofile {
		t.Errorf("server holds %d fds, at its limit of %d", fds, nofile)
	}
	st, _, b := srv.do("POST", "/api/v1/streams", map[string]any{"name": "toomany", "shards": 100})
	if st != 409 || !strings.Contains(string(b), "--max-shards") {
		t.Errorf("creating past --max-shards: got %d %s, want 409 naming --max-shards", st, b)
	}
	ks, kb := srv.kinesis("CreateStream", map[string]any{"StreamName": "toomany2", "ShardCount": 100})
	if ks != 400 || !strings.Contains(string(kb), "LimitExceededException") {
		t.Errorf("Kinesis CreateStream past the cap: got %d %s, want LimitExceededException", ks, kb)
	}
	ls, lb := srv.kinesis("DescribeLimits", map[string]any{})
	var lim struct{ ShardLimit, OpenShardCount int }
	json.Unmarshal(lb, &lim)
	if ls != 200 || lim.ShardLimit != 400 || lim.OpenShardCount != perStream*nStreams {
		t.Errorf("DescribeLimits: %d %s, want ShardLimit 400 and OpenShardCount %d", ls, lb, perStream*nStreams)
	}
	for name, w := range want {
		got := srv.readAll(name)
		for d := range w {
			if !got[d] {
				t.Fatalf("record %s of %s lost", d, name)
			}
		}
	}
	if !srv.Healthy() {
		t.Fatal("server unhealthy")
	}
	if n := countLines(srv.Logs(), "too many open files"); n > 0 {
		t.Errorf("%d log lines say too many open files", n)
	}
	srv.Stop()
	srv.Start()
	if fds := srv.openFDs(); fds > 100 {
		t.Errorf("after a restart the server holds %d fds for %d shards: segments are held open", fds, perStream*nStreams)
	}
	got := srv.readAll("fd0")
	if len(got) != len(want["fd0"]) {
		t.Errorf("after restart fd0 has %d records, want %d", len(got), len(want["fd0"]))
	}
}

// evenHashKey is a hash key inside shard i of n even shards.
func evenHashKey(i, n int) string {
	// The key space is [0, 2^128); shard i starts at i*(2^128/n). Its middle
	// is a safe key: (2i+1) * 2^127 / n.
	k := new(big.Int).Lsh(big.NewInt(int64(2*i+1)), 127)
	return k.Div(k, big.NewInt(int64(n))).String()
}

// TestAttackDiskFull fills the data directory's filesystem (a small tmpfs)
// while producers put records: puts get a retryable error (REST 503 with
// Retry-After, Kinesis a throttling error), the log is not flooded, and
// once space is freed puts succeed again without a restart. Every
// acknowledged record is read back, also after a restart.
func TestAttackDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("attack test skipped in -short mode")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s); the disk-full path is covered by the streams package's injected-ENOSPC test", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	data := filepath.Join(mnt, "data")
	// A filler the test removes to free space.
	filler := filepath.Join(mnt, "filler")
	if err := os.WriteFile(filler, make([]byte, 6<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := newLimited(t, data)
	srv.Start()
	srv.CreateStream("full", 2)
	payload := strings.Repeat("x", 4000)
	acked := map[string]bool{}
	put := func(batch int) (int, http.Header, []byte) {
		var recs []map[string]any
		ids := make([]string, 50)
		for i := range ids {
			ids[i] = fmt.Sprintf("r%d-%d-%s", batch, i, payload)
			recs = append(recs, map[string]any{"key": fmt.Sprint(i), "data": ids[i]})
		}
		st, h, b := srv.do("POST", "/api/v1/streams/full/records", map[string]any{"records": recs})
		if st == 200 {
			for _, id := range ids {
				acked[id] = true
			}
		}
		return st, h, b
	}
	batch := 0
	var full bool
	for ; batch < 400; batch++ {
		st, h, b := put(batch)
		if st == 200 {
			continue
		}
		if st != 503 || h.Get("Retry-After") == "" {
			t.Fatalf("put on a full disk: got %d (Retry-After %q) %s, want 503 with Retry-After", st, h.Get("Retry-After"), b)
		}
		full = true
		break
	}
	if !full {
		t.Fatal("the disk never filled")
	}
	// Keep putting for 3 s: every answer is retryable, and the log stays
	// short.
	logBefore := len(strings.Split(srv.Logs(), "\n"))
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		batch++
		if st, _, b := put(batch); st != 503 && st != 200 {
			t.Fatalf("put on a full disk: got %d %s, want 503", st, b)
		}
		ks, kb := srv.kinesis("PutRecord", map[string]any{"StreamName": "full", "PartitionKey": "k", "Data": "eHh4"})
		if ks == 200 {
			continue
		}
		if ks != 400 || !strings.Contains(string(kb), "ProvisionedThroughputExceededException") {
			t.Fatalf("Kinesis PutRecord on a full disk: got %d %s, want a retryable throttling error", ks, kb)
		}
	}
	if n := len(strings.Split(srv.Logs(), "\n")) - logBefore; n > 60 {
		t.Errorf("%d log lines in 3 s of a full disk; logs end:\n%s", n, testutil.Tail(srv.Logs(), 3000))
	}
	if !srv.Healthy() {
		t.Fatal("server unhealthy on a full disk")
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// Space is back: puts succeed again within a few seconds, no restart.
	ok := testutil.Within(10*time.Second, func() bool {
		batch++
		st, _, _ := put(batch)
		return st == 200
	})
	if !ok {
		t.Fatalf("puts still fail 10 s after space was freed; logs:\n%s", testutil.Tail(srv.Logs(), 3000))
	}
	for range 5 {
		batch++
		if st, _, b := put(batch); st != 200 {
			t.Fatalf("put after space came back: %d %s", st, b)
		}
	}
	check := func(when string) {
		got := srv.readAll("full")
		missing := 0
		for id := range acked {
			if !got[id] {
				missing++
			}
		}
		if missing > 0 {
			t.Fatalf("%s: %d of %d acknowledged records missing", when, missing, len(acked))
		}
	}
	check("after space came back")
	srv.Stop()
	srv.Start()
	check("after a restart")
	t.Logf("%d records acknowledged across the full disk", len(acked))
}
