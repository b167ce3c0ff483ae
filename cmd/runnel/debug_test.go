package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
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
	srv := testbin.Start(t, testbin.Options{Flags: []string{"--debug-addr", debug,
		"--pyroscope-url", recv.URL, "--pyroscope-upload", "1s"}})
	pprofOK := false
	testutil.Within(20*time.Second, func() bool {
		if resp, err := http.Get("http://" + debug + "/debug/pprof/goroutine?debug=1"); err == nil {
			pprofOK = resp.StatusCode == 200
			resp.Body.Close()
		}
		return pprofOK && uploads.Load() > 0
	})
	if !pprofOK {
		t.Fatalf("pprof did not answer on --debug-addr; logs:\n%s", srv.Logs())
	}
	if uploads.Load() == 0 {
		t.Fatalf("no profile reached the receiver; logs:\n%s", srv.Logs())
	}
	// Off by default: the main port has no pprof.
	if resp, err := http.Get(srv.URL + "/debug/pprof/"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("pprof is served on the main port")
		}
	}
}
