package engine

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/runnel-dev/runnel/internal/cpuclock"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/sources"
	"github.com/runnel-dev/runnel/streams"
)

// fillStream puts the benchmark records into a new 4-shard stream.
func fillStream(b *testing.B, store *streams.Store, name string, shards, n int) {
	if _, err := store.CreateStream(name, shards, streams.CreateOptions{}); err != nil {
		b.Fatal(err)
	}
	lines := benchLines(1, n, 1000)[0].Data
	for i := 0; i < n; i += 500 {
		var recs []streams.PutRecord
		for _, l := range lines[i:min(i+500, n)] {
			recs = append(recs, streams.PutRecord{PartitionKey: fmt.Sprint(rand.Uint32()), Data: l})
		}
		if _, err := store.Put(context.Background(), name, recs); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStreamJob is the throughput figure with the records
// already in the log: a 4-shard stream of ~100-byte JSON records over
// 1,000 keys, read by the stream source, map → filter → keyed tumbling
// count + sum, native and JS.
func BenchmarkStreamJob(b *testing.B) {
	n := 400_000
	if testing.Short() {
		n = 80_000
	}
	store, err := streams.Open(b.TempDir(), streams.Options{SyncInterval: time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	fillStream(b, store, "clicks", 4, n)
	// The JS job's source hands JSON on undecoded (RawJSON), as jobs.Build
	// has it do when only JS chains read the source.
	src := func(raw bool) sources.Source {
		s, err := sources.NewStream(sources.StreamConfig{Store: store, Stream: "clicks", RawJSON: raw})
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	b.ResetTimer()
	var native, jsr benchRun
	for b.Loop() {
		runStreamBench(b, &native, n, nativeGraph(b, src(false), &countSink{}))
		runStreamBench(b, &jsr, n, jsGraph(b, src(true), &countSink{}, false))
	}
	native.report(b, "native")
	jsr.report(b, "js")
	b.ReportMetric(float64(jsr.cpu)/float64(native.cpu), "js/native-cpu")
}

// runStreamBench runs g on an unbounded stream until its source read n
// records and the window input drained, then stops it.
func runStreamBench(b *testing.B, tot *benchRun, n int, g *Graph) {
	cpu0 := cpuclock.Process()
	start := time.Now()
	j, err := Start(context.Background(), g, Options{})
	if err != nil {
		b.Fatal(err)
	}
	for {
		st := j.Status()
		if st.State != Running {
			b.Fatalf("job %s: %s", st.State, st.Reason)
		}
		if opsByID(st)["src"].Out >= int64(n) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if err := j.Stop(context.Background()); err != nil {
		b.Fatal(err)
	}
	tot.wall += time.Since(start)
	tot.cpu += cpuclock.Since(cpu0)
	tot.records += float64(n)
}

// probe wraps the window operator and records, after each Process, how
// long ago each record was put (its "put" field, unix ns): the time until
// the record is in window state.
type probe struct {
	operators.Operator
	mu  *sync.Mutex
	lat *[]time.Duration
}

func (p *probe) Process(ctx context.Context, in *operators.Batch, out operators.Emitter) error {
	puts := make([]int64, len(in.Records))
	for i, r := range in.Records {
		puts[i] = int64(r.Value.(map[string]any)["put"].(float64))
	}
	if err := p.Operator.Process(ctx, in, out); err != nil {
		return err
	}
	now := time.Now().UnixNano()
	p.mu.Lock()
	for _, t := range puts {
		*p.lat = append(*p.lat, time.Duration(now-t))
	}
	p.mu.Unlock()
	return nil
}

func (p *probe) OnWatermark(ctx context.Context, wm int64, out operators.Emitter) error {
	return p.Operator.(operators.WatermarkHandler).OnWatermark(ctx, wm, out)
}

// BenchmarkPutToWindowLatency measures put → window state visible for the
// native benchmark job reading a live stream: first the maximum rate
// (records already in the log), then producers putting at 70% of it
// (durable puts, fsync before acknowledgement) while the probe records
// each record's latency. Reports p50/p99 and the rate achieved.
func BenchmarkPutToWindowLatency(b *testing.B) {
	dur := 3 * time.Second
	if testing.Short() {
		dur = time.Second
	}
	for b.Loop() {
		store, err := streams.Open(b.TempDir(), streams.Options{})
		if err != nil {
			b.Fatal(err)
		}
		var maxRun benchRun
		pre, _ := streams.Open(b.TempDir(), streams.Options{SyncInterval: time.Second})
		fillStream(b, pre, "warm", 4, 100_000)
		s, _ := sources.NewStream(sources.StreamConfig{Store: pre, Stream: "warm"})
		runStreamBench(b, &maxRun, 100_000, nativeGraph(b, s, &countSink{}))
		pre.Close()
		rate := 0.7 * maxRun.records / maxRun.wall.Seconds()

		if _, err := store.CreateStream("live", 4, streams.CreateOptions{}); err != nil {
			b.Fatal(err)
		}
		src, _ := sources.NewStream(sources.StreamConfig{Store: store, Stream: "live", Start: sources.StartLatest})
		g := nativeGraph(b, src, &countSink{})
		var mu sync.Mutex
		var lat []time.Duration
		inner := g.Nodes[2].New
		g.Nodes[2].New = func() (operators.Operator, error) {
			op, err := inner()
			return &probe{Operator: op, mu: &mu, lat: &lat}, err
		}
		g.Nodes[0].New = newMap(func(r operators.Record) (operators.Record, bool) {
			m := r.Value.(map[string]any)
			r.Value = map[string]any{"page": m["page"], "ms": m["latency_ms"], "status": m["status"], "put": m["put"]}
			return r, true
		})
		j, err := Start(context.Background(), g, Options{})
		if err != nil {
			b.Fatal(err)
		}
		put, putLat := produce(b, store, "live", rate, dur)
		for {
			mu.Lock()
			got := len(lat)
			mu.Unlock()
			if got >= put*95/100 || j.Status().State != Running {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		j.Stop(context.Background())
		store.Close()
		mu.Lock()
		slices.Sort(lat)
		if len(lat) == 0 {
			b.Fatal("no latencies")
		}
		b.ReportMetric(maxRun.records/maxRun.wall.Seconds(), "max-records/s")
		b.ReportMetric(float64(put)/dur.Seconds(), "offered-records/s")
		b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		mu.Unlock()
		// The durable Put alone (fsync before the acknowledgement), per call.
		slices.Sort(putLat)
		b.ReportMetric(float64(putLat[len(putLat)/2].Microseconds())/1000, "put-p50-ms")
		b.ReportMetric(float64(putLat[len(putLat)*99/100].Microseconds())/1000, "put-p99-ms")
	}
}

// produce puts records at rate for dur from 4 producers (each Put is
// durable before it returns) and returns how many it put and how long
// each Put call took.
func produce(b *testing.B, store *streams.Store, name string, rate float64, dur time.Duration) (int, []time.Duration) {
	const tick = 5 * time.Millisecond
	per := max(1, int(rate*tick.Seconds()))
	work := make(chan int, 4)
	var wg sync.WaitGroup
	total := 0
	var putLat []time.Duration
	var mu sync.Mutex
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				recs := make([]streams.PutRecord, n)
				now := time.Now().UnixNano()
				for i := range recs {
					page := rand.IntN(1000)
					recs[i] = streams.PutRecord{PartitionKey: fmt.Sprint(page), Data: fmt.Appendf(nil,
						`{"page":"/p/%d","user":"u-%d","latency_ms":%d,"status":200,"ts":%d,"put":%d}`,
						page, rand.IntN(1000), rand.IntN(300), now/1e6, now)}
				}
				t0 := time.Now()
				if _, err := store.Put(context.Background(), name, recs); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				total += n
				putLat = append(putLat, time.Since(t0))
				mu.Unlock()
			}
		}()
	}
	t := time.NewTicker(tick)
	end := time.Now().Add(dur)
	for time.Now().Before(end) {
		<-t.C
		select {
		case work <- per:
		default: // producers saturated: the offered rate drops, reported below
		}
	}
	t.Stop()
	close(work)
	wg.Wait()
	return total, putLat
}
