package cluster

import (
	"encoding/json"
	"math"

	"github.com/runnel-dev/runnel/engine"
)

// Watermark bounds, as in the engine: NoWatermark is "nothing seen yet".
const (
	NoWatermark int64 = math.MinInt64
	EndOfTime   int64 = math.MaxInt64
)

// Watermarks is the watermark of a task that reads a repartition topic:
// the minimum over the producer tasks it expects of the latest watermark
// each wrote into its partition, by the rules of a server's tasks
// (engine.InputMarks): a producer not heard from yet holds it back; an
// idle producer is left out until it sends a watermark again; when every
// producer is idle, it is the largest of their watermarks; it never goes
// backwards. A task keeps it in its changelog (MarshalJSON, Restore), so a
// restored task continues where the committed one was.
type Watermarks struct{ m *engine.InputMarks }

// NewWatermarks expects the given producers.
func NewWatermarks(producers []string) *Watermarks {
	return &Watermarks{engine.NewInputMarks(producers)}
}

// Update records producer's watermark wm and marks it active. A producer
// not expected is added (the source gained a partition).
func (w *Watermarks) Update(producer string, wm int64) { w.m.Update(producer, wm) }

// Idle marks producer idle: it saw no record for its idle timeout.
func (w *Watermarks) Idle(producer string) { w.m.Idle(producer) }

// Current returns the watermark by the rules above.
func (w *Watermarks) Current() int64 { return w.m.Current() }

type savedMarks struct {
	Producers map[string]engine.InputMark `json:"producers"`
	Last      int64                       `json:"last"`
}

// MarshalJSON encodes the producers' marks and the last watermark.
func (w *Watermarks) MarshalJSON() ([]byte, error) {
	marks, last := w.m.Marks()
	return json.Marshal(savedMarks{marks, last})
}

// Restore sets the marks encoded by MarshalJSON, keeping the producers w
// expects that they do not name.
func (w *Watermarks) Restore(b []byte) error {
	var s savedMarks
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	for p, m := range s.Producers {
		w.m.SetMark(p, m, s.Last)
	}
	return nil
}
