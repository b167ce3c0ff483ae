package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sources"
)

// chanSource is an unbounded source fed by the test, one channel per
// shard; closing a shard's channel ends it.
type chanSource struct {
	ch map[string]chan []sources.Record
}

func newChanSource(shards ...string) *chanSource {
	s := &chanSource{ch: map[string]chan []sources.Record{}}
	for _, id := range shards {
		s.ch[id] = make(chan []sources.Record)
	}
	return s
}

func (s *chanSource) Shards(ctx context.Context) ([]sources.Shard, error) {
	var out []sources.Shard
	for id := range s.ch {
		out = append(out, sources.Shard{ID: id})
	}
	return out, nil
}

func (s *chanSource) Open(ctx context.Context, sh sources.Shard, after string) (sources.Reader, error) {
	return &chanReader{ch: s.ch[sh.ID]}, nil
}

type chanReader struct {
	ch      chan []sources.Record
	pending []sources.Record
}

func (r *chanReader) Read(ctx context.Context, buf []sources.Record) (int, error) {
	if len(r.pending) == 0 {
		select {
		case recs, ok := <-r.ch:
			if !ok {
				return 0, io.EOF
			}
			if recs == nil {
				// idleNow: as if the read's idle deadline had passed.
				return 0, context.DeadlineExceeded
			}
			r.pending = recs
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	n := copy(buf, r.pending)
	r.pending = r.pending[n:]
	return n, nil
}

func (r *chanReader) Children() []sources.Shard { return nil }
func (r *chanReader) Close() error              { return nil }

// feed sends records "key@ts" to a shard.
func (s *chanSource) feed(t *testing.T, shard string, recs ...string) {
	t.Helper()
	var out []sources.Record
	for _, r := range recs {
		k, ts, _ := strings.Cut(r, "@")
		n, _ := strconv.Atoi(ts)
		out = append(out, sources.Record{Value: map[string]any{"k": k, "v": 1.0, "ts": float64(n)}, Position: ts})
	}
	select {
	case s.ch[shard] <- out:
	case <-time.After(10 * time.Second):
		t.Fatalf("shard %s: the job does not read", shard)
	}
}

// idleNow makes the shard's pending read return as a read whose idle
// deadline passed does, so the shard goes idle when the test says, not
// when a timer under load does.
func (s *chanSource) idleNow(t *testing.T, shard string) {
	t.Helper()
	select {
	case s.ch[shard] <- nil:
	case <-time.After(10 * time.Second):
		t.Fatalf("shard %s: the job does not read", shard)
	}
}

// eventually polls cond until it holds; it fails the test after a long
// safety limit (a hang), never because something was slow.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for i := 0; i < 2000; i++ {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("never happened: %s", what)
}

func TestWatermarkIsMinimumOverShards(t *testing.T) {
	src := newChanSource("a", "b")
	sink := &collect{}
	g := windowGraph(src, sink, 1000)
	g.Nodes[1].New = passThrough() // no filter
	j, err := Start(context.Background(), g, Options{Parallelism: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Stop(context.Background())
	src.feed(t, "a", "x@100", "x@5000")
	src.feed(t, "b", "x@200")
	eventually(t, "window input of 3 records", func() bool { return opsByID(j.Status())["win"].In == 3 })
	// a is at 5000-100, b at 200-100: the job watermark is b's.
	eventually(t, "watermark 100", func() bool { return j.Status().Watermark == 100 })
	if rows := sink.snapshot(); len(rows) != 0 {
		t.Fatalf("fired %v before the slower shard passed the window end", windowRows(rows))
	}
	src.feed(t, "b", "y@1150")
	eventually(t, "window [0,1000) fired", func() bool { return len(sink.snapshot()) == 1 })
	if got := windowRows(sink.snapshot()); got[0] != "0 x 2 2" {
		t.Fatalf("fired %v, want x's two records of [0,1000)", got)
	}
	if wm := j.Status().Watermark; wm != 1050 {
		t.Errorf("watermark %d, want 1050 = min(4900, 1050)", wm)
	}
	// A record behind the watermark for a fired window is late.
	src.feed(t, "a", "x@10")
	eventually(t, "late record counted", func() bool { return opsByID(j.Status())["win"].Late == 1 })
}

func TestIdleShardDoesNotHoldTheWatermark(t *testing.T) {
	src := newChanSource("busy", "quiet")
	sink := &collect{}
	g := windowGraph(src, sink, 1000)
	g.Nodes[1].New = passThrough()
	g.Sources[0].IdleTimeout = 20 * time.Millisecond
	j, err := Start(context.Background(), g, Options{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Stop(context.Background())
	src.feed(t, "busy", "x@100", "x@3000")
	eventually(t, "window fired although shard quiet never read", func() bool { return len(sink.snapshot()) == 1 })
	st := j.Status()
	for _, sh := range st.Shards {
		if sh.Shard == "quiet" && sh.State != ShardIdle {
			t.Errorf("quiet shard state %s, want idle", sh.State)
		}
	}
}

func TestBoundedSourceEndingCountsAsEndOfTime(t *testing.T) {
	// One shard ends early, the other keeps the watermark: the ended shard
	// must not hold it back, and the job only finishes when both end.
	src := newChanSource("short", "long")
	sink := &collect{}
	g := windowGraph(src, sink, 1000)
	g.Nodes[1].New = passThrough()
	j, err := Start(context.Background(), g, Options{Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	src.feed(t, "short", "x@10")
	close(src.ch["short"])
	src.feed(t, "long", "y@2500")
	eventually(t, "[0,1000) fired once the short shard ended", func() bool { return len(sink.snapshot()) == 1 })
	close(src.ch["long"])
	if err := j.Wait(); err != nil {
		t.Fatal(err)
	}
	if got := windowRows(sink.snapshot()); strings.Join(got, ",") != "0 x 1 1,2000 y 1 1" {
		t.Fatalf("rows %v", got)
	}
}

func TestBackpressureBoundsRecordsInFlight(t *testing.T) {
	gen, err := sources.NewGenerator(sources.GeneratorConfig{Shards: 2, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	sink := &collect{gate: make(chan struct{})}
	opts := Options{Parallelism: 2, BatchSize: 32, QueueDepth: 2}
	g := &Graph{
		Sources: []SourceNode{{ID: "gen", Source: gen}},
		Nodes: []Node{
			{ID: "m", Inputs: []string{"gen"}, New: passThrough()},
			{ID: "k", Inputs: []string{"m"}, New: passThrough(), Key: FieldKey("page")},
		},
		Sinks: []SinkNode{{ID: "slow", Inputs: []string{"k"}, Sink: sink}},
	}
	base := goruntime.NumGoroutine()
	j, err := Start(context.Background(), g, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Records can sit in: each shard task's batch, each keyed inbox and
	// task, the sink inbox, and the Write in progress.
	shards, tasks := 2, opts.Parallelism
	bound := int64(opts.BatchSize * (shards + tasks*(opts.QueueDepth+1) + tasks*(opts.QueueDepth+1) + 1))
	for round := 0; round < 20; round++ {
		eventually(t, "sink queue full", func() bool {
			for _, q := range j.Status().Queues {
				if q.Name == "slow" && q.Len == q.Cap {
					return true
				}
			}
			return false
		})
		st := j.Status()
		read, written := opsByID(st)["gen"].Out, opsByID(st)["slow"].In
		if read-written > bound {
			t.Fatalf("round %d: %d records read, %d reached the sink: %d in flight > bound %d", round, read, written, read-written, bound)
		}
		for _, q := range st.Queues {
			if q.Len > q.Cap {
				t.Fatalf("queue %s holds %d > %d", q.Name, q.Len, q.Cap)
			}
		}
		for i := 0; i < 3; i++ {
			sink.gate <- struct{}{}
		}
	}
	close(sink.gate)
	if err := j.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	testutil.WaitGoroutines(t, base)
}

func TestStopDrainsAndGoroutinesReturn(t *testing.T) {
	base := goruntime.NumGoroutine()
	gen, _ := sources.NewGenerator(sources.GeneratorConfig{Shards: 3, Seed: 2})
	sink := &collect{}
	g := &Graph{
		Sources: []SourceNode{{ID: "gen", Source: gen}},
		Nodes: []Node{
			{ID: "m", Inputs: []string{"gen"}, New: passThrough()},
			{ID: "k", Inputs: []string{"m"}, New: passThrough(), Key: FieldKey("user")},
		},
		Sinks: []SinkNode{{ID: "out", Inputs: []string{"k"}, Sink: sink}},
	}
	j, err := Start(context.Background(), g, Options{Parallelism: 2, BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "records flowing", func() bool { return len(sink.snapshot()) > 5000 })
	if err := j.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := j.Status()
	if st.State != Stopped {
		t.Fatalf("state %s (%s), want stopped", st.State, st.Reason)
	}
	if read := opsByID(st)["gen"].Out; int64(len(sink.snapshot())) != read {
		t.Fatalf("sources read %d records, the sink got %d: Stop did not drain", read, len(sink.snapshot()))
	}
	if !sink.closed {
		t.Fatal("sink not closed (flushed) by Stop")
	}
	for _, sh := range st.Shards {
		if sh.State != ShardStopped || sh.Position == "" {
			t.Errorf("shard %+v, want stopped with a position", sh)
		}
	}
	testutil.WaitGoroutines(t, base)
}

type failingOp struct{ after int }

func (f *failingOp) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	f.after -= len(in.Records)
	if f.after < 0 {
		return errors.New("boom")
	}
	return nil
}
func (f *failingOp) Close() error { return nil }

func TestOperatorErrorFailsJobWithReason(t *testing.T) {
	base := goruntime.NumGoroutine()
	gen, _ := sources.NewGenerator(sources.GeneratorConfig{Shards: 2, Seed: 3})
	g := &Graph{
		Sources: []SourceNode{{ID: "gen", Source: gen}},
		Nodes: []Node{
			{ID: "k", Inputs: []string{"gen"}, New: passThrough(), Key: FieldKey("page")},
			{ID: "bad", Inputs: []string{"k"}, New: func() (operators.Operator, error) { return &failingOp{after: 1000}, nil }},
		},
		Sinks: []SinkNode{{ID: "out", Inputs: []string{"bad"}, Sink: &collect{}}},
	}
	st, err := Run(context.Background(), g, Options{Parallelism: 2})
	if err == nil || st.State != Failed || !strings.Contains(st.Reason, "operator bad: boom") {
		t.Fatalf("err %v state %s reason %q; want failed naming operator bad", err, st.State, st.Reason)
	}
	testutil.WaitGoroutines(t, base)
}

// brokenSource has one shard, which fails to open (openErr) or, opened,
// fails to read (readErr).
type brokenSource struct{ openErr, readErr error }

func (s brokenSource) Shards(context.Context) ([]sources.Shard, error) {
	return []sources.Shard{{ID: "0"}}, nil
}

func (s brokenSource) Open(context.Context, sources.Shard, string) (sources.Reader, error) {
	if s.openErr != nil {
		return nil, s.openErr
	}
	return s, nil
}

func (s brokenSource) Read(context.Context, []sources.Record) (int, error) { return 0, s.readErr }
func (s brokenSource) Children() []sources.Shard                           { return nil }
func (s brokenSource) Close() error                                        { return nil }

// TestSourceErrorCountsInErrors: a source whose shard cannot be opened or
// read fails the job, and that error is counted in the source's Errors as
// an operator's error that fails its task is.
func TestSourceErrorCountsInErrors(t *testing.T) {
	for _, src := range []brokenSource{{openErr: errors.New("gone")}, {readErr: errors.New("gone")}} {
		g := &Graph{
			Sources: []SourceNode{{ID: "src", Source: src}},
			Sinks:   []SinkNode{{ID: "out", Inputs: []string{"src"}, Sink: &collect{}}},
		}
		st, err := Run(context.Background(), g, Options{})
		if err == nil || st.State != Failed || !strings.Contains(st.Reason, "gone") {
			t.Fatalf("%+v: err %v state %s reason %q; want failed", src, err, st.State, st.Reason)
		}
		for _, o := range st.Operators {
			if o.ID == "src" && o.Errors != 1 {
				t.Errorf("%+v: the source counts %d errors, want 1", src, o.Errors)
			}
		}
	}
}

// stuckOp blocks until its context ends, ignoring drain.
type stuckOp struct {
	once    *sync.Once
	entered chan struct{}
}

func (s *stuckOp) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	s.once.Do(func() { close(s.entered) })
	<-ctx.Done()
	return ctx.Err()
}
func (s *stuckOp) Close() error { return nil }

func TestStopDeadlineCancelsHard(t *testing.T) {
	base := goruntime.NumGoroutine()
	gen, _ := sources.NewGenerator(sources.GeneratorConfig{Seed: 4})
	entered := make(chan struct{})
	once := &sync.Once{}
	g := &Graph{
		Sources: []SourceNode{{ID: "gen", Source: gen}},
		Nodes:   []Node{{ID: "stuck", Inputs: []string{"gen"}, New: func() (operators.Operator, error) { return &stuckOp{once: once, entered: entered}, nil }}},
		Sinks:   []SinkNode{{ID: "out", Inputs: []string{"stuck"}, Sink: &collect{}}},
	}
	j, err := Start(context.Background(), g, Options{})
	if err != nil {
		t.Fatal(err)
	}
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := j.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop = %v, want the context's error", err)
	}
	if st := j.Status(); st.State != Stopped || !strings.Contains(st.Reason, "stop deadline") {
		t.Fatalf("state %s reason %q", st.State, st.Reason)
	}
	testutil.WaitGoroutines(t, base)
}

// A shard back from idle holds the watermark again in every keyed task,
// also in those its records did not go to.
func TestShardBackFromIdleHoldsEveryKeyedTask(t *testing.T) {
	src := newChanSource("a", "b")
	sink := &collect{}
	g := windowGraph(src, sink, 1000)
	g.Nodes[1].New = passThrough()
	// Shard b goes idle when the test says (idleNow), and no shard goes
	// idle by itself while the test looks: a short timeout under load
	// would let b go idle again before a's records arrive, and the windows
	// would then rightly fire.
	g.Sources[0].IdleTimeout = time.Hour
	j, err := Start(context.Background(), g, Options{Parallelism: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Stop(context.Background())
	keys := []string{"p", "q", "r", "s", "t", "u", "v", "w"}
	feedAll := func(shard string, ts int) {
		var recs []string
		for _, k := range keys {
			recs = append(recs, fmt.Sprintf("%s@%d", k, ts))
		}
		src.feed(t, shard, recs...)
	}
	feedAll("a", 100)
	src.feed(t, "b", "p@150")
	src.idleNow(t, "b")
	eventually(t, "b idle", func() bool {
		for _, sh := range j.Status().Shards {
			if sh.Shard == "b" && sh.State == ShardIdle {
				return true
			}
		}
		return false
	})
	// b comes back with one key (one keyed task) at the same watermark;
	// a races ahead.
	src.feed(t, "b", "p@150")
	eventually(t, "b read", func() bool { return opsByID(j.Status())["win"].In == 10 })
	feedAll("a", 5000)
	eventually(t, "a's records in", func() bool { return opsByID(j.Status())["win"].In == 18 })
	eventually(t, "job watermark at b's 150-100", func() bool { return j.Status().Watermark == 50 })
	if rows := sink.snapshot(); len(rows) != 0 {
		t.Fatalf("windows fired past shard b's watermark (50): %v", windowRows(rows))
	}
}
