package detect

import (
	"context"
	"math"
	"testing"

	"github.com/runnel-dev/runnel/operators"
	"github.com/runnel-dev/runnel/operators/anomaly"
)

func run(t *testing.T, op *Operator, recs []operators.Record) []operators.Record {
	t.Helper()
	var out []operators.Record
	if err := op.Process(context.Background(), &operators.Batch{Records: recs}, operators.EmitterFunc(func(r operators.Record) { out = append(out, r) })); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestDetectFlagsSpikePerKey(t *testing.T) {
	op, err := New(Config{ID: "spikes", Fields: []string{"views"}, Anomaly: anomaly.Config{Seed: 1}})
	if err != nil {
		t.Fatal(err)
	}
	var recs []operators.Record
	for i := 0; i < 1500; i++ {
		for _, k := range []string{"/home", "/cart"} {
			v := 100 + 10*math.Sin(float64(i)/20)
			if k == "/cart" && i == 1200 {
				v = 400
			}
			recs = append(recs, operators.Record{Key: k, EventTime: int64(i) * 60000, Value: map[string]any{"views": v, "key": k}})
		}
	}
	recs = append(recs, operators.Record{Key: "/home", Value: map[string]any{"views": "lots"}})
	out := run(t, op, recs)
	if len(out) != len(recs) {
		t.Fatalf("got %d records, want %d", len(out), len(recs))
	}
	if op.Skipped() != 1 || op.Keys() != 2 {
		t.Fatalf("skipped %d keys %d", op.Skipped(), op.Keys())
	}
	var spike map[string]any
	flagged := map[string]int{}
	for _, r := range out[:len(out)-1] {
		m := r.Value.(map[string]any)
		s := m[FieldScore].(float64)
		if s < 0 || s > 1 {
			t.Fatalf("score %v out of [0,1]", s)
		}
		if m[FieldIsAnomaly].(bool) {
			flagged[r.Key]++
		}
		if r.Key == "/cart" && r.EventTime == 1200*60000 {
			spike = m
		}
	}
	if !spike[FieldIsAnomaly].(bool) {
		t.Fatalf("the spike was not flagged: %v", spike)
	}
	if e := spike[FieldExplanation].(map[string]any); e["field"] != "views" || e["direction"] != "high" {
		t.Fatalf("explanation %v", e)
	}
	if flagged["/home"] > 3 {
		t.Fatalf("the smooth key /home was flagged %d times", flagged["/home"])
	}
	if _, ok := out[len(out)-1].Value.(map[string]any)[FieldScore]; ok {
		t.Fatal("a non-numeric record was scored")
	}
}

func TestDetectModelsRoundTrip(t *testing.T) {
	cfg := Config{ID: "d", Fields: []string{"v"}, Anomaly: anomaly.Config{Seed: 7}}
	a, _ := New(cfg)
	mk := func(from, to int) []operators.Record {
		var rs []operators.Record
		for i := from; i < to; i++ {
			rs = append(rs, operators.Record{Key: "k", EventTime: int64(i) * 1000, Value: map[string]any{"v": float64(i%17) + 0.5*float64(i%3)}})
		}
		return rs
	}
	run(t, a, mk(0, 400))
	saved, err := a.MarshalModels()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := New(cfg)
	if err := b.RestoreModels(saved); err != nil {
		t.Fatal(err)
	}
	ra, rb := run(t, a, mk(400, 600)), run(t, b, mk(400, 600))
	for i := range ra {
		if ra[i].Value.(map[string]any)[FieldScore] != rb[i].Value.(map[string]any)[FieldScore] {
			t.Fatalf("point %d: restored model scores %v, original %v", i, rb[i].Value, ra[i].Value)
		}
	}
}

func TestDetectConfigErrors(t *testing.T) {
	if _, err := New(Config{ID: "d"}); err == nil {
		t.Fatal("no fields accepted")
	}
	if _, err := New(Config{ID: "d", Fields: []string{"v"}, Anomaly: anomaly.Config{Method: "magic"}}); err == nil {
		t.Fatal("unknown method accepted")
	}
}
