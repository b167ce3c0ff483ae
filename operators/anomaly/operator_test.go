package anomaly

import (
	"context"
	"testing"

	"github.com/runnel-dev/runnel/operators"
)

func collect(t *testing.T, op *Operator, recs []operators.Record) []operators.Record {
	t.Helper()
	var out []operators.Record
	if err := op.Process(context.Background(), &operators.Batch{Records: recs}, operators.EmitterFunc(func(r operators.Record) {
		out = append(out, r)
	})); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestOperatorPerKeyAndSnapshot checks that the detect operator keeps one
// detector per key (a shift on key "b" does not disturb key "a"), adds its
// verdict fields, and resumes identically from a snapshot.
func TestOperatorPerKeyAndSnapshot(t *testing.T) {
	cfg := OperatorConfig{Detector: Config{Fields: []string{"views"}}}
	op, err := NewOperator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	batch := func(from, to int) []operators.Record {
		var recs []operators.Record
		for i := from; i < to; i++ {
			b := float64(10 + i%5)
			if i >= 400 {
				b += 100
			}
			recs = append(recs,
				operators.Record{Key: "a", EventTime: int64(i) * 60000, Value: map[string]any{"views": float64(20 + i%3)}},
				operators.Record{Key: "b", EventTime: int64(i) * 60000, Value: map[string]any{"views": b}},
			)
		}
		return recs
	}
	collect(t, op, batch(0, 300))
	snap, err := op.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	restored, err := NewOperator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := restored.RestoreSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if got := restored.Keys(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Fatalf("restored keys %v, want [a b]", got)
	}
	rest := batch(300, 500)
	got, want := collect(t, restored, rest), collect(t, op, batch(300, 500))
	flaggedB, flaggedA := false, false
	for i := range want {
		w, g := want[i].Value.(map[string]any), got[i].Value.(map[string]any)
		if w["anomaly_score"] != g["anomaly_score"] {
			t.Fatalf("record %d: restored score %v, original %v", i, g["anomaly_score"], w["anomaly_score"])
		}
		for _, f := range []string{"anomaly_score", "is_anomaly", "expected_views", "low_views", "high_views", "anomaly_field", "anomaly_direction", "views"} {
			if _, ok := w[f]; !ok {
				t.Fatalf("record %d lacks field %s: %v", i, f, w)
			}
		}
		if w["is_anomaly"] == true {
			if want[i].Key == "a" {
				flaggedA = true
			} else if w["anomaly_direction"] == "high" {
				flaggedB = true
			}
		}
	}
	if !flaggedB || flaggedA {
		t.Errorf("flagged a: %v, b: %v; want only b's upward shift flagged", flaggedA, flaggedB)
	}
}

func TestOperatorConfigNeedsAField(t *testing.T) {
	if _, err := NewOperator(OperatorConfig{}); err == nil {
		t.Error("NewOperator without fields: no error")
	}
}
