package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
)

// TestRestartStrategyResumesFailedRun: a job whose JavaScript throws on a
// poisoned record is restarted by its strategy from its latest checkpoint;
// once the record is mended the job finishes, and its stream sink holds
// every record exactly once.
func TestRestartStrategyResumesFailedRun(t *testing.T) {
	st, dir, log := managerStore(t)
	files := filepath.Join(dir, "files")
	if err := os.MkdirAll(files, 0o755); err != nil {
		t.Fatal(err)
	}
	const n, poison = 3000, 2000
	var in strings.Builder
	for i := range n {
		fail := 0
		if i == poison {
			fail = 1
		}
		fmt.Fprintf(&in, "{\"i\":%d,\"fail\":%d}\n", i, fail)
	}
	inPath := filepath.Join(files, "in.jsonl")
	if err := os.WriteFile(inPath, []byte(in.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	m := openManager(t, st, dir, log)
	defer m.Close()
	job := `name: once
source: {file: in.jsonl}
operators:
  - {id: m, map: "r => { if (r.fail === 1) throw new Error('fail-once'); return {i: r.i} }"}
sinks:
  - {id: out, stream: {name: once-out}}
checkpoint: {every: 100ms}
restart: {strategy: fixed-delay, delay: 300ms, attempts: 100}
`
	if _, err := m.Submit([]byte(job)); err != nil {
		t.Fatal(err)
	}
	var info Info
	if !testutil.Within(20*time.Second, func() bool {
		info, _ = m.Get("once")
		return info.Restarting != nil
	}) {
		t.Fatalf("no restart pending after 20s: %s %s", info.State, info.Reason)
	}
	if r := info.Restarting; info.State != "failed" || !strings.Contains(info.Reason, "fail-once") || r.Attempts != 100 || r.Attempt < 1 || r.At.IsZero() {
		t.Fatalf("waiting job: %s %q restarting %+v", info.State, info.Reason, r)
	}
	// Mend the record (same length, so positions hold), swapping the
	// file in whole. A restart that came first fails again and is
	// restarted again.
	mended := strings.Replace(in.String(), fmt.Sprintf("{\"i\":%d,\"fail\":1}", poison), fmt.Sprintf("{\"i\":%d,\"fail\":0}", poison), 1)
	if err := os.WriteFile(inPath+".new", []byte(mended), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(inPath+".new", inPath); err != nil {
		t.Fatal(err)
	}
	waitState(t, m, "once", "finished")
	seen := make([]int, n)
	for _, rec := range readStream(t, st, "once-out") {
		var r struct{ I int }
		if err := json.Unmarshal(rec.Data, &r); err != nil || r.I < 0 || r.I >= n {
			t.Fatalf("output record %q: %v", rec.Data, err)
		}
		seen[r.I]++
	}
	for i, c := range seen {
		if c != 1 {
			t.Fatalf("record %d written %d times, want exactly once", i, c)
		}
	}
	if info, _ = m.Get("once"); info.Restarting != nil {
		t.Fatalf("finished job still restarting: %+v", info.Restarting)
	}
}

// alwaysFails is a job whose run fails at its first record.
const alwaysFails = "name: boom\nsource:\n  generator: {rate: 100}\noperators:\n  - {id: m, map: \"r => { throw new Error('boom') }\"}\nsinks:\n  - {id: o, log: {}}\n"

// TestRestartAttemptsUsedUp: a job that fails at every run is restarted
// its attempts' worth of times, then stays failed saying why.
func TestRestartAttemptsUsedUp(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	defer m.Close()
	if _, err := m.Submit([]byte(alwaysFails + "restart: {strategy: exponential-delay, initial_backoff: 10ms, max_backoff: 40ms, attempts: 3}\n")); err != nil {
		t.Fatal(err)
	}
	var info Info
	if !testutil.Within(20*time.Second, func() bool {
		info, _ = m.Get("boom")
		return strings.Contains(info.Reason, "restart attempts used up")
	}) {
		t.Fatalf("after 20s: %s %q restarting %+v", info.State, info.Reason, info.Restarting)
	}
	if info.State != "failed" || info.Restarting != nil || !strings.Contains(info.Reason, "boom") || !strings.Contains(info.Reason, "3 of 3") {
		t.Fatalf("used up: %s %q restarting %+v", info.State, info.Reason, info.Restarting)
	}
	j, _ := m.job("boom")
	j.restarts.mu.Lock()
	f := j.restarts.failures
	j.restarts.mu.Unlock()
	if f != 4 {
		t.Fatalf("%d failures counted, want the first run's and 3 restarts'", f)
	}
	// A user's resume counts afresh: the job is restarted again.
	if _, err := m.Resume("boom"); err != nil {
		t.Fatal(err)
	}
	if !testutil.Within(20*time.Second, func() bool {
		info, _ = m.Get("boom")
		return strings.Contains(info.Reason, "restart attempts used up")
	}) {
		t.Fatalf("after a resume: %s %q", info.State, info.Reason)
	}
}

// TestStopOrDeleteDuringRestartWait: a job stopped or deleted while its
// restart is pending is not restarted when the countdown ends.
func TestStopOrDeleteDuringRestartWait(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	defer m.Close()
	pending := func() (*Job, int) {
		t.Helper()
		if _, err := m.SubmitWith([]byte(alwaysFails+"restart: {strategy: fixed-delay, delay: 1h}\n"), SubmitOptions{Replace: true}); err != nil {
			t.Fatal(err)
		}
		var info Info
		if !testutil.Within(20*time.Second, func() bool {
			info, _ = m.Get("boom")
			return info.Restarting != nil
		}) {
			t.Fatalf("no restart pending: %s %q", info.State, info.Reason)
		}
		if r := info.Restarting; r.Attempt != 1 || r.Attempts != 3 || time.Until(r.At) < 30*time.Minute {
			t.Fatalf("pending restart %+v, want attempt 1 of 3 in about 1h", r)
		}
		if b, _ := json.Marshal(info); !strings.Contains(string(b), `"restarting":{"attempt":1,"attempts":3,"next_attempt_at":"`) {
			t.Fatalf("status JSON: %s", b)
		}
		j, _ := m.job("boom")
		j.restarts.mu.Lock()
		defer j.restarts.mu.Unlock()
		return j, j.restarts.seq
	}
	j, seq := pending()
	if err := m.Stop("boom"); err != nil {
		t.Fatal(err)
	}
	m.autoRestart(j, seq) // the countdown ends
	if info, _ := m.Get("boom"); info.State != StateStopped || info.Restarting != nil {
		t.Fatalf("stopped during the wait: %s restarting %+v", info.State, info.Restarting)
	}

	j, seq = pending()
	if err := m.Delete("boom"); err != nil {
		t.Fatal(err)
	}
	m.autoRestart(j, seq)
	if _, err := m.Get("boom"); !errors.Is(err, ErrJobNotFound) {
		t.Fatalf("deleted during the wait: %v", err)
	}

	// Replaced during the wait: the new job is not touched.
	j, seq = pending()
	nj, err := m.SubmitWith([]byte(strings.Replace(alwaysFails, "{ throw new Error('boom') }", "r", 1)), SubmitOptions{Replace: true})
	if err != nil {
		t.Fatal(err)
	}
	m.autoRestart(j, seq)
	if j2, _ := m.job("boom"); j2 != nj {
		t.Fatal("the countdown of a replaced job touched its replacement")
	}
}

// TestRestartSpec: the restart mapping's defaults, and its problems named
// with their lines.
func TestRestartSpec(t *testing.T) {
	base := "name: a\nsource:\n  generator: {count: 1}\nsinks:\n  - {id: o, log: {}}\n"
	s, err := Parse([]byte(base))
	if err != nil || s.Restart != (Restart{}) || s.Restart.enabled() {
		t.Fatalf("no restart: %+v %v", s.Restart, err)
	}
	s, err = Parse([]byte(base + "restart: {strategy: exponential-delay}\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := Restart{Strategy: RestartExponentialDelay, InitialBackoff: time.Second, MaxBackoff: 5 * time.Minute, BackoffMultiplier: 2, Jitter: 0.1, Attempts: 10, ResetAfter: 10 * time.Minute}
	if s.Restart != want {
		t.Fatalf("exponential-delay defaults %+v, want %+v", s.Restart, want)
	}
	s, err = Parse([]byte(base + "restart:\n  strategy: fixed-delay\n  jitter: 0\n"))
	if err == nil {
		t.Fatalf("jitter under fixed-delay accepted: %+v", s.Restart)
	}
	for _, c := range []struct{ file, field, text string }{
		{"restart: {delay: 1s}\n", "restart.strategy", "needs its strategy"},
		{"restart: {strategy: sometimes}\n", "restart.strategy", "not a restart strategy"},
		{"restart:\n  strategy: fixed-delay\n  jitter: 0.5\n", "restart.jitter", "not a setting of strategy fixed-delay"},
		{"restart:\n  strategy: exponential-delay\n  delay: 1s\n", "restart.delay", "not a setting"},
		{"restart:\n  strategy: exponential-delay\n  jitter: 2\n", "restart.jitter", "out of range"},
		{"restart:\n  strategy: exponential-delay\n  backoff_multiplier: 0.5\n", "restart.backoff_multiplier", "out of range"},
		{"restart:\n  strategy: exponential-delay\n  initial_backoff: 1m\n  max_backoff: 1s\n", "restart.max_backoff", "shorter than"},
		{"restart:\n  strategy: fixed-delay\n  attempts: 0\n", "restart.attempts", "at least 1"},
		{"restart:\n  strategy: fixed-delay\n  attempts: 5000\n", "restart.attempts", "too many"},
		{"restart:\n  strategy: none\n  attempts: 2\n", "restart.attempts", "not a setting of strategy none"},
		{"restart:\n  strategy: fixed-delay\n  every: 1s\n", "restart.every", "unknown field"},
	} {
		_, err := Parse([]byte(base + c.file))
		var se *SpecError
		if !errors.As(err, &se) {
			t.Fatalf("%q: %v", c.file, err)
		}
		found := false
		for _, p := range se.Problems {
			if p.Field == c.field && strings.Contains(p.Message, c.text) && p.Line > 5 {
				found = true
			}
		}
		if !found {
			t.Errorf("%q: want %s %q with a line; got %v", c.file, c.field, c.text, err)
		}
	}
}

// TestRestartDelays: fixed-delay waits the same; exponential-delay grows
// by its multiplier up to its cap, within its jitter.
func TestRestartDelays(t *testing.T) {
	f := Restart{Strategy: RestartFixedDelay, Delay: 7 * time.Second}
	if d := f.delay(5, 0.9); d != 7*time.Second {
		t.Fatalf("fixed delay %s", d)
	}
	e := Restart{Strategy: RestartExponentialDelay, InitialBackoff: time.Second, MaxBackoff: 10 * time.Second, BackoffMultiplier: 2, Jitter: 0.1}
	for _, c := range []struct {
		n       int
		rnd     float64
		want    time.Duration
		comment string
	}{
		{1, 0.5, time.Second, "no jitter at the middle"},
		{2, 0.5, 2 * time.Second, ""},
		{4, 0.5, 8 * time.Second, ""},
		{5, 0.5, 10 * time.Second, "capped"},
		{40, 0.5, 10 * time.Second, "capped"},
		{1, 0, 900 * time.Millisecond, "jitter down"},
		{5, 1, 11 * time.Second, "jitter up from the cap"},
	} {
		if d := e.delay(c.n, c.rnd); d != c.want {
			t.Errorf("attempt %d rnd %g: %s, want %s %s", c.n, c.rnd, d, c.want, c.comment)
		}
	}
}

// TestRestartCountsConsecutiveFailures: failures count on until the
// attempts are used up; a run of reset_after or more makes its failure
// the first again, as does a user's resume (reset).
func TestRestartCountsConsecutiveFailures(t *testing.T) {
	m := &Manager{log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	j := &Job{ID: "c", Spec: &Spec{Restart: Restart{Strategy: RestartFixedDelay, Delay: time.Hour, Attempts: 2, ResetAfter: time.Minute}}}
	defer j.restarts.reset()
	for i, c := range []struct {
		ran  time.Duration
		want bool
		n    int
	}{
		{0, true, 1},
		{59 * time.Second, true, 2},
		{0, false, 3},
		{time.Minute, true, 1},
		{time.Second, true, 2},
	} {
		if got := m.scheduleRestart(j, c.ran); got != c.want || j.restarts.failures != c.n {
			t.Fatalf("failure %d after %s: scheduled %t with %d counted, want %t with %d", i, c.ran, got, j.restarts.failures, c.want, c.n)
		}
		if p := j.restarts.info(); c.want && (p == nil || p.Attempt != c.n || p.Attempts != 2) {
			t.Fatalf("failure %d: pending %+v", i, p)
		}
	}
	j.restarts.reset()
	if j.restarts.failures != 0 || j.restarts.info() != nil || j.restarts.timer != nil {
		t.Fatal("reset left a count or a countdown")
	}
	if !m.scheduleRestart(j, 0) || j.restarts.failures != 1 {
		t.Fatal("after a reset the next failure is not the first")
	}
}

// TestRestartWaitAcrossServerRestart: a server that starts again while a
// job waits for its restart leaves the job failed, without a countdown.
func TestRestartWaitAcrossServerRestart(t *testing.T) {
	st, dir, log := managerStore(t)
	m := openManager(t, st, dir, log)
	if _, err := m.Submit([]byte(alwaysFails + "restart: {strategy: fixed-delay, delay: 1h}\n")); err != nil {
		t.Fatal(err)
	}
	if !testutil.Within(20*time.Second, func() bool {
		info, _ := m.Get("boom")
		return info.Restarting != nil
	}) {
		t.Fatal("no restart pending after 20s")
	}
	m.Close()
	m = openManager(t, st, dir, log)
	defer m.Close()
	info, _ := m.Get("boom")
	if info.State != "failed" || info.Restarting != nil || !strings.Contains(info.Reason, "boom") {
		t.Fatalf("after the server's restart: %s %q restarting %+v", info.State, info.Reason, info.Restarting)
	}
}
