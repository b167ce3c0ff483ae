package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/runnel-dev/runnel/internal/testutil"
	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/anomaly"
	"github.com/runnel-dev/runnel/operators/detect"
)

// verdict is what a detect operator said of one record.
type verdict struct {
	Key   string
	Seq   int
	Score float64
	Flag  bool
}

func (v verdict) String() string {
	return fmt.Sprintf("%s#%d score=%v anomaly=%v", v.Key, v.Seq, v.Score, v.Flag)
}

type verdicts []verdict

func (vs *verdicts) Emit(r operators.Record) {
	m := r.Value.(map[string]any)
	s, _ := m[detect.FieldScore].(float64)
	f, _ := m[detect.FieldIsAnomaly].(bool)
	*vs = append(*vs, verdict{Key: r.Key, Seq: m["seq"].(int), Score: s, Flag: f})
}

// A detect task that moves restores its per-key models from the changelog
// records its old owner wrote, and scores the rest of the series exactly
// as if it had never moved: the randomized series are split at a random
// point; the changes up to there are applied to a new task's operator,
// which then gets the rest.
func TestDetectLogRoundTrip(t *testing.T) {
	rng := testutil.Rand(t, 1)
	cfg := detect.Config{ID: "d", Fields: []string{"v"}, Anomaly: anomaly.Config{Method: "auto"}}
	var recs []operators.Record
	for i := range 600 {
		key := fmt.Sprint("k", rng.IntN(5))
		v := 100 + rng.NormFloat64()*5
		if rng.IntN(50) == 0 {
			v += 80 // a spike
		}
		recs = append(recs, operators.Record{Key: key, EventTime: int64(i) * 1000, Value: map[string]any{"v": v, "seq": i}})
	}
	cut := 100 + rng.IntN(400)
	w := &Worker{cfg: Config{Log: slog.Default()}}
	t.Cleanup(w.closeScratch)
	newTask := func(name string) (*detect.Operator, *detectLog) {
		op, err := detect.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		d, err := w.newDetectLog(op, &task{name: name, stage: &Stage{Keyed: "d"}})
		if err != nil {
			t.Fatal(err)
		}
		return op, d
	}
	run := func(op *detect.Operator, d *detectLog, part []operators.Record, out *verdicts) {
		t.Helper()
		for i := 0; i < len(part); i += 7 {
			b := make([]operators.Record, 0, 7)
			for _, r := range part[i:min(i+7, len(part))] {
				r.Value = map[string]any{"v": r.Value.(map[string]any)["v"], "seq": r.Value.(map[string]any)["seq"]}
				b = append(b, r)
			}
			if err := op.Process(context.Background(), &operators.Batch{Records: b}, out); err != nil {
				t.Fatal(err)
			}
			d.touched(b)
		}
	}

	// One task over the whole series.
	op, d := newTask("whole")
	if err := d.open(); err != nil {
		t.Fatal(err)
	}
	var want verdicts
	run(op, d, recs, &want)

	// The old owner up to the cut, its changes flushed now and then.
	op, d = newTask("old")
	if err := d.open(); err != nil {
		t.Fatal(err)
	}
	var got verdicts
	var log []Change
	for i := 0; i < cut; i += 50 {
		run(op, d, recs[i:min(i+50, cut)], &got)
		ch, err := d.changes()
		if err != nil {
			t.Fatal(err)
		}
		log = append(log, ch...)
	}
	if len(log) == 0 {
		t.Fatal("no changelog records")
	}
	// The new owner restores from the changelog and scores the rest.
	op, d = newTask("new")
	for _, c := range log {
		if c.Key[0] != keyDetect {
			t.Fatalf("changelog key %q is not a detect key", c.Key)
		}
		if err := d.apply(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.open(); err != nil {
		t.Fatal(err)
	}
	if op.Keys() == 0 {
		t.Fatal("no model restored")
	}
	run(op, d, recs[cut:], &got)
	if diff := testutil.Diff(want, got); diff != "" {
		t.Errorf("cut at %d: verdicts differ from one task's over the whole series:\n%s", cut, diff)
	}
}
