package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testbin"
	"github.com/runnel-dev/runnel/internal/testutil"
)

// demoServer is `runnel serve --demo` on a fresh data directory.
type demoServer struct{ *testbin.Server }

func startDemoServer(t *testing.T, env ...string) *demoServer {
	t.Helper()
	return &demoServer{testbin.Start(t, testbin.Options{Flags: []string{"--demo"}, Env: env})}
}

func (s *demoServer) getJSON(path string, v any) error {
	resp, err := http.Get(s.URL + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(v)
}

// TestDemoFlagsTheFlashSale runs `runnel serve --demo` five times faster
// (RUNNEL_DEMO_TIMESCALE=5: 1 s windows, the first flash sale a minute in)
// and watches the dashboard's rows: the flash sale on /p/3 must be flagged,
// as high views, and no other page may be flagged.
func TestDemoFlagsTheFlashSale(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary for about two minutes")
	}
	s := startDemoServer(t, demoTimeScaleEnv+"=5")
	defer s.Kill()
	type key struct {
		page  string
		start float64
	}
	seen := map[key]map[string]any{}
	var sale []map[string]any
	testutil.Within(4*time.Minute, func() bool {
		var rows []map[string]any
		if err := s.getJSON("/api/v1/jobs/demo/results?sink=board&format=json", &rows); err != nil {
			return false // the job may not have produced its first rows yet
		}
		for _, r := range rows {
			page, _ := r["key"].(string)
			start, _ := r["window_start"].(float64)
			seen[key{page, start}] = r
		}
		for _, r := range seen {
			if r["is_anomaly"] == true && r["key"] == "/p/3" {
				sale = append(sale, r)
			}
		}
		return sale != nil
	})
	var others []string
	for k, r := range seen {
		if r["is_anomaly"] == true && k.page != "/p/3" {
			others = append(others, fmt.Sprintf("%s at %v: views %v score %v", k.page, time.UnixMilli(int64(k.start)).UTC(), r["views"], r["anomaly_score"]))
		}
	}
	if sale == nil {
		t.Fatalf("no anomaly flagged on /p/3 within 4 minutes (%d windows seen); logs:\n%s", len(seen), s.AllLogs())
	}
	for _, r := range sale {
		e, _ := r["explanation"].(map[string]any)
		if e == nil {
			if str, ok := r["explanation"].(string); ok {
				json.Unmarshal([]byte(str), &e)
			}
		}
		if e["field"] != "views" || e["direction"] != "high" {
			t.Errorf("flash sale row explained as %v, want high views", r["explanation"])
		}
		t.Logf("flagged /p/3 at %v: views %v score %v (expected %v)", time.UnixMilli(int64(r["window_start"].(float64))).UTC(), r["views"], r["anomaly_score"], r["expected"])
	}
	if len(others) > 0 {
		t.Errorf("other pages were flagged:\n%s", strings.Join(others, "\n"))
	}
}

// TestDemoEventTimeAfterKill runs the demo for a while, kills the server
// with SIGKILL, restarts it, and checks that the demo's watermark is near
// the wall clock (not ahead of it by the first run's length) and that the
// job status says so in watermark_lag_ms.
func TestDemoEventTimeAfterKill(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the real binary for about 40 s")
	}
	s := startDemoServer(t)
	lagOf := func() (int64, bool) {
		var info struct {
			State          string `json:"state"`
			Watermark      *int64 `json:"watermark"`
			WatermarkLagMs *int64 `json:"watermark_lag_ms"`
		}
		if err := s.getJSON("/api/v1/jobs/demo", &info); err != nil || info.Watermark == nil || info.WatermarkLagMs == nil {
			return 0, false
		}
		now := time.Now().UnixMilli()
		if d := (now - *info.Watermark) - *info.WatermarkLagMs; d < -2000 || d > 2000 {
			t.Errorf("watermark_lag_ms %d, but now - watermark = %d", *info.WatermarkLagMs, now-*info.Watermark)
		}
		return *info.WatermarkLagMs, true
	}
	// Run long enough for checkpoints (every 5 s) and for a jump ahead to
	// show: the old generator resumed at its position plus the new clock.
	waitLag := func(what string) int64 {
		var lag int64
		if testutil.Within(60*time.Second, func() bool {
			l, ok := lagOf()
			lag = l
			return ok
		}) {
			return lag
		}
		t.Fatalf("%s: the demo job reported no watermark lag within 60 s; logs:\n%s", what, s.AllLogs())
		return 0
	}
	waitLag("first run")
	// Two completed checkpoints: the restart resumes the generator from
	// a position at least a checkpoint interval (5 s) into the run, so a
	// jump ahead by the first run's length shows past the 3 s bound.
	if !testutil.Within(60*time.Second, func() bool {
		var info jobView
		return s.getJSON("/api/v1/jobs/demo", &info) == nil && info.completed() >= 2
	}) {
		t.Fatalf("the demo job completed no two checkpoints within 60 s; logs:\n%s", s.AllLogs())
	}
	s.Kill()
	time.Sleep(2 * time.Second)
	s.Start()
	defer s.Kill()
	waitLag("after the restart")
	// Watch it for a few seconds: replayed records must not carry event
	// times ahead of the clock either.
	for range 10 {
		lag, ok := lagOf()
		if ok && lag < -3000 {
			t.Fatalf("after kill -9 and restart the demo's watermark is %.1f s ahead of the clock", float64(-lag)/1000)
		}
		if ok && lag > 30000 {
			t.Fatalf("after kill -9 and restart the demo's watermark lags the clock by %.1f s", float64(lag)/1000)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
