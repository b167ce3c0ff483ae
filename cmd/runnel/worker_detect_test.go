package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-dev/runnel/internal/testsrv"
	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators/anomaly"
	"github.com/runnel-dev/runnel/operators/detect"
)

// detectJob scores each series' points with its own model: a keyed stage
// (repartition by series) whose per-key models live in its changelog.
const detectJob = `name: spikes
source:
  kafka: {brokers: [%[1]s], topics: [points]}
  event_time: "r => r.ts"
  watermark: 1s
operators:
  - id: score
    detect:
      value: v
      key: "r => r.series"
sinks:
  - {id: out, input: score, kafka: {brokers: [%[1]s], topic: scored}}
`

type point struct {
	Series string  `json:"series"`
	Seq    int     `json:"seq"`
	TS     int64   `json:"ts"`
	V      float64 `json:"v"`
}

// pointVerdict is what detect said of one point.
type pointVerdict struct {
	Series string
	Seq    int
	Score  float64
	Flag   bool
}

func (v pointVerdict) String() string {
	return fmt.Sprintf("%s#%d score=%v anomaly=%v", v.Series, v.Seq, v.Score, v.Flag)
}

func sortVerdicts(vs []pointVerdict) {
	sort.Slice(vs, func(i, j int) bool {
		if vs[i].Series != vs[j].Series {
			return vs[i].Series < vs[j].Series
		}
		return vs[i].Seq < vs[j].Seq
	})
}

// oneProcessVerdicts runs the job's detect operator over every series in
// order in this process: per key, detect is deterministic.
func oneProcessVerdicts(t *testing.T, pts []point) []pointVerdict {
	op, err := detect.New(detect.Config{ID: "score", Fields: []string{"v"}, Anomaly: anomaly.Config{Method: "auto"}})
	if err != nil {
		t.Fatal(err)
	}
	defer op.Close()
	var out []pointVerdict
	for _, p := range pts {
		res, err := op.Score(p.Series, time.UnixMilli(p.TS), []float64{p.V})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pointVerdict{p.Series, p.Seq, res.Score, res.IsAnomaly})
	}
	sortVerdicts(out)
	return out
}

// Two workers run a detect job from Kafka to Kafka while one of them is
// killed with -9 and started again: the scored points (read committed)
// equal those of the same detector run in one process over the same
// input, none missing or duplicated, each series in order. Without a
// changelog for detect's models a restored task would start its series'
// models over and score differently.
func TestWorkerDetectSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("starts kfake and two workers")
	}
	c := newKafkaCluster(t, func(brokers string) string { return fmt.Sprintf(detectJob, brokers) }, "points", "scored")

	rng := testutil.Rand(t, 1)
	const series, perSeries = 8, 240
	var all []point
	for i := range perSeries {
		for s := range series {
			v := 100 + float64(s)*10 + rng.NormFloat64()*3
			if rng.IntN(40) == 0 {
				v += 60 + rng.Float64()*40 // a spike
			}
			all = append(all, point{Series: fmt.Sprint("s", s), Seq: i, TS: 1_700_000_000_000 + int64(i)*1000, V: v})
		}
	}
	send := func(pts []point) {
		t.Helper()
		recs := make([]*kgo.Record, 0, len(pts))
		for _, p := range pts {
			b, _ := json.Marshal(p)
			recs = append(recs, &kgo.Record{Topic: "points", Key: []byte(p.Series), Value: b})
		}
		if err := c.prod.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatalf("produce points: %v", err)
		}
	}

	out := newScoredReader(t, c.kafka.Addr)
	w1 := c.worker(t, "w1", "--session-timeout", "6s")
	w2 := c.worker(t, "w2", "--session-timeout", "6s")
	third := len(all) / 3
	send(all[:third])
	testutil.Eventually(t, 3*time.Minute, func() bool { return out.poll(t) >= third/2 }, "no scored points from the workers")
	w2.kill()
	send(all[third : 2*third])
	testutil.Eventually(t, 3*time.Minute, func() bool { return out.poll(t) >= third+third/2 }, "w1 did not take over w2's tasks")
	w2.start(c.bin)
	send(all[2*third:])
	testutil.Eventually(t, 3*time.Minute, func() bool { return out.poll(t) >= len(all) }, "not every point was scored: %d of %d", len(out.got), len(all))
	// A little longer, to catch duplicates.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		out.poll(t)
	}
	w1.kill()
	w2.kill()

	got := append([]pointVerdict(nil), out.got...)
	sortVerdicts(got)
	want := oneProcessVerdicts(t, all)
	flagged := 0
	for _, v := range want {
		if v.Flag {
			flagged++
		}
	}
	t.Logf("%d points, %d flagged by the one-process detector, %d scored by the workers", len(want), flagged, len(got))
	if flagged == 0 {
		t.Errorf("the input has no flagged point: the test shows nothing")
	}
	if d := testutil.Diff(want, got); d != "" {
		t.Errorf("the workers' verdicts differ from one process's:\n%s", d)
	}
	if len(out.disorder) > 0 {
		t.Errorf("series out of order: %v", out.disorder[:min(len(out.disorder), 10)])
	}
}

// scoredReader reads the sink topic, read committed.
type scoredReader struct {
	cl       *kgo.Client
	got      []pointVerdict
	last     map[string]int
	disorder []string
}

func newScoredReader(t *testing.T, brokers string) *scoredReader {
	cl := testsrv.ReadCommitted(t, "scored", brokers)
	t.Cleanup(cl.Close)
	return &scoredReader{cl: cl, last: map[string]int{}}
}

// poll reads what arrived within a second and returns the count so far.
func (r *scoredReader) poll(t *testing.T) int {
	pollSecond(r.cl, func(rec *kgo.Record) {
		var m struct {
			Series string  `json:"series"`
			Seq    int     `json:"seq"`
			Score  float64 `json:"anomaly_score"`
			Flag   bool    `json:"is_anomaly"`
		}
		if err := json.Unmarshal(rec.Value, &m); err != nil {
			t.Errorf("scored record %q: %v", rec.Value, err)
			return
		}
		if prev, ok := r.last[m.Series]; ok && m.Seq <= prev {
			r.disorder = append(r.disorder, fmt.Sprintf("%s: %d after %d", m.Series, m.Seq, prev))
		}
		r.last[m.Series] = m.Seq
		r.got = append(r.got, pointVerdict{m.Series, m.Seq, m.Score, m.Flag})
	})
	return len(r.got)
}
