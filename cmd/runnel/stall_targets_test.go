//go:build unix

package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/sinks"
)

// stallPause is how long TestSinkTargetsPaused holds each target paused at
// the least (and until the server has said so in all three ways). The
// default is longer than a source's idle timeout (engine.DefaultIdleTimeout):
// every shard is then held behind the waiting sink for longer than it,
// with records waiting, and must not be taken for idle.
var stallPause = flag.Duration("stall-pause", 13*time.Second, "TestSinkTargetsPaused: hold each target paused at least this long")

// TestSinkTargetsPaused runs targetsJob on the real binary and pauses its
// targets one at a time with SIGSTOP (every PostgreSQL process, versitygw,
// kfake) while records come in. While a target is paused, the sink's call
// to it waits unanswered: the server must say so within the pause in all
// three ways — a WARN naming the sink and the target, the sink's
// runnel_sink_stalled_calls_total, and a warning in the job's status.
// Then the job is stopped with windows open and resumed. In the end every
// target must hold every window of the input once, and no record may
// have been counted late.
func TestSinkTargetsPaused(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary, PostgreSQL, versitygw and kfake; skipped in -short mode")
	}
	r := startTargets(t)
	srv, hc, base, tg := r.srv, r.hc, r.base, r.targets
	stop, done := make(chan struct{}), make(chan struct{})
	go producePaced(hc, base, r.seed, stop, done)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		<-done
	}()
	resumeIfFailed := func() {
		if st := r.status(); st.State == "failed" {
			t.Logf("the job failed (%s); resuming it", st.Reason)
			r.resume()
		}
	}

	type pause struct {
		sink, kind string
		stop, cont func()
	}
	var pgPids []int
	pauses := []pause{
		{"table", "postgres", func() {
			pgPids = tg.pg.Processes()
			for _, p := range pgPids {
				syscall.Kill(p, syscall.SIGSTOP)
			}
		}, func() {
			for _, p := range pgPids {
				syscall.Kill(p, syscall.SIGCONT)
			}
		}},
		{"lake", "s3", func() { tg.gw.Signal(syscall.SIGSTOP) }, func() { tg.gw.Signal(syscall.SIGCONT) }},
		{"topic", "kafka", func() { tg.kafka.Signal(syscall.SIGSTOP) }, func() { tg.kafka.Signal(syscall.SIGCONT) }},
	}
	r.rng.Shuffle(len(pauses), func(i, j int) { pauses[i], pauses[j] = pauses[j], pauses[i] })
	// Let every sink commit once before the first pause.
	testutil.Within(30*time.Second, func() bool { return len(pgWindows(t, tg.pg)) > 0 })
	for _, p := range pauses {
		logs := len(srv.AllLogs())
		metric := fmt.Sprintf(`runnel_sink_stalled_calls_total{job="targets",kind=%q,sink=%q}`, p.kind, p.sink)
		before := metricLine(hc, base, metric)
		p.stop()
		start := time.Now()
		// The stalled call warns after sinks.StallAfter; a commit starts
		// within about three seconds (windows close every 2.5 s).
		var warned, counted, listed bool
		for !(warned && counted && listed && time.Since(start) >= *stallPause) &&
			time.Since(start) < max(sinks.StallAfter+8*time.Second, *stallPause) {
			time.Sleep(250 * time.Millisecond)
			for line := range strings.Lines(srv.AllLogs()[logs:]) {
				if strings.Contains(line, "level=WARN") && strings.Contains(line, "has not answered") &&
					strings.Contains(line, "sink="+p.sink) && strings.Contains(line, "kind="+p.kind) {
					warned = true
				}
			}
			counted = counted || metricLine(hc, base, metric) > before
			for _, w := range jobWarnings(hc, base, "targets") {
				listed = listed || strings.HasPrefix(w, fmt.Sprintf("sink %s (%s, ", p.sink, p.kind))
			}
		}
		p.cont()
		t.Logf("%s paused %v: WARN %v, metric %v, status warning %v", p.kind, time.Since(start).Round(time.Millisecond), warned, counted, listed)
		if !warned || !counted || !listed {
			t.Errorf("while %s was paused: WARN logged %v, %s counted %v, listed in the job's warnings %v\n%s",
				p.kind, warned, metric, counted, listed, testutil.Tail(srv.AllLogs()[logs:], 3000))
		}
		testutil.Within(15*time.Second, func() bool {
			resumeIfFailed()
			for _, w := range jobWarnings(hc, base, "targets") {
				if strings.Contains(w, "for an answer from its target") {
					return false
				}
			}
			return true
		})
	}
	// A stop is not the end of event time: windows open at the stop fire
	// once, when the resumed job's watermark passes them. A result at the
	// stop and another after the resume would show below as a window held
	// twice or with a count not the input's.
	late := metricLine(hc, base, lateMetric)
	stopJob(t, &http.Client{Timeout: time.Minute}, base, "targets")
	if !r.resume() {
		t.Fatalf("resume after the stop failed (job %+v)", r.status())
	}
	close(stop)
	<-done

	putEndRecords(t, hc, base)
	want := expectedWindows(t, hc, base)
	ended := time.Now()
	r.waitWindows(want, time.Minute, resumeIfFailed)
	t.Logf("every window in PostgreSQL and S3 %v after the input ended", time.Since(ended).Round(100*time.Millisecond))
	// The input is in event-time order per key, within the job's
	// watermark bound: no record is late, however long a target paused.
	if late += metricLine(hc, base, lateMetric); late != 0 {
		t.Errorf("the window operator counted %v records late", late)
	}
	r.stopAndCompare(want)
}

// producePaced puts batches of 50 records a quarter second apart (event
// times as produceSpread's: a window closes about every 2.5 s) until stop
// closes; then it closes done.
func producePaced(hc *http.Client, base string, seed int64, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	const batch = 50
	rng := rand.New(rand.NewSource(seed))
	for i := 0; ; i += batch {
		select {
		case <-stop:
			return
		case <-time.After(250 * time.Millisecond):
		}
		putUntilAcked(hc, base, eventBatch(rng, i, i+batch, 20))
	}
}

// lateMetric starts the line of the late records of targetsJob's window
// (a run's count: it starts again at 0 when the job resumes).
const lateMetric = `runnel_operator_late_records_total{job="targets"`

// jobWarnings reads the warnings of job id (none when the server does
// not answer).
func jobWarnings(hc *http.Client, base, id string) []string {
	v, _ := readJob(hc, base, id)
	return v.Warnings
}

// metricLine returns the value of the Prometheus sample whose line starts
// with prefix (0 when there is none).
func metricLine(hc *http.Client, base, prefix string) float64 {
	resp, err := hc.Get(base + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.Lines(string(b)) {
		if strings.HasPrefix(line, prefix) {
			var v float64
			f := strings.Fields(line)
			fmt.Sscan(f[len(f)-1], &v)
			return v
		}
	}
	return 0
}
