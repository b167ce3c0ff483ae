//go:build unix

package main

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	s3sink "github.com/runnel-dev/runnel/sinks/s3"
)

// targetsJob is the windowed job TestSinkTargetsDie runs: one window
// node over the 4-shard stream events, its results to PostgreSQL at dsn
// (insert mode: a duplicate shows), to S3 at endpoint (random object
// names: an object published twice shows) and to a Kafka topic at
// brokers, checkpointing every 300 ms.
func targetsJob(dsn, endpoint, brokers string) string {
	return perKeyJob("targets", "  stream: events\n  shards: 4", "5s", fmt.Sprintf(
		"  - {id: table, input: per-key, postgres: {dsn: %q, table: results, create_table: true}}\n"+
			"  - id: lake\n    input: per-key\n"+
			"    s3: {endpoint: %q, path_style: true, bucket: lake, prefix: per-key/, format: parquet, compression: zstd, suffix: random}\n"+
			"  - {id: topic, input: per-key, kafka: {brokers: %q, topic: results}}", dsn, endpoint, brokers), "300ms")
}

// targets are the servers TestSinkTargetsDie writes to and disturbs.
type targets struct {
	t     *testing.T
	pg    *testsrv.Postgres
	gw    *testsrv.S3Process
	kafka *testsrv.KafkaProcess
}

// targetsRun is targetsJob running on a server, writing to its targets.
type targetsRun struct {
	*targets
	srv  *supervised
	hc   *http.Client
	base string
	seed int64
	rng  *rand.Rand
}

// startTargets starts PostgreSQL, versitygw (bucket lake), kfake (topic
// results) and the server, and submits targetsJob; rng is seeded with
// the test's seed.
func startTargets(t *testing.T) *targetsRun {
	t.Helper()
	seed := int64(testutil.Seed(t))
	tg := &targets{t: t, pg: testsrv.StartPostgres(t), gw: testsrv.StartS3(t, "lake"),
		kafka: testsrv.StartKafkaProcess(t, 2, "results")}
	srv := newSupervised(t, tg.gw.Env()...)
	srv.start()
	r := &targetsRun{targets: tg, srv: srv, hc: &http.Client{Timeout: 5 * time.Second}, base: srv.URL,
		seed: seed, rng: rand.New(rand.NewSource(seed))}
	if !postJSONStatus(t, r.hc, r.base+"/api/v1/jobs", targetsJob(tg.pg.DSN, tg.gw.Endpoint, tg.kafka.Addr), http.StatusCreated) {
		t.Fatalf("submit failed\n%s", srv.AllLogs())
	}
	return r
}

// status reads the job's state ("unreachable" while the server does not
// answer).
func (r *targetsRun) status() jobView { return jobStatus(r.hc, r.base, "targets") }

// resume resumes the job and reports whether the server accepted that.
func (r *targetsRun) resume() bool { return postJSON(r.hc, r.base+"/api/v1/jobs/targets/resume", "") }

// waitWindows waits up to d for PostgreSQL and S3 to hold as many
// windows as want, calling each on every look (to resume a job a late
// disturbance failed), and fails the test when they do not.
func (r *targetsRun) waitWindows(want map[windowKey]windowVal, d time.Duration, each func()) {
	t := r.t
	t.Helper()
	if !testutil.Within(d, func() bool {
		each()
		return len(pgWindows(t, r.pg)) >= len(want) && countWindows(s3Windows(t, r.gw)) >= len(want)
	}) {
		st := r.status()
		t.Errorf("the windows did not all arrive within %v (job %s %s)\n%s", d, st.State, st.Reason, testutil.Tail(r.srv.AllLogs(), 6000))
	}
}

// stopAndCompare stops the job cleanly and compares each target's
// windows with want.
func (r *targetsRun) stopAndCompare(want map[windowKey]windowVal) {
	t := r.t
	t.Helper()
	stopJob(t, &http.Client{Timeout: time.Minute}, r.base, "targets")
	compareWindows(t, "postgres table", want, pgWindows(t, r.pg))
	compareWindows(t, "published Parquet objects", want, s3Windows(t, r.gw))
	compareWindows(t, "kafka result topic (read_committed)", want, kafkaWindows(t, r.kafka.Addr, len(want)))
}

// outage is one disturbance of a target: what was done, and what the job
// said while it lasted.
type outage struct {
	what string
	said string // the job's state and reason at the outage's end
	// hard: the target refused connections (stopped or killed) for dur.
	hard      bool
	dur       time.Duration
	producing bool   // records were being put all the while
	logged    string // the server's log lines written meanwhile
}

// TestSinkTargetsDie runs a checkpointing windowed job on the real binary
// that writes its window results exactly once to PostgreSQL, S3
// (versitygw) and Kafka (kfake) while, at random moments, the targets
// die under it: PostgreSQL stopped hard (immediate mode) and started
// again, its backends terminated, or all its processes paused with
// SIGSTOP past several checkpoints; versitygw SIGKILLed and started again
// on its port and directory, or paused; kfake paused; and sometimes the
// Runnel server SIGKILLed too.
//
// A running sink retries through a short outage with a WARN line per
// attempt; a job that starts while a target is down (after the server's
// kill) fails with a reason naming the sink (docs/connectors.md). The
// test checks that each failure's reason names a sink, that the job said
// something during most outages of 2 s or more, and resumes a failed job
// (POST /api/v1/jobs/{id}/resume) once the targets are back, as an
// operator would. At the end each target must hold every window of a
// batch computation over the input once: none missing, none twice, none
// wrong.
func TestSinkTargetsDie(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary, PostgreSQL, versitygw and kfake; skipped in -short mode")
	}
	r := startTargets(t)
	srv, hc, base, rng := r.srv, r.hc, r.base, r.rng

	var produced atomic.Int64
	done := make(chan struct{})
	go produceSpread(hc, base, r.seed, 20_000, &produced, done)
	var outages []outage
	var reasons []string
	serverKills, resumes := 0, 0
	// note records what the job says now, and resumes it when it failed
	// and every target is up.
	note := func(up bool) string {
		st := r.status()
		said := st.State
		if st.Reason != "" {
			said += ": " + st.Reason
			reasons = append(reasons, st.Reason)
		}
		if st.State == "failed" && up && r.resume() {
			resumes++
		}
		return said
	}
	for producing := true; producing || len(outages) < 8; {
		select {
		case <-done:
			producing, done = false, nil
			continue
		case <-srv.Exited():
			t.Fatalf("the server died by itself:\n%s", testutil.Tail(srv.AllLogs(), 4000))
		case <-time.After(time.Duration(300+rng.Intn(1200)) * time.Millisecond):
		}
		note(true)
		// Sometimes the server dies too, while the target is down.
		var crash func()
		if rng.Intn(4) == 0 {
			crash = func() {
				srv.Kill()
				srv.start()
				serverKills++
			}
		}
		logs := len(srv.AllLogs())
		o := r.disturb(rng, func() string { return note(false) }, crash)
		o.logged = srv.AllLogs()[logs:]
		o.producing = producing
		outages = append(outages, o)
		note(true)
	}
	t.Logf("produced %d records; %d disturbances, %d SIGKILLs of the server, %d resumes", produced.Load(), len(outages), serverKills, resumes)
	// A target down for 2 s or more while records come in nearly always
	// misses a commit (windows close about every 1.25 s; less often
	// while a restarted job catches up): the job must say so, in its
	// state or its log, at least for most of those outages.
	hard, said := 0, 0
	for _, o := range outages {
		t.Logf("  %s: the job said %q; %d retry warnings", o.what, o.said, strings.Count(o.logged, "retrying"))
		if o.hard && o.producing && o.dur >= 2*time.Second {
			hard++
			if strings.HasPrefix(o.said, "failed") || strings.Contains(o.logged, "retrying") {
				said++
			}
		}
	}
	if said < (hard+1)/2 {
		t.Errorf("the job said nothing during %d of %d outages of 2 s or more of a target", hard-said, hard)
	}

	// Every failure must say which sink failed, and why.
	for _, reason := range reasons {
		if !strings.Contains(reason, "sink table") && !strings.Contains(reason, "sink lake") && !strings.Contains(reason, "sink topic") &&
			!strings.Contains(reason, "postgres sink") && !strings.Contains(reason, "s3 sink") && !strings.Contains(reason, "kafka sink") {
			t.Errorf("a failure that names no sink: %s", reason)
		}
	}

	putEndRecords(t, hc, base)
	want := expectedWindows(t, hc, base)
	// Wait for every window in PostgreSQL and S3, resuming the job when a
	// late disturbance failed it.
	r.waitWindows(want, 3*time.Minute, func() { note(true) })
	r.stopAndCompare(want)
	if staged := r.gw.Objects(t, "lake", s3sink.DefaultStagingPrefix); len(staged) > 0 {
		t.Errorf("%d staged objects left after a clean stop: %v", len(staged), staged[:min(5, len(staged))])
	}
	if errs := r.gw.Objects(t, "lake", s3sink.DefaultErrorPrefix); len(errs) > 0 {
		t.Errorf("rows went to the error output: %v", errs)
	}
}

// produceSpread puts total records into the job's input stream in
// batches of 100 a quarter second apart, event times 20 ms apart and
// increasing with the put order: windows fire, and the sinks commit,
// throughout the disturbances. Each batch is retried until acknowledged
// (a retry may duplicate a batch whose outcome was unknown: 2 s of event
// time at most, within the job's 5 s watermark bound, so never late).
func produceSpread(hc *http.Client, base string, seed int64, total int, produced *atomic.Int64, done chan<- struct{}) {
	produceEvents(hc, base, seed, total, 100, 20, 250*time.Millisecond, produced, done)
}

// disturb does one random thing to one target and undoes it after a
// while (1–4 s, several checkpoint intervals), calling said every 200 ms
// in between, and crash (when not nil) half-way; it returns what it did
// and the last thing said.
func (tg *targets) disturb(rng *rand.Rand, said func() string, crash func()) (o outage) {
	t := tg.t
	wait := func(d time.Duration) string {
		var last string
		half := time.Now().Add(d / 2)
		for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
			if crash != nil && time.Now().After(half) {
				crash()
				crash = nil
			}
			last = said()
		}
		return last
	}
	d := time.Duration(1000+rng.Intn(3000)) * time.Millisecond
	o = outage{dur: d}
	kind := rng.Intn(6)
	if kind == 2 || kind == 4 || kind == 5 {
		// Not while a target is paused: the server's start waits for
		// its jobs' starts, which wait for a paused target (PostgreSQL's
		// connect, up to 30 s), so the restart would wait past the
		// pause this goroutine ends.
		crash = nil
	}
	if crash != nil {
		defer func() { o.what += ", the server SIGKILLed half-way" }()
	}
	switch kind {
	case 0:
		o.what, o.hard = fmt.Sprintf("postgres stopped (immediate) for %v", d), true
		tg.pg.Stop(t)
		o.said = wait(d)
		tg.pg.Start(t)
	case 1:
		o.what = "postgres backends terminated"
		conn := tg.pg.Connect(t)
		_, err := conn.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND backend_type = 'client backend'`)
		conn.Close(context.Background())
		if err != nil {
			t.Fatalf("terminate backends: %v", err)
		}
		o.said = wait(d)
	case 2:
		o.what = fmt.Sprintf("postgres paused for %v", d)
		pids := tg.pg.Processes()
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGSTOP)
		}
		o.said = wait(d)
		for _, p := range pids {
			syscall.Kill(p, syscall.SIGCONT)
		}
	case 3:
		o.what, o.hard = fmt.Sprintf("versitygw SIGKILLed, started again after %v", d), true
		tg.gw.Kill()
		o.said = wait(d)
		tg.gw.Start()
	case 4:
		o.what = fmt.Sprintf("versitygw paused for %v", d)
		tg.gw.Signal(syscall.SIGSTOP)
		o.said = wait(d)
		tg.gw.Signal(syscall.SIGCONT)
	case 5:
		o.what = fmt.Sprintf("kfake paused for %v", d)
		tg.kafka.Signal(syscall.SIGSTOP)
		o.said = wait(d)
		tg.kafka.Signal(syscall.SIGCONT)
	}
	return o
}

// jobStatus reads job id; a server that does not answer, or not with
// the job, gives state "unreachable".
func jobStatus(hc *http.Client, base, id string) jobView {
	v, ok := readJob(hc, base, id)
	if !ok {
		return jobView{State: "unreachable"}
	}
	return v
}

// pgWindows reads the window rows of table results (none while it does
// not exist or the cluster does not answer).
func pgWindows(t *testing.T, pg *testsrv.Postgres) map[windowKey][]windowVal {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn := pg.Connect(t)
	defer conn.Close(context.Background())
	got, err := queryWindows(t, ctx, conn)
	if err != nil {
		return map[windowKey][]windowVal{}
	}
	return got
}
