package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/state"
	"github.com/runnel-dev/runnel/streams"
)

// TestFunctionChaos runs a job with a `function` operator over a Runnel
// stream with random settings, while records are put and the job is
// stopped and resumed, crashed at checkpoint steps and restarted, and
// redeployed from savepoints; the function fails on a schedule written
// into the records (throws, batchItemFailures, timeouts, strings too long
// to build), for some attempts or for all of them. It then checks the
// results against Lambda's event source mapping for Kinesis:
//
//   - every record that passes the filter is in the function's committed
//     output exactly once, or in exactly one on-failure record; filtered
//     records reach the function never;
//   - a batch is given up on only for a record that fails more often than
//     maximum_retry_attempts allows (or its records are older than
//     maximum_record_age); without on_failure such a record fails the job;
//   - the records of one partition key reach the output in their shard's
//     order, and with parallelization_factor 1 all of a shard's do;
//   - a tumbling window's final invocation sees the state of exactly the
//     records of the window the output holds.
func TestFunctionChaos(t *testing.T) {
	for _, seed := range testutil.Seeds(t, 3, 1) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) { runFunctionChaos(t, seed) })
	}
}

// fnChaosCfg is a function job's random settings. Those the model
// depends on (retries, bisection, item failures, filter, windows, the
// destination, lanes) stay across redeploys; batching and checkpoints
// change.
type fnChaosCfg struct {
	shards, batch, parallel, retries int
	window, age, tumbling, every     time.Duration
	bisect, items, onFailure         bool
	// filter is the filter_criteria (one of fnChaosFilters), or "".
	filter string
	// poison: some records always fail; failJob: and there is no
	// destination, so the job must fail.
	poison, failJob bool
}

func (c fnChaosCfg) String() string {
	return fmt.Sprintf("shards %d batch %d window %s parallel %d retries %d age %s bisect %t items %t filter %q tumbling %s on_failure %t poison %t every %s",
		c.shards, c.batch, c.window, c.parallel, c.retries, c.age, c.bisect, c.items, c.filter, c.tumbling, c.onFailure, c.poison, c.every)
}

func randomFnChaosCfg(r *rand.Rand) fnChaosCfg {
	c := fnChaosCfg{shards: 1 + r.IntN(3), batch: []int{1, 3, 10, 100}[r.IntN(4)], parallel: 1,
		retries: r.IntN(5) - 1, bisect: r.IntN(2) == 0, items: r.IntN(2) == 0,
		onFailure: r.IntN(4) > 0, every: time.Duration(150+r.IntN(400)) * time.Millisecond}
	if r.IntN(2) == 0 {
		c.filter = fnChaosFilters[r.IntN(len(fnChaosFilters))]
	}
	if r.IntN(3) == 0 {
		c.window = time.Duration(50+r.IntN(300)) * time.Millisecond
	}
	if r.IntN(3) == 0 {
		c.tumbling = time.Duration(1+r.IntN(2)) * time.Second
	} else if r.IntN(2) == 0 {
		c.parallel = 2 + r.IntN(4)
	}
	switch {
	case c.onFailure:
		c.poison = true
		if c.retries < 0 || r.IntN(3) == 0 {
			// Records retried until too old need an age to end.
			c.age = time.Duration(2+r.IntN(3)) * time.Second
		}
	case r.IntN(3) == 0:
		c.poison, c.failJob = true, true
		c.retries = max(c.retries, 0)
	}
	return c
}

// fnChaosFilters are filter criteria that each pass exactly the records
// whose data.drop is false, written in different ways.
var fnChaosFilters = []string{
	`[{data: {drop: [false]}}]`,
	`['{"data": {"drop": [{"anything-but": [true]}]}}']`,
	`[{data: {drop: [false], k: [ok]}}, {data: {drop: [false], k: [{anything-but: [ok]}]}}]`,
	`[{data: {id: [{numeric: [">=", 0]}], drop: [false]}}]`,
	`[{data: {drop: [false], n: [{exists: true}]}, partitionKey: [{prefix: pk}]}]`,
}

// job is the job file of c with the batch size, batching window and
// checkpoint interval of the current deploy.
func (c fnChaosCfg) job(batch int, window, every time.Duration) string {
	var f strings.Builder
	fmt.Fprintf(&f, "name: fnc\nsource: {stream: fnc-in}\noperators:\n  - id: f\n    timeout: 150ms\n    function:\n      handler: |\n")
	for l := range strings.SplitSeq(fmt.Sprintf(fnChaosHandler, c.items), "\n") {
		fmt.Fprintf(&f, "        %s\n", l)
	}
	fmt.Fprintf(&f, "      batch_size: %d\n      maximum_retry_attempts: %d\n", batch, c.retries)
	if window > 0 {
		fmt.Fprintf(&f, "      batching_window: %s\n", window)
	}
	if c.parallel > 1 {
		fmt.Fprintf(&f, "      parallelization_factor: %d\n", c.parallel)
	}
	if c.age > 0 {
		fmt.Fprintf(&f, "      maximum_record_age: %s\n", c.age)
	}
	fmt.Fprintf(&f, "      bisect_batch_on_error: %t\n      report_batch_item_failures: %t\n", c.bisect, c.items)
	if c.tumbling > 0 {
		fmt.Fprintf(&f, "      tumbling_window: %s\n", c.tumbling)
	}
	if c.onFailure {
		f.WriteString("      on_failure: fnc-failed\n")
	}
	if c.filter != "" {
		fmt.Fprintf(&f, "      filter_criteria: %s\n", c.filter)
	}
	fmt.Fprintf(&f, "sinks:\n  - {id: out, stream: {name: fnc-out}}\ncheckpoint: {every: %s}\n", every)
	return f.String()
}

// fnChaosHandler fails a record while ctx.attempt <= data.n, in the way
// data.k says; it returns one output per record before the first that
// failed (with the window it was in), and counts them in the window
// state — except for "badid", whose call returns an output for every
// record and a batchItemFailures entry naming none, a failure of the
// whole call. A filtered record it is given shows in its output.
const fnChaosHandler = `(batch, ctx) => {
  const items = %t;
  if (ctx.isFinalInvokeForWindow) {
    return {records: [{partitionKey: "o", data: {final: true, shard: ctx.shardId, start: ctx.window.start, n: ctx.state ? ctx.state.n : 0}}]};
  }
  let n = ctx.state ? ctx.state.n : 0;
  const out = [], fails = [];
  for (const r of batch) {
    const d = r.data;
    if (d.drop) out.push({partitionKey: "o", data: {sawFiltered: d.id}});
    if (ctx.attempt <= d.n) {
      if (d.k === "item" && items) { fails.push({itemIdentifier: r.sequenceNumber}); break; }
      if (d.k === "badid" && items) {
        // Outputs for every record, and a failure that names none: the
        // whole call failed.
        const all = batch.map(r => ({partitionKey: "o", data: {id: r.data.id, shard: r.shardId, seq: r.sequenceNumber, pk: r.partitionKey, w: ctx.window ? ctx.window.start : -1}}));
        return {records: all, batchItemFailures: [{itemIdentifier: ""}], state: {n: n + all.length}};
      }
      if (d.k === "slow") { for (;;) {} }
      if (d.k === "oom") { const s = "x".repeat(64 * 1024 * 1024); return {records: [{partitionKey: "o", data: {len: s.length}}]}; }
      throw new Error("record " + d.id + " fails at attempt " + ctx.attempt);
    }
    out.push({partitionKey: "o", data: {id: d.id, shard: r.shardId, seq: r.sequenceNumber, pk: r.partitionKey, w: ctx.window ? ctx.window.start : -1}});
    n++;
  }
  return {records: out, batchItemFailures: fails, state: {n: n}};
}`

// fnRec is a record put, as the model knows it.
type fnRec struct {
	id      int
	pk      string
	kind    string
	n       int // attempts that fail
	drop    bool
	shard   string
	seq     string
	counter uint64
}

// always is the n of a record that fails every attempt.
const always = 1 << 30

type fnChaos struct {
	t     *testing.T
	r     *rand.Rand
	cfg   fnChaosCfg
	st    *streams.Store
	dir   string
	log   *slog.Logger
	logs  *testutil.Buffer
	m     *Manager
	armed atomic.Pointer[string]
	recs  []fnRec
	bySeq map[string]int
	ops   []string
	// batch and window are the current file's.
	batch  int
	window time.Duration
	every  time.Duration
}

func (e *fnChaos) open() {
	e.m = startManager(e.t, ManagerConfig{Store: e.st, Dir: filepath.Join(e.dir, "jobs"), Logger: e.log, Failpoint: func(step string) error {
		if p := e.armed.Load(); p != nil && *p == step {
			return errors.New("fnchaos: crash at " + step)
		}
		return nil
	}})
}

func (e *fnChaos) logf(format string, args ...any) {
	e.ops = append(e.ops, fmt.Sprintf(format, args...))
}

func (e *fnChaos) fatalf(format string, args ...any) {
	e.t.Helper()
	e.t.Fatalf("%s\nsettings: %s\nactions:\n  %s\nlog tail:\n%s", fmt.Sprintf(format, args...), e.cfg,
		strings.Join(e.ops, "\n  "), testutil.Tail(e.logs.String(), 40))
}

// put puts n random records.
func (e *fnChaos) put(n int) {
	var prs []streams.PutRecord
	for range n {
		rec := fnRec{id: len(e.recs), pk: fmt.Sprint("pk", e.r.IntN(8)), kind: "ok"}
		switch x := e.r.IntN(100); {
		case e.cfg.filter != "" && x < 15:
			rec.drop = true
			// A filtered record that reached the function would fail.
			rec.kind, rec.n = "throw", always
		case x < 25:
			rec.kind = []string{"throw", "item", "item", "badid"}[e.r.IntN(4)]
		case x < 28:
			rec.kind = "slow"
		case x < 31:
			rec.kind = "oom"
		case x < 34 && e.cfg.poison:
			rec.kind, rec.n = []string{"throw", "item", "oom", "badid"}[e.r.IntN(4)], always
		}
		if rec.kind != "ok" && rec.n == 0 {
			// Transient: fails fewer times than retries allow.
			if e.cfg.retries == 0 {
				rec.kind = "ok"
			} else {
				rec.n = 1 + e.r.IntN(max(min(e.cfg.retries, 2), 1))
			}
		}
		e.recs = append(e.recs, rec)
		prs = append(prs, streams.PutRecord{PartitionKey: rec.pk,
			Data: fmt.Appendf(nil, `{"id":%d,"k":%q,"n":%d,"drop":%t}`, rec.id, rec.kind, rec.n, rec.drop)})
	}
	res, err := e.st.Put(context.Background(), "fnc-in", prs)
	if err != nil {
		e.t.Fatal(err)
	}
	for i, p := range res {
		rec := &e.recs[len(e.recs)-n+i]
		rec.shard, rec.seq, rec.counter = p.ShardID, p.SequenceNumber(), p.Seq
		e.bySeq[rec.seq] = rec.id
	}
	e.logf("put %d records (ids %d–%d)", n, len(e.recs)-n, len(e.recs)-1)
}

// bad says whether a record fails more often than retries allow.
func (e *fnChaos) bad(rec *fnRec) bool {
	return !rec.drop && e.cfg.retries >= 0 && rec.n > e.cfg.retries
}

func runFunctionChaos(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	st, dir, _ := managerStore(t)
	logs := &testutil.Buffer{}
	e := &fnChaos{t: t, r: r, cfg: randomFnChaosCfg(r), st: st, dir: dir, logs: logs,
		log: slog.New(slog.NewTextHandler(logs, nil)), bySeq: map[string]int{}}
	e.batch, e.window, e.every = e.cfg.batch, e.cfg.window, e.cfg.every
	t.Logf("settings: %s", e.cfg)
	for _, s := range []struct {
		name   string
		shards int
	}{{"fnc-in", e.cfg.shards}, {"fnc-out", 1}, {"fnc-failed", 1}} {
		if _, err := st.CreateStream(s.name, s.shards, streams.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.open()
	defer func() { e.m.Close() }()
	e.put(1 + r.IntN(20))
	if e.cfg.failJob {
		e.putBad()
	}
	if _, err := e.m.Submit([]byte(e.cfg.job(e.batch, e.window, e.every))); err != nil {
		e.fatalf("submit: %v", err)
	}
	if e.cfg.failJob {
		e.runToFailure()
		return
	}
	for range 8 + r.IntN(8) {
		e.step()
	}
	e.waitAccounted()
	if err := e.m.Stop("fnc"); err != nil {
		e.fatalf("stop: %v", err)
	}
	e.logf("stop")
	rep := e.check()
	if rep.diff != "" || len(rep.other) > 0 {
		e.fatalf("records (want: each once in the output or an on-failure record):\n%s\n%s", rep.diff, strings.Join(rep.other, "\n"))
	}
	t.Logf("%s; actions: %s", rep.summary, strings.Join(e.ops, ", "))
}

// crashSteps are the checkpoint steps a crash cuts short: the runtime's
// and the state store's.
var crashSteps = []string{engine.CheckpointAligned, engine.CheckpointBeforeCommit, engine.CheckpointAfterCommit,
	state.StepAfterSnapshot, state.StepBeforeManifest, state.StepAfterManifest}

// step runs one random action.
func (e *fnChaos) step() {
	switch x := e.r.IntN(100); {
	case x < 35:
		e.put(1 + e.r.IntN(30))
	case x < 50:
		d := time.Duration(50+e.r.IntN(700)) * time.Millisecond
		time.Sleep(d)
		e.logf("wait %s", d)
	case x < 62:
		if err := e.m.Stop("fnc"); err != nil {
			e.fatalf("stop: %v", err)
		}
		if _, err := e.m.Resume("fnc"); err != nil {
			e.fatalf("resume: %v", err)
		}
		e.logf("stop and resume")
	case x < 77:
		step := crashSteps[e.r.IntN(len(crashSteps))]
		e.armed.Store(&step)
		e.m.Close()
		e.armed.Store(nil)
		e.open()
		e.logf("crash at %s, restart", step)
	case x < 80:
		e.m.Close()
		e.open()
		e.logf("restart")
	case x < 88:
		// The job's checkpoints fail at a step for a while; it runs on,
		// and a later checkpoint commits what the failed ones staged.
		step := crashSteps[e.r.IntN(len(crashSteps))]
		e.armed.Store(&step)
		time.Sleep(2 * e.every)
		e.armed.Store(nil)
		e.logf("checkpoints fail at %s for %s", step, 2*e.every)
	default:
		e.batch = []int{1, 3, 10, 100}[e.r.IntN(4)]
		e.window = 0
		if e.r.IntN(2) == 0 {
			e.window = time.Duration(50+e.r.IntN(300)) * time.Millisecond
		}
		e.every = time.Duration(150+e.r.IntN(400)) * time.Millisecond
		if _, err := e.m.Deploy("fnc", []byte(e.cfg.job(e.batch, e.window, e.every)), DeploySavepoint); err != nil {
			e.fatalf("deploy: %v", err)
		}
		e.logf("redeploy from a savepoint: batch %d window %s every %s", e.batch, e.window, e.every)
	}
	if in, err := e.m.Get("fnc"); err != nil || in.State == string(engine.Failed) {
		e.fatalf("job after %s: %s (%s) %v", e.ops[len(e.ops)-1], in.State, in.Reason, err)
	}
}

// waitAccounted waits until every record that passes the filter is in the
// output or an on-failure record, and, with tumbling windows, every
// window that ended has its final output.
func (e *fnChaos) waitAccounted() {
	var rep fnReport
	if !testutil.Within(2*time.Minute, func() bool {
		rep = e.check()
		return rep.diff == "" && rep.openWindows == 0 || rep.dups > 0 || len(rep.other) > 0
	}) {
		in, _ := e.m.Get("fnc")
		e.fatalf("after 2 minutes, job %s (%s), %d windows without their final output:\n%s\n%s", in.State, in.Reason,
			rep.openWindows, rep.diff, strings.Join(rep.other, "\n"))
	}
	e.logf("all records accounted for")
}

// runToFailure checks a job without on_failure whose records include
// ones that always fail: it fails, naming the records, and its output
// holds no record twice.
func (e *fnChaos) runToFailure() {
	var in Info
	if !testutil.Within(time.Minute, func() bool { in, _ = e.m.Get("fnc"); return in.State == string(engine.Failed) }) {
		e.fatalf("job is %s (%s), want failed: records failed and there is no on_failure", in.State, in.Reason)
	}
	if !strings.Contains(in.Reason, "no on_failure destination") {
		e.fatalf("reason %q does not say the records had nowhere to go", in.Reason)
	}
	e.logf("failed: %s", in.Reason)
	e.m.Close()
	e.open()
	if in, _ = e.m.Get("fnc"); in.State != string(engine.Failed) {
		e.fatalf("after a restart the failed job is %s (%s)", in.State, in.Reason)
	}
	// Records after the failed ones were not processed; the rest holds.
	if rep := e.check(); len(rep.other) > 0 || rep.dups > 0 {
		e.fatalf("%s\n%s", rep.diff, strings.Join(rep.other, "\n"))
	}
}

// putBad puts one record that always fails.
func (e *fnChaos) putBad() {
	rec := fnRec{id: len(e.recs), pk: "pk0", kind: "throw", n: always}
	res, err := e.st.Put(context.Background(), "fnc-in", []streams.PutRecord{{PartitionKey: rec.pk,
		Data: fmt.Appendf(nil, `{"id":%d,"k":"throw","n":%d,"drop":false}`, rec.id, rec.n)}})
	if err != nil {
		e.t.Fatal(err)
	}
	rec.shard, rec.seq, rec.counter = res[0].ShardID, res[0].SequenceNumber(), res[0].Seq
	e.bySeq[rec.seq] = rec.id
	e.recs = append(e.recs, rec)
	e.logf("put record %d that always fails", rec.id)
}
