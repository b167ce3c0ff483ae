package jobs

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/streams"
	"github.com/runnel-dev/runnel/streams/streamstest"
)

// syncBuffer is a log sink's writer read while the job runs.
type syncBuffer struct{ testutil.Buffer }

// lines returns the lines written that start with prefix, sorted.
func (s *syncBuffer) lines(prefix string) []string {
	var out []string
	for _, l := range strings.Split(s.String(), "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// TestRawSourceAndProjectionKeepResults: a stream source read only by a
// JS chain hands it raw JSON, and a chain feeding a window exports only
// the fields the window's aggregates read. Neither changes a result: the
// same job with a second reader of the source (which turns raw JSON
// off) and a late sink on the window (which turns off the projection) gives
// the same window rows, including nested fields, a field some
// records lack, records the filter drops, a record the first operator
// skips and the event time read from the raw record.
func TestRawSourceAndProjectionKeepResults(t *testing.T) {
	store := rawTestStore(t)
	job := `name: eq
source: {stream: in, event_time: "r => r.ts", watermark: 1s}
operators:
  - id: parse
    map: "r => { if (typeof r.ms === 'string') throw new Error('bad ms'); return {page: r.page, ms: r.ms, x: r.m && r.m.x, status: r.status} }"
    on_error: skip
  - {id: ok, filter: "r => r.status === 200"}
  - id: w
    window: {key: "r => r.page", tumbling: 50s, aggregate: {n: count, total: sum(ms), xs: sum(x), top: max(ms)}}
sinks:
  - {id: out, input: w, log: {}}
`
	// 4 windows of 50 s × 7 pages, all fired once the end record's
	// watermark arrives.
	run := func(spec string) []string {
		t.Helper()
		rows, _ := runForRows(t, store, spec, Env{}, 28)
		return rows
	}
	// A plain field event_time is read in Go; any other runs in JS.
	for _, et := range []string{"r => r.ts", "r => r.ts * 1"} {
		job := strings.Replace(job, "r => r.ts", et, 1)
		fast := run(job)
		plain := run(job + "  - {id: all, input: source, log: {}}\n  - {id: late, late: w, log: {}}\n")
		if !slices.Equal(fast, plain) {
			t.Fatalf("event_time %s, raw + projected:\n%s\ndecoded:\n%s", et, strings.Join(fast, "\n"), strings.Join(plain, "\n"))
		}
	}
}

// TestNativeChainKeepsResults: a job whose functions are simple enough runs
// its chain natively (the job status says so), with the same window rows
// as with every function in goja.
func TestNativeChainKeepsResults(t *testing.T) {
	store := rawTestStore(t)
	job := `name: native
source: {stream: in, event_time: "r => r.ts", watermark: 1s}
operators:
  - id: parse
    map: "r => ({page: r.page, ms: r.ms ?? 0, x: r.m && r.m.x, status: r.status, slow: r.status > 200})"
  - {id: ok, filter: "r => r.status === 200 && typeof r.ms === 'number'"}
  - id: w
    window: {key: "r => r.page", tumbling: 50s, aggregate: {n: count, total: sum(ms), xs: sum(x), top: max(ms)}}
sinks:
  - {id: out, input: w, log: {}}
`
	native, st := runForRows(t, store, job, Env{}, 28)
	goja, gst := runForRows(t, store, job, Env{InterpretedJS: true}, 28)
	if !slices.Equal(native, goja) {
		t.Fatalf("native:\n%s\ngoja:\n%s", strings.Join(native, "\n"), strings.Join(goja, "\n"))
	}
	batches := func(st engine.Status) (nb, gb int64) {
		for _, o := range st.Operators {
			if o.ID == "parse" {
				return o.NativeBatches, o.GojaBatches
			}
		}
		t.Fatalf("no parse operator in %+v", st.Operators)
		return 0, 0
	}
	if nb, gb := batches(st); nb == 0 || gb != 0 {
		t.Fatalf("native run: %d native and %d goja batches; want all native", nb, gb)
	}
	if nb, gb := batches(gst); nb != 0 || gb == 0 {
		t.Fatalf("interpreted run: %d native and %d goja batches; want all goja", nb, gb)
	}
}

// rawTestStore holds stream "in": 200 JSON records on 2 shards (some
// without ms, some with a string ms), then records far in the future that
// fire every window before them.
func rawTestStore(t *testing.T) *streams.Store {
	t.Helper()
	store := streamstest.Open(t, streams.Options{}, "in", 2)
	var recs []streams.PutRecord
	for i := range 200 {
		data := fmt.Sprintf(`{"page":"/p/%d","ms":%d,"m":{"x":%d.5},"status":%d,"ts":%d}`, i%7, i, i%5, 200+100*(i%4/3), 1000*i)
		switch i % 50 {
		case 13:
			data = `{"page":"/p/1","status":200,"ts":13000}` // no ms
		case 27:
			data = `{"page":"/p/1","ms":"x","status":200,"ts":27000}` // skipped by the map
		}
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprint(i), Data: []byte(data)})
	}
	// Far in the future, on both shards: the watermark passes every
	// window above.
	for i := range 8 {
		recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprint("end", i), Data: []byte(`{"page":"end","ms":0,"status":200,"ts":9000000}`)})
	}
	if _, err := store.Put(context.Background(), "in", recs); err != nil {
		t.Fatal(err)
	}
	return store
}

// runForRows runs a job whose log sink is "out" until it has logged n rows,
// and returns them sorted with the job's status.
func runForRows(t *testing.T, store *streams.Store, spec string, env Env, n int) ([]string, engine.Status) {
	t.Helper()
	var log syncBuffer
	env.Store, env.Log = store, &log
	built, err := Build(mustParse(t, spec), env)
	if err != nil {
		t.Fatal(err)
	}
	j, err := engine.Start(context.Background(), built.Graph, engine.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Stop(context.Background())
	if !testutil.Within(time.Minute, func() bool {
		if len(log.lines("out: ")) >= n {
			return true
		}
		if st := j.Status(); st.State == engine.Failed {
			t.Fatalf("job %s (%s) after %d rows", st.State, st.Reason, len(log.lines("out: ")))
		}
		return false
	}) {
		st := j.Status()
		t.Fatalf("job %s (%s) after %d rows", st.State, st.Reason, len(log.lines("out: ")))
	}
	return log.lines("out: "), j.Status()
}

// TestBuildOrdersNodes: a job file may declare an operator before the one
// it reads; Build hands the runtime its nodes in topological order, and
// the job runs.
func TestBuildOrdersNodes(t *testing.T) {
	in := filepath.Join(t.TempDir(), "in.jsonl")
	if err := os.WriteFile(in, []byte("{\"n\": 1}\n{\"n\": 2}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := mustParse(t, fmt.Sprintf(`name: j
source: {file: %q}
operators:
  - {id: second, input: first, map: "r => ({n: r.n * 10})"}
  - {id: both, inputs: [second, first], map: "r => r"}
  - {id: first, input: source, map: "r => ({n: r.n + 1})"}
sinks: [{id: out, input: both, log: {}}]
`, in))
	var log syncBuffer
	built, err := Build(spec, Env{Log: &log})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range built.Graph.Nodes {
		ids = append(ids, n.ID)
	}
	if want := []string{"first", "second", "both"}; !slices.Equal(ids, want) {
		t.Errorf("nodes %v, want %v", ids, want)
	}
	if _, err := engine.Run(context.Background(), built.Graph, engine.Options{}); err != nil {
		t.Fatal(err)
	}
	want := []string{`out: {"n":20}`, `out: {"n":2}`, `out: {"n":30}`, `out: {"n":3}`} // sorted as text
	if got := log.lines("out: "); !slices.Equal(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
}
