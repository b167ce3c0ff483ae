package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime/pprof"
	"sort"
	"strings"
	"time"

	"github.com/runnel-dev/runnel/engine"
	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/jobs"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/aggregate"
	"github.com/runnel-dev/runnel/operators/window"
	"github.com/runnel-dev/runnel/sinks"
	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/streams"
)

func init() { benchmarks["job"] = benchJob }

const benchJobYAML = `name: bench-js
source: {stream: bench, event_time: "r => r.ts", watermark: 1s}
operators:
  - id: parse
    map: "r => ({page: r.page, ms: r.ms, status: r.status})"
  - id: ok
    filter: "r => r.status === 200"
  - id: per-page
    window: {key: "r => r.page", tumbling: 10s, aggregate: {views: count, total_ms: sum(ms)}}
sinks: [{id: out, dashboard: {rows: 1000}}]
`

func benchJob(args []string) error {
	fs := newFlags("bench job", "bench job [--records N] [--keys 1000] [--shards 4]", `
Puts --records JSON records of about 100 bytes (--keys pages) into a --shards stream of a
fresh store in --dir, then runs the job map → filter → keyed tumbling count + sum over them
three times — with the operators in JavaScript as a server runs them (simple functions
evaluated natively, see docs/jobs.md), with every JavaScript function in goja, and in
native Go — and prints records/s end to end (first record read to last record counted by
the window), CPU per record and the ratios.`)
	dir := fs.String("dir", os.TempDir(), "directory for the benchmark's store")
	n := fs.Int("records", 1_000_000, "records in the log")
	keys := fs.Int("keys", 1000, "distinct window keys")
	shards := fs.Int("shards", 4, "shards of the stream")
	latFor := fs.Duration("latency", 10*time.Second, "then measure put → window state latency at 70% of the JS job's maximum rate for this long (0: skip)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the JS job's run (with --only goja: of that run) to this file")
	only := fs.String("only", "", "run only the js, goja or native job")
	latRate := fs.Float64("latency-rate", 0, "records/s of the latency phase (default 70% of the JS job's measured maximum)")
	if _, err := parseInterspersed(fs, args, 0, ""); err != nil {
		return err
	}
	if *only != "" && *only != "js" && *only != "goja" && *only != "native" {
		return fmt.Errorf("%w: --only must be js, goja or native", errUsage)
	}
	work, err := os.MkdirTemp(*dir, "runnel-bench-job-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	st, err := streams.Open(work, streams.Options{Logger: quietLogger(), SyncInterval: time.Second})
	if err != nil {
		return err
	}
	defer st.Close()
	ok, err := fillBenchStream(st, *n, *keys, *shards)
	if err != nil {
		return err
	}
	fmt.Printf("job: %d records (%d pass the filter), %d keys, %d shards, records already in the log\n", *n, ok, *keys, *shards)
	spec, err := jobs.Parse([]byte(benchJobYAML))
	if err != nil {
		return err
	}
	var jsRate, gojaRate, goRate float64
	if *only == "" || *only == "js" {
		built, err := jobs.Build(spec, jobs.Env{Store: st})
		if err != nil {
			return err
		}
		jsRate, err = timeJob(built.Graph, "per-page", int64(ok), *cpuProfile, "javascript")
		if err != nil {
			return err
		}
	}
	if *only == "" || *only == "goja" {
		built, err := jobs.Build(spec, jobs.Env{Store: st, InterpretedJS: true})
		if err != nil {
			return err
		}
		profile := ""
		if *only == "goja" {
			profile = *cpuProfile
		}
		gojaRate, err = timeJob(built.Graph, "per-page", int64(ok), profile, "js in goja")
		if err != nil {
			return err
		}
	}
	if *only == "" || *only == "native" {
		g, err := nativeBenchGraph(st)
		if err != nil {
			return err
		}
		if goRate, err = timeJob(g, "per-page", int64(ok), "", "native go"); err != nil {
			return err
		}
	}
	if jsRate > 0 && goRate > 0 {
		fmt.Printf("  javascript / native = %.2f\n", jsRate/goRate)
	}
	if gojaRate > 0 && goRate > 0 {
		fmt.Printf("  js in goja / native = %.2f\n", gojaRate/goRate)
	}
	if *latFor <= 0 || (jsRate == 0 && *latRate <= 0) {
		return nil
	}
	rate, share := *latRate, ""
	if rate <= 0 {
		rate, share = 0.7*jsRate, " = 70% of its maximum"
	}
	p50, p99, err := latencyRun(st, *keys, *shards, rate, *latFor)
	if err != nil {
		return err
	}
	fmt.Printf("  put → window state (JS job, %.0f records/s%s, %v): p50 %v, p99 %v\n", rate, share, *latFor, p50, p99)
	return nil
}

// latencyRun puts records at rate into a fresh stream read by the JS job
// and measures, per put, the time from the start of the put until the
// window operator has counted its records.
func latencyRun(st *streams.Store, keys, shards int, rate float64, dur time.Duration) (p50, p99 time.Duration, err error) {
	if _, err := st.CreateStream("latency", shards, streams.CreateOptions{}); err != nil {
		return 0, 0, err
	}
	spec, err := jobs.Parse([]byte(strings.Replace(benchJobYAML, "stream: bench", "stream: latency, start: latest", 1)))
	if err != nil {
		return 0, 0, err
	}
	built, err := jobs.Build(spec, jobs.Env{Store: st})
	if err != nil {
		return 0, 0, err
	}
	j, stop, err := startBenchJob(built.Graph)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	type put struct {
		start time.Time
		upTo  int64 // records counted by the window once this put is in
	}
	puts := make(chan put, 10000)
	const tick = 10 * time.Millisecond
	per := max(1, int(rate*tick.Seconds()))
	go func() {
		defer close(puts)
		var total int64
		t := time.NewTicker(tick)
		defer t.Stop()
		end := time.Now().Add(dur)
		for now := range t.C {
			if now.After(end) {
				return
			}
			batch := make([]streams.PutRecord, per)
			for i := range batch {
				data := fmt.Appendf(nil, `{"page":"/p/%d","user":"u-1","ms":1,"status":200,"ts":%d,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`, i%keys, now.UnixMilli())
				batch[i] = streams.PutRecord{PartitionKey: fmt.Sprint(i), Data: data}
			}
			start := time.Now()
			if _, err := st.Put(context.Background(), "latency", batch); err != nil {
				return
			}
			total += int64(per)
			puts <- put{start, total}
		}
	}()
	var lat []time.Duration
	var pending []put
	in := puts
	for in != nil || len(pending) > 0 {
	drain:
		for in != nil {
			select {
			case p, ok := <-in:
				if !ok {
					in = nil // the producer is done
					break drain
				}
				pending = append(pending, p)
			default:
				break drain
			}
		}
		var counted int64
		for _, o := range j.Status().Operators {
			if o.ID == "per-page" {
				counted = o.In
			}
		}
		now := time.Now()
		for len(pending) > 0 && pending[0].upTo <= counted {
			lat = append(lat, now.Sub(pending[0].start))
			pending = pending[1:]
		}
		if len(pending) > 0 && now.Sub(pending[0].start) > time.Minute {
			return 0, 0, fmt.Errorf("records put a minute ago are not counted by the window yet")
		}
		time.Sleep(200 * time.Microsecond)
	}
	if len(lat) == 0 {
		return 0, 0, fmt.Errorf("no put measured")
	}
	sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
	return lat[len(lat)/2], lat[len(lat)*99/100], nil
}

func fillBenchStream(st *streams.Store, n, keys, shards int) (int, error) {
	if _, err := st.CreateStream("bench", shards, streams.CreateOptions{}); err != nil {
		return 0, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ok := 0
	batch := make([]streams.PutRecord, 0, 500)
	for i := 0; i < n; i++ {
		status := 200
		if rng.IntN(10) == 0 {
			status = 500
		} else {
			ok++
		}
		user := rng.IntN(100000)
		data := fmt.Appendf(nil, `{"page":"/p/%d","user":"u-%06d","ms":%d,"status":%d,"ts":%d,"pad":"`, rng.IntN(keys), user, rng.IntN(300), status, 1767225600000+int64(i/10))
		for len(data) < 98 {
			data = append(data, 'x')
		}
		data = append(data, '"', '}')
		batch = append(batch, streams.PutRecord{PartitionKey: fmt.Sprintf("u-%06d", user), Data: data})
		if len(batch) == cap(batch) || i == n-1 {
			if _, err := st.Put(context.Background(), "bench", batch); err != nil {
				return 0, err
			}
			batch = batch[:0]
		}
	}
	return ok, nil
}

// timeJob starts g and measures records/s from start until the node
// counted want records in. It prints the rate and the process CPU time
// per record (user+system, the steadier figure on a shared machine), and
// writes a CPU profile of the run to profile if it is not empty.
func timeJob(g *engine.Graph, node string, want int64, profile, label string) (float64, error) {
	if profile != "" {
		f, err := os.Create(profile)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, err
		}
		defer pprof.StopCPUProfile()
	}
	rate, cpu, err := runJob(g, node, want)
	if err != nil {
		return 0, err
	}
	fmt.Printf("  %-11s %.0f records/s, %.2f µs CPU/record (%.0f records per CPU-second)\n", label+":", rate,
		cpu.Seconds()*1e6/float64(want), float64(want)/cpu.Seconds())
	return rate, nil
}

func runJob(g *engine.Graph, node string, want int64) (rate float64, cpu time.Duration, err error) {
	start, cpu0 := time.Now(), cpuclock.Process()
	j, stop, err := startBenchJob(g)
	if err != nil {
		return 0, 0, err
	}
	defer stop()
	for {
		st := j.Status()
		if st.State == engine.Failed {
			return 0, 0, fmt.Errorf("job failed: %s", st.Reason)
		}
		for _, o := range st.Operators {
			if o.ID == node && o.In >= want {
				return float64(want) / time.Since(start).Seconds(), cpuclock.Since(cpu0), nil
			}
		}
		if time.Since(start) > 10*time.Minute {
			return 0, 0, fmt.Errorf("job did not finish in 10 minutes")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// goOp is a native map/filter operator.
type goOp func(r *operators.Record) bool

func (f goOp) Process(_ context.Context, in *operators.Batch, out operators.Emitter) error {
	for i := range in.Records {
		if f(&in.Records[i]) {
			out.Emit(in.Records[i])
		}
	}
	return nil
}

func (goOp) Close() error { return nil }

func nativeBenchGraph(st *streams.Store) (*engine.Graph, error) {
	src, err := sources.NewStream(sources.StreamConfig{Store: st, Stream: "bench"})
	if err != nil {
		return nil, err
	}
	views, _ := aggregate.Parse("views", "count")
	total, _ := aggregate.Parse("total_ms", "sum(ms)")
	wcfg := window.Config{Job: "bench-native", ID: "per-page", Kind: window.Tumbling, Size: 10 * time.Second, Aggregates: []aggregate.Spec{views, total}}
	dash, err := sinks.NewDashboard(sinks.DashboardConfig{MaxRows: 1000})
	if err != nil {
		return nil, err
	}
	return &engine.Graph{
		Name:    "bench-native",
		Sources: []engine.SourceNode{{ID: "source", Source: src, EventTime: engine.FieldEventTime("ts"), Watermark: time.Second}},
		Nodes: []engine.Node{
			{ID: "parse", Inputs: []string{"source"}, New: func() (operators.Operator, error) {
				return goOp(func(r *operators.Record) bool {
					m := r.Value.(map[string]any)
					r.Value = map[string]any{"page": m["page"], "ms": m["ms"], "status": m["status"]}
					return true
				}), nil
			}},
			{ID: "ok", Inputs: []string{"parse"}, New: func() (operators.Operator, error) {
				return goOp(func(r *operators.Record) bool {
					s, _ := r.Value.(map[string]any)["status"].(float64)
					if i, ok := r.Value.(map[string]any)["status"].(int64); ok {
						s = float64(i)
					}
					return s == 200
				}), nil
			}},
			{ID: "per-page", Inputs: []string{"ok"}, Key: engine.FieldKey("page"), New: func() (operators.Operator, error) { return window.New(wcfg) }},
		},
		Sinks: []engine.SinkNode{{ID: "out", Inputs: []string{"per-page"}, Sink: dash}},
	}, nil
}

// startBenchJob starts g; stop gives the job ten seconds to stop cleanly.
func startBenchJob(g *engine.Graph) (j *engine.Job, stop func(), err error) {
	j, err = engine.Start(context.Background(), g, engine.Options{})
	if err != nil {
		return nil, nil, err
	}
	return j, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		j.Stop(ctx)
	}, nil
}
