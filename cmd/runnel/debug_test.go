package main

import (
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestProfilingAndPprof starts the real binary with --debug-addr and
// --pyroscope-url pointing at a local receiver: pprof answers, and profiles
// arrive at the receiver.
func TestProfilingAndPprof(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary; skipped in -short mode")
	}
	var uploads atomic.Int64
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == "POST" && strings.HasPrefix(r.URL.Path, "/ingest") {
			uploads.Add(1)
		}
	}))
	defer recv.Close()
	debug := freeAddr(t)
	srv := &server{t: t, bin: runnelBinary(t), data: t.TempDir(), addr: freeAddr(t)}
	cmd := exec.Command(srv.bin, "serve", "--data", srv.data, "--addr", srv.addr, "--debug-addr", debug,
		"--pyroscope-url", recv.URL, "--pyroscope-upload", "1s", "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = &srv.logs, &srv.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	srv.cmd = cmd
	defer srv.kill()
	deadline := time.Now().Add(20 * time.Second)
	pprofOK := false
	for time.Now().Before(deadline) && (!pprofOK || uploads.Load() == 0) {
		if resp, err := http.Get("http://" + debug + "/debug/pprof/goroutine?debug=1"); err == nil {
			pprofOK = resp.StatusCode == 200
			resp.Body.Close()
		}
		time.Sleep(100 * time.Millisecond)
	}
	if !pprofOK {
		t.Fatalf("pprof did not answer on --debug-addr; logs:\n%s", srv.logs.String())
	}
	if uploads.Load() == 0 {
		t.Fatalf("no profile reached the receiver; logs:\n%s", srv.logs.String())
	}
	// Off by default: the main port has no pprof.
	if resp, err := http.Get("http://" + srv.addr + "/debug/pprof/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("pprof is served on the main port")
		}
	}
}
