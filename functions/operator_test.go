package functions

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/state"
)

// script is a function written in Go for the tests: it sees every
// invocation and records it.
type script struct {
	mu    sync.Mutex
	calls []*Invocation
	fn    func(in *Invocation) (*Result, error)
}

func (s *script) NewInvoker() (Invoker, error) { return &scriptInvoker{s}, nil }

type scriptInvoker struct{ s *script }

func (i *scriptInvoker) Invoke(_ context.Context, in *Invocation) (*Result, error) {
	cp := *in
	cp.Records = slices.Clone(in.Records)
	if in.Window != nil {
		w := *in.Window
		cp.Window = &w
	}
	i.s.mu.Lock()
	i.s.calls = append(i.s.calls, &cp)
	i.s.mu.Unlock()
	return i.s.fn(in)
}

func (i *scriptInvoker) Close() error { return nil }

// seqs lists the sequence numbers of records.
func seqs(recs []Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.SequenceNumber
	}
	return out
}

// echo returns every record as an output.
func echo(in *Invocation) *Result {
	res := &Result{}
	for _, r := range in.Records {
		res.Records = append(res.Records, Output{PartitionKey: r.PartitionKey, Data: r.SequenceNumber})
	}
	return res
}

// harness is an operator instance with its outputs collected.
type harness struct {
	op        *Operator
	outs      []operators.Record
	failures  []map[string]any
	collected operators.EmitterFunc
}

func newHarness(t *testing.T, cfg *Config) *harness {
	t.Helper()
	if cfg.Operator == "" {
		cfg.Job, cfg.Operator = "job", "fn"
	}
	if cfg.Backoff == nil {
		cfg.Backoff = func(int) time.Duration { return 0 }
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	op, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { op.Close() })
	h := &harness{op: op}
	op.SetSideOutput(DestinationOutput(cfg.Operator), operators.EmitterFunc(func(r operators.Record) {
		h.failures = append(h.failures, r.Value.(map[string]any))
	}))
	return h
}

func (h *harness) process(batches ...*Batch) error {
	in := &operators.Batch{}
	for _, b := range batches {
		in.Records = append(in.Records, operators.Record{Value: b})
	}
	return h.op.Process(context.Background(), in, operators.EmitterFunc(func(r operators.Record) { h.outs = append(h.outs, r) }))
}

// makeBatch has n records of shard-0 with sequence numbers s0, s1, ... and
// keys k0, k1, ...; arrival i seconds after base.
func makeBatch(n int, base int64) *Batch {
	b := &Batch{Shard: "shard-0"}
	for i := range n {
		b.Records = append(b.Records, Record{PartitionKey: fmt.Sprintf("k%d", i), SequenceNumber: fmt.Sprintf("s%d", i),
			Arrival: base + int64(i)*1000, Data: map[string]any{"i": int64(i)}})
	}
	return b
}

const base = int64(1_800_000_000_000)

// A failing function is called 1 + maximum_retry_attempts times, then
// the batch goes to the on-failure destination as Lambda's record.
func TestRetriesThenDestination(t *testing.T) {
	s := &script{fn: func(*Invocation) (*Result, error) { return nil, errors.New("TypeError: boom") }}
	h := newHarness(t, &Config{NewInvoker: s.NewInvoker, MaxRetries: 2, OnFailure: true})
	if err := h.process(makeBatch(4, base)); err != nil {
		t.Fatal(err)
	}
	if len(s.calls) != 3 {
		t.Fatalf("%d calls, want 3 (one and two retries)", len(s.calls))
	}
	for i, c := range s.calls {
		if c.Attempt != i+1 || !slices.Equal(seqs(c.Records), []string{"s0", "s1", "s2", "s3"}) {
			t.Errorf("call %d: attempt %d records %v", i, c.Attempt, seqs(c.Records))
		}
	}
	if len(h.outs) != 0 || len(h.failures) != 1 {
		t.Fatalf("%d outputs and %d on-failure records, want 0 and 1", len(h.outs), len(h.failures))
	}
	got := h.failures[0]
	delete(got, "timestamp")
	want := map[string]any{
		"version":         "1.0",
		"requestContext":  map[string]any{"function": "job/fn", "condition": ConditionRetriesExhausted, "approximateInvokeCount": int64(3)},
		"responseContext": map[string]any{"functionError": "Unhandled", "errorMessage": "TypeError: boom"},
		"KinesisBatchInfo": map[string]any{"shardId": "shard-0", "startSequenceNumber": "s0", "endSequenceNumber": "s3",
			"approximateArrivalOfFirstRecord": "2027-01-15T08:00:00.000Z", "approximateArrivalOfLastRecord": "2027-01-15T08:00:03.000Z",
			"batchSize": int64(4)},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("on-failure record:\n got %v\nwant %v", got, want)
	}
	if n := h.op.stats.Retries.Load(); n != 2 {
		t.Errorf("stats: %d retries, want 2", n)
	}
}

// Without an on-failure destination, a batch given up on fails the job
// with an error naming its records: nothing is dropped silently.
func TestGivingUpWithoutDestinationFailsTheJob(t *testing.T) {
	s := &script{fn: func(*Invocation) (*Result, error) { return nil, errors.New("boom") }}
	h := newHarness(t, &Config{NewInvoker: s.NewInvoker, MaxRetries: 0})
	err := h.process(makeBatch(2, base))
	if err == nil || !strings.Contains(err.Error(), "records s0 to s1 failed") || !strings.Contains(err.Error(), "no on_failure destination") {
		t.Fatalf("error %v, want one naming records s0 to s1 and the missing destination", err)
	}
}

// With bisect_batch_on_error, a poison record in a batch of n is isolated
// in at most ⌈log2 n⌉ calls after the first (exactly that many when n is
// a power of two); every other record succeeds exactly once, and only the
// poison record reaches the destination.
func TestBisectIsolatesPoisonRecord(t *testing.T) {
	r := testutil.Rand(t, 1)
	for _, n := range []int{2, 3, 7, 8, 13, 64, 100, 1000} {
		poison := r.IntN(n)
		t.Run(fmt.Sprintf("n=%d/poison=%d", n, poison), func(t *testing.T) {
			bad := fmt.Sprintf("s%d", poison)
			s := &script{fn: func(in *Invocation) (*Result, error) {
				if slices.Contains(seqs(in.Records), bad) {
					return nil, errors.New("poison")
				}
				return echo(in), nil
			}}
			h := newHarness(t, &Config{NewInvoker: s.NewInvoker, Size: n, Bisect: true, MaxRetries: 0, OnFailure: true})
			if err := h.process(makeBatch(n, base)); err != nil {
				t.Fatal(err)
			}
			withPoison := 0
			for _, c := range s.calls {
				if slices.Contains(seqs(c.Records), bad) {
					withPoison++
				}
			}
			logN := bits.Len(uint(n - 1)) // ⌈log2 n⌉
			if extra := withPoison - 1; extra > logN || (n&(n-1) == 0 && extra != logN) {
				t.Errorf("the poison record was in %d calls after the first; want ⌈log2 %d⌉ = %d", extra, n, logN)
			}
			var got []string
			for _, o := range h.outs {
				got = append(got, o.Value.(string))
			}
			var want []string
			for i := range n {
				if i != poison {
					want = append(want, fmt.Sprintf("s%d", i))
				}
			}
			if d := testutil.Diff(want, got); d != "" {
				t.Errorf("outputs (each good record once, in order):\n%s", d)
			}
			if len(h.failures) != 1 {
				t.Fatalf("%d on-failure records, want 1", len(h.failures))
			}
			info := h.failures[0]["KinesisBatchInfo"].(map[string]any)
			if info["startSequenceNumber"] != bad || info["endSequenceNumber"] != bad || info["batchSize"] != int64(1) {
				t.Errorf("on-failure record %v, want the poison record %s alone", info, bad)
			}
			t.Logf("%d records: %d calls in all, %d with the poison record", n, len(s.calls), withPoison)
		})
	}
}

// With report_batch_item_failures, the records before the first failed
// one succeed and the call is retried from it; outputs of every call are
// kept. An identifier that is not in the batch fails the whole batch.
func TestPartialBatchFailures(t *testing.T) {
	t.Run("resume from the first failure", func(t *testing.T) {
		s := &script{}
		s.fn = func(in *Invocation) (*Result, error) {
			res := &Result{}
			for _, r := range in.Records {
				if len(s.calls) == 1 && (r.SequenceNumber == "s5" || r.SequenceNumber == "s3") {
					res.Failures = append(res.Failures, r.SequenceNumber)
					continue
				}
				if len(res.Failures) == 0 {
					res.Records = append(res.Records, Output{PartitionKey: r.PartitionKey, Data: r.SequenceNumber})
				}
			}
			return res, nil
		}
		h := newHarness(t, &Config{NewInvoker: s.NewInvoker, ReportItemFailures: true, MaxRetries: 1})
		if err := h.process(makeBatch(8, base)); err != nil {
			t.Fatal(err)
		}
		var calls [][]string
		for _, c := range s.calls {
			calls = append(calls, seqs(c.Records))
		}
		want := [][]string{{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"}, {"s3", "s4", "s5", "s6", "s7"}}
		if !reflect.DeepEqual(calls, want) {
			t.Fatalf("calls %v, want %v", calls, want)
		}
		var got []string
		for _, o := range h.outs {
			got = append(got, o.Value.(string))
		}
		if d := testutil.Diff([]string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"}, got); d != "" {
			t.Errorf("outputs:\n%s", d)
		}
	})
	t.Run("unknown identifier fails the batch", func(t *testing.T) {
		s := &script{}
		s.fn = func(in *Invocation) (*Result, error) {
			if len(s.calls) == 1 {
				return &Result{Failures: []string{""}}, nil
			}
			return nil, nil
		}
		h := newHarness(t, &Config{NewInvoker: s.NewInvoker, ReportItemFailures: true, MaxRetries: 1})
		if err := h.process(makeBatch(3, base)); err != nil {
			t.Fatal(err)
		}
		if len(s.calls) != 2 || len(s.calls[1].Records) != 3 {
			t.Fatalf("%d calls; want the whole batch called again", len(s.calls))
		}
	})
	t.Run("a whole failure keeps no outputs", func(t *testing.T) {
		// The first call returns an output per record, and a failure the
		// batch cannot resume from: an identifier of no record, or its
		// first record. The call failed as a whole: its outputs (and
		// window state) go, as a thrown call's, and the retry's stay.
		for _, id := range []string{"", "nope", "s0"} {
			s := &script{}
			s.fn = func(in *Invocation) (*Result, error) {
				res := echo(in)
				if len(s.calls) == 1 {
					res.Failures = []string{id}
				}
				return res, nil
			}
			h := newHarness(t, &Config{NewInvoker: s.NewInvoker, ReportItemFailures: true, MaxRetries: 1})
			if err := h.process(makeBatch(3, base)); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, o := range h.outs {
				got = append(got, o.Value.(string))
			}
			if d := testutil.Diff([]string{"s0", "s1", "s2"}, got); d != "" {
				t.Errorf("itemIdentifier %q: outputs:\n%s", id, d)
			}
		}
	})
	t.Run("a whole failure keeps no window state", func(t *testing.T) {
		const minute = int64(60_000)
		w0 := base - base%minute
		now := time.UnixMilli(w0)
		s := &script{}
		s.fn = func(in *Invocation) (*Result, error) {
			n, _ := in.Window.State.(int)
			if in.Window.Final {
				return &Result{Records: []Output{{PartitionKey: "total", Data: fmt.Sprint(n)}}}, nil
			}
			res := &Result{State: n + len(in.Records)}
			if len(s.calls) == 1 {
				res.Failures = []string{"nope"}
			}
			return res, nil
		}
		cfg := &Config{NewInvoker: s.NewInvoker, ReportItemFailures: true, MaxRetries: 1, Tumbling: time.Minute}
		cfg.now = func() time.Time { return now }
		h := newHarness(t, cfg)
		b := makeBatch(3, w0)
		b.Window = w0
		if err := h.process(b); err != nil {
			t.Fatal(err)
		}
		now = time.UnixMilli(w0 + minute).Add(windowGrace)
		if err := h.process(&Batch{Shard: "shard-0"}); err != nil {
			t.Fatal(err)
		}
		if len(h.outs) != 1 || h.outs[0].Value != "3" {
			t.Fatalf("window result %v, want the state of the 3 records once", h.outs)
		}
	})
	t.Run("ignored unless reported", func(t *testing.T) {
		s := &script{fn: func(in *Invocation) (*Result, error) { return &Result{Failures: []string{"s1"}}, nil }}
		h := newHarness(t, &Config{NewInvoker: s.NewInvoker, MaxRetries: 1})
		if err := h.process(makeBatch(3, base)); err != nil {
			t.Fatal(err)
		}
		if len(s.calls) != 1 {
			t.Fatalf("%d calls; batchItemFailures without report_batch_item_failures must be ignored", len(s.calls))
		}
	})
	t.Run("retries exhausted sends the failed rest", func(t *testing.T) {
		s := &script{fn: func(in *Invocation) (*Result, error) {
			return &Result{Failures: []string{in.Records[len(in.Records)-1].SequenceNumber}}, nil
		}}
		h := newHarness(t, &Config{NewInvoker: s.NewInvoker, ReportItemFailures: true, MaxRetries: 2, OnFailure: true})
		if err := h.process(makeBatch(5, base)); err != nil {
			t.Fatal(err)
		}
		if len(s.calls) != 3 || len(h.failures) != 1 {
			t.Fatalf("%d calls and %d on-failure records, want 3 and 1", len(s.calls), len(h.failures))
		}
		info := h.failures[0]["KinesisBatchInfo"].(map[string]any)
		if info["startSequenceNumber"] != "s4" || info["batchSize"] != int64(1) {
			t.Errorf("on-failure record %v, want s4 alone", info)
		}
	})
}

// Records older than maximum_record_age are given up on without a call.
func TestMaximumRecordAge(t *testing.T) {
	s := &script{fn: func(in *Invocation) (*Result, error) { return echo(in), nil }}
	cfg := &Config{NewInvoker: s.NewInvoker, MaxRecordAge: time.Minute, OnFailure: true}
	cfg.now = func() time.Time { return time.UnixMilli(base + 61_500) }
	h := newHarness(t, cfg)
	b := makeBatch(4, base) // arrivals base+0s..3s; cutoff base+1.5s
	if err := h.process(b); err != nil {
		t.Fatal(err)
	}
	if len(s.calls) != 1 || !slices.Equal(seqs(s.calls[0].Records), []string{"s2", "s3"}) {
		t.Fatalf("calls %v, want one with s2 and s3", s.calls)
	}
	if len(h.failures) != 1 {
		t.Fatalf("%d on-failure records, want 1", len(h.failures))
	}
	rc := h.failures[0]["requestContext"].(map[string]any)
	info := h.failures[0]["KinesisBatchInfo"].(map[string]any)
	if rc["condition"] != ConditionRecordAge || info["startSequenceNumber"] != "s0" || info["endSequenceNumber"] != "s1" {
		t.Errorf("on-failure record %v", h.failures[0])
	}
}

// With a parallelization factor, a shard's batch runs in up to that many
// lanes at once; whatever the keys and the lanes' timing, each key's
// records reach the function, and its outputs leave, in their order.
func TestParallelizationKeepsKeyOrder(t *testing.T) {
	r := testutil.Rand(t, 2)
	for round := range 20 {
		parallel := 1 + r.IntN(MaxParallel)
		size := 1 + r.IntN(20)
		keys := 1 + r.IntN(30)
		var batches []*Batch
		var want []string
		seq := 0
		for range 1 + r.IntN(5) {
			b := &Batch{Shard: "shard-0"}
			for range r.IntN(size*parallel + 1) {
				k := fmt.Sprintf("k%d", r.IntN(keys))
				sn := fmt.Sprintf("%06d", seq)
				seq++
				b.Records = append(b.Records, Record{PartitionKey: k, SequenceNumber: sn, Arrival: base})
				want = append(want, k+" "+sn)
			}
			batches = append(batches, b)
		}
		delay := make(map[string]int)
		for i := range keys {
			delay[fmt.Sprintf("k%d", i)] = r.IntN(3)
		}
		var mu sync.Mutex
		lanes := map[Invoker]bool{}
		s := &script{}
		s.fn = func(in *Invocation) (*Result, error) {
			if len(in.Records) > size {
				return nil, fmt.Errorf("a call of %d records; batch size is %d", len(in.Records), size)
			}
			for range delay[in.Records[0].PartitionKey] {
				time.Sleep(time.Millisecond) // let other lanes overtake
			}
			return echo(in), nil
		}
		newInv := func() (Invoker, error) {
			inv, _ := s.NewInvoker()
			mu.Lock()
			lanes[inv] = true
			mu.Unlock()
			return inv, nil
		}
		h := newHarness(t, &Config{NewInvoker: newInv, Size: size, Parallel: parallel})
		for _, b := range batches {
			if err := h.process(b); err != nil {
				t.Fatal(err)
			}
		}
		if len(lanes) != parallel {
			t.Fatalf("%d invokers for parallelization factor %d", len(lanes), parallel)
		}
		byKey := func(lines []string) map[string][]string {
			m := map[string][]string{}
			for _, l := range lines {
				k, sn, _ := strings.Cut(l, " ")
				m[k] = append(m[k], sn)
			}
			return m
		}
		var got []string
		for _, o := range h.outs {
			got = append(got, o.Key+" "+o.Value.(string))
		}
		w, g := byKey(want), byKey(got)
		for k := range w {
			if d := testutil.Diff(w[k], g[k]); d != "" {
				t.Fatalf("round %d (parallel %d, size %d): key %s out of order or lost:\n%s", round, parallel, size, k, d)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d outputs for %d records", round, len(got), len(want))
		}
	}
}

// Tumbling windows: the calls of a window get the state the previous one
// returned; a batch of a later window first closes the open one with a
// final call (no records, isFinalInvokeForWindow); an empty batch after a
// window's end on the wall clock closes it too; the open window's state
// survives a checkpoint and restore.
func TestTumblingWindowState(t *testing.T) {
	const minute = int64(60_000)
	w0 := base - base%minute
	now := time.UnixMilli(w0)
	sum := func(in *Invocation) (*Result, error) {
		n := int64(0)
		if st, ok := in.Window.State.(int64); ok {
			n = st
		} else if st, ok := in.Window.State.(float64); ok {
			n = int64(st)
		}
		if in.Window.Final {
			return &Result{Records: []Output{{PartitionKey: "total", Data: fmt.Sprintf("%d@%d", n, in.Window.Start)}}}, nil
		}
		return &Result{State: n + int64(len(in.Records))}, nil
	}
	db, err := state.Open(t.TempDir(), state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sp, err := db.Namespace("fn", "source/shard-0")
	if err != nil {
		t.Fatal(err)
	}
	mk := func() (*harness, *script) {
		s := &script{fn: sum}
		cfg := &Config{NewInvoker: s.NewInvoker, Tumbling: time.Minute}
		cfg.now = func() time.Time { return now }
		h := newHarness(t, cfg)
		if err := h.op.OpenState(sp); err != nil {
			t.Fatal(err)
		}
		return h, s
	}
	h, s := mk()
	win := func(n int, start int64) *Batch {
		b := makeBatch(n, start)
		b.Window = start
		return b
	}
	if err := h.process(win(3, w0), win(2, w0)); err != nil {
		t.Fatal(err)
	}
	// A checkpoint, then a restore into a new instance: the window's
	// state (5 records) carries over.
	if err := h.op.SnapshotState(); err != nil {
		t.Fatal(err)
	}
	h, s = mk()
	if err := h.process(win(4, w0+minute)); err != nil {
		t.Fatal(err)
	}
	if len(s.calls) != 2 || !s.calls[0].Window.Final || s.calls[0].Window.Start != w0 || len(s.calls[0].Records) != 0 {
		t.Fatalf("calls after restore %+v; want the final call of window %d first", s.calls, w0)
	}
	if s.calls[1].Window.Start != w0+minute || s.calls[1].Window.State != nil {
		t.Errorf("the next window's first call got window %+v; want a fresh state", s.calls[1].Window)
	}
	// Nothing arrives; the wall clock passes the window's end (and the
	// grace), and an empty batch closes it.
	if err := h.process(&Batch{Shard: "shard-0"}); err != nil {
		t.Fatal(err)
	}
	if len(s.calls) != 2 {
		t.Fatalf("an empty batch before the window's end closed it")
	}
	now = time.UnixMilli(w0 + 2*minute).Add(windowGrace)
	if err := h.process(&Batch{Shard: "shard-0"}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range h.outs {
		got = append(got, o.Value.(string))
	}
	want := []string{fmt.Sprintf("5@%d", w0), fmt.Sprintf("4@%d", w0+minute)}
	if d := testutil.Diff(want, got); d != "" {
		t.Errorf("window totals:\n%s", d)
	}
	// Records of a window already closed go into the next one.
	if err := h.process(win(1, w0+minute)); err != nil {
		t.Fatal(err)
	}
	if last := s.calls[len(s.calls)-1]; last.Window.Start != w0+2*minute {
		t.Errorf("a late record opened window %d; want %d", last.Window.Start, w0+2*minute)
	}
}

// With bisect_batch_on_function_error and report_batch_item_failures,
// Lambda bisects a partially failed batch at the returned sequence
// number and retries only the rest: the records from the first failed
// one on, called as one batch (not halved), as a split that costs no
// retry (so its attempt count starts again). A whole failure of the rest
// then halves it, and only a single record's failures cost retries.
func TestBisectWithItemFailures(t *testing.T) {
	type call struct {
		recs    []string
		attempt int
	}
	calls := func(s *script) []call {
		var out []call
		for _, c := range s.calls {
			out = append(out, call{seqs(c.Records), c.Attempt})
		}
		return out
	}
	outputs := func(h *harness) []string {
		var got []string
		for _, o := range h.outs {
			got = append(got, o.Value.(string))
		}
		return got
	}
	t.Run("the rest is retried as one batch", func(t *testing.T) {
		// s3 fails in the first call only.
		s := &script{}
		s.fn = func(in *Invocation) (*Result, error) {
			res := &Result{}
			for _, r := range in.Records {
				if len(s.calls) == 1 && r.SequenceNumber == "s3" {
					res.Failures = []string{"s3"}
					break
				}
				res.Records = append(res.Records, Output{PartitionKey: r.PartitionKey, Data: r.SequenceNumber})
			}
			return res, nil
		}
		h := newHarness(t, &Config{NewInvoker: s.NewInvoker, Bisect: true, ReportItemFailures: true, MaxRetries: 0, OnFailure: true})
		if err := h.process(makeBatch(8, base)); err != nil {
			t.Fatal(err)
		}
		want := []call{{[]string{"s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7"}, 1}, {[]string{"s3", "s4", "s5", "s6", "s7"}, 1}}
		if got := calls(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("calls %v, want %v", got, want)
		}
		if d := testutil.Diff(seqs(makeBatch(8, base).Records), outputs(h)); d != "" {
			t.Errorf("outputs:\n%s", d)
		}
		if len(h.failures) != 0 {
			t.Errorf("%d on-failure records, want none: the split cost no retry", len(h.failures))
		}
		if r, b := h.op.stats.Retries.Load(), h.op.stats.Bisections.Load(); r != 0 || b != 1 {
			t.Errorf("%d retries and %d bisections, want 0 and 1", r, b)
		}
	})
	t.Run("a record that keeps failing ends alone", func(t *testing.T) {
		// s4 fails every call; the function reports it and stops there.
		s := &script{fn: func(in *Invocation) (*Result, error) {
			res := &Result{}
			for _, r := range in.Records {
				if r.SequenceNumber == "s4" {
					res.Failures = []string{"s4"}
					break
				}
				res.Records = append(res.Records, Output{PartitionKey: r.PartitionKey, Data: r.SequenceNumber})
			}
			return res, nil
		}}
		h := newHarness(t, &Config{NewInvoker: s.NewInvoker, Bisect: true, ReportItemFailures: true, MaxRetries: 1, OnFailure: true})
		if err := h.process(makeBatch(6, base)); err != nil {
			t.Fatal(err)
		}
		want := []call{
			{[]string{"s0", "s1", "s2", "s3", "s4", "s5"}, 1}, // partial at s4: split there
			{[]string{"s4", "s5"}, 1},                         // names its first record: a whole failure, halved
			{[]string{"s4"}, 1},                               // fails alone: retried
			{[]string{"s4"}, 2},                               // retries exhausted
			{[]string{"s5"}, 1},
		}
		if got := calls(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("calls %v, want %v", got, want)
		}
		if d := testutil.Diff([]string{"s0", "s1", "s2", "s3", "s5"}, outputs(h)); d != "" {
			t.Errorf("outputs:\n%s", d)
		}
		if len(h.failures) != 1 {
			t.Fatalf("%d on-failure records, want 1", len(h.failures))
		}
		info := h.failures[0]["KinesisBatchInfo"].(map[string]any)
		rc := h.failures[0]["requestContext"].(map[string]any)
		if info["startSequenceNumber"] != "s4" || info["endSequenceNumber"] != "s4" || info["batchSize"] != int64(1) ||
			rc["approximateInvokeCount"] != int64(2) || rc["condition"] != ConditionRetriesExhausted {
			t.Errorf("on-failure record %v %v, want s4 alone after 2 calls, retries exhausted", info, rc)
		}
	})
	t.Run("each partial failure splits again", func(t *testing.T) {
		// The second record of each call fails once, with no retries
		// left: each partial failure is a split, not a retry.
		failed := map[string]bool{}
		s := &script{fn: func(in *Invocation) (*Result, error) {
			res := echo(in)
			if len(in.Records) > 1 && !failed[in.Records[1].SequenceNumber] {
				failed[in.Records[1].SequenceNumber] = true
				res.Records = res.Records[:1]
				res.Failures = []string{in.Records[1].SequenceNumber}
			}
			return res, nil
		}}
		h := newHarness(t, &Config{NewInvoker: s.NewInvoker, Bisect: true, ReportItemFailures: true, MaxRetries: 0, OnFailure: true})
		if err := h.process(makeBatch(4, base)); err != nil {
			t.Fatal(err)
		}
		want := []call{
			{[]string{"s0", "s1", "s2", "s3"}, 1},
			{[]string{"s1", "s2", "s3"}, 1},
			{[]string{"s2", "s3"}, 1},
			{[]string{"s3"}, 1},
		}
		if got := calls(s); !reflect.DeepEqual(got, want) {
			t.Fatalf("calls %v, want %v", got, want)
		}
		if d := testutil.Diff([]string{"s0", "s1", "s2", "s3"}, outputs(h)); d != "" || len(h.failures) != 0 {
			t.Errorf("%d on-failure records; outputs:\n%s", len(h.failures), d)
		}
	})
}
